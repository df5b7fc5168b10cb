import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type AppUnderTest, appUnderTest, expectErrorEnvelope } from '../../test/harness.js'
import { createApp } from '../app.js'

describe('app.request() without a socket (the remote address is unknown: not trusted)', () => {
  let d: AppUnderTest
  beforeAll(async () => {
    d = await appUnderTest()
  })
  afterAll(async () => {
    await d.close()
  })

  it('open doors answer', async () => {
    const app = createApp(d.daemon.ctx)
    expect((await app.request('/health')).status).toBe(200)
    const identity = await app.request('/v1/identity')
    expect(identity.status).toBe(200)
    expect(await identity.json()).toMatchObject({ object: 'identity', did: d.daemon.did, method: 'key' })
    expect((await app.request('/openapi.json')).status).toBe(200)
  })

  it('admin doors need the token', async () => {
    const app = createApp(d.daemon.ctx)
    const denied = await app.request('/v1/records', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ act: 'INTEND', thread: 'th_nosock', body: {} }),
    })
    expectErrorEnvelope(
      { status: denied.status, type: denied.headers.get('content-type') ?? '', json: await denied.json() },
      401,
      'AUTH_REQUIRED',
    )
    const ok = await app.request('/v1/records', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${d.token}` },
      body: JSON.stringify({ act: 'INTEND', thread: 'th_nosock', body: {} }),
    })
    expect(ok.status).toBe(201)
    expect(await ok.json()).toMatchObject({ object: 'record', thread: 'th_nosock', clock: 0 })
  })

  it('unknown routes and malformed JSON answer the envelope', async () => {
    const app = createApp(d.daemon.ctx)
    const nf = await app.request('/does/not/exist')
    expectErrorEnvelope({ status: nf.status, type: nf.headers.get('content-type') ?? '', json: await nf.json() }, 404, 'NOT_FOUND')
    const bad = await app.request('/v1/records', {
      method: 'POST',
      headers: { authorization: `Bearer ${d.token}`, 'content-type': 'application/json' },
      body: '{nope',
    })
    expectErrorEnvelope({ status: bad.status, type: bad.headers.get('content-type') ?? '', json: await bad.json() }, 400, 'INVALID_JSON')
  })
})

describe('GET /openapi.json describes the routes the app really has', () => {
  let d: AppUnderTest
  beforeAll(async () => {
    d = await appUnderTest()
  })
  afterAll(async () => {
    await d.close()
  })

  it('every registered method + path is in the document, and every documented one is registered', async () => {
    // app.use() middleware shows up as method ALL; hono writes `:id` where OpenAPI writes `{id}`.
    const registered = new Set(
      d.app.routes.filter((r) => r.method !== 'ALL').map((r) => `${r.method.toLowerCase()} ${r.path.replace(/:(\w+)/g, '{$1}')}`),
    )
    const a = await d.call('GET', '/openapi.json')
    expect(a.status).toBe(200)
    const paths = (a.json as { paths: Record<string, Record<string, unknown>> }).paths
    const documented = new Set(Object.entries(paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m} ${p}`)))
    expect(registered.size).toBeGreaterThan(30)
    expect(
      [...registered].filter((r) => !documented.has(r)),
      'registered but not documented',
    ).toEqual([])
    expect(
      [...documented].filter((r) => !registered.has(r)),
      'documented but not registered',
    ).toEqual([])
  })
})
