import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type AppUnderTest, appUnderTest, expectErrorEnvelope, threadClocks } from '../../test/harness.js'

// The error envelope of bad input, through app.request() (no socket: the 413s, which need
// one to show how the connection ends, stay in app.test.ts).

interface RecordOut {
  clock: number
}

describe('SPEC 7.6 error envelope on bad input', () => {
  let d: AppUnderTest
  beforeAll(async () => {
    d = await appUnderTest()
  })
  afterAll(async () => {
    await d.close()
  })

  const T = 'th_errors'
  let countBefore: number
  let threadsBefore: unknown

  beforeAll(async () => {
    const ok = await d.postJson('/v1/records', {
      act: 'INTEND',
      thread: T,
      body: { text: 'the only record' },
    })
    expect(ok.status).toBe(201)
    countBefore = await d.daemon.ctx.store.count()
    threadsBefore = (await d.call('GET', '/v1/threads')).json
  })

  const raw: [what: string, body: string, code?: string][] = [
    ['malformed JSON', '{"act":"INTEND","thread":"th_errors",', 'INVALID_JSON'],
    ['not JSON at all', 'hello', 'INVALID_JSON'],
    ['a JSON array', '[]'],
    ['JSON null', 'null'],
    ['a JSON string', '"INTEND"'],
    ['a lone surrogate in the body (no canonical form)', '{"act":"INTEND","thread":"th_errors","body":{"t":"\\ud800"}}', 'INVALID_RECORD'],
  ]
  for (const [what, body, code] of raw) {
    it(`POST /v1/records with ${what} → 4xx envelope`, async () => {
      expectErrorEnvelope(await d.call('POST', '/v1/records', { body }), 400, code)
    })
  }

  const wrong: [what: string, value: unknown][] = [
    ['thread: 5', { act: 'INTEND', thread: 5, body: {} }],
    ['body: "str"', { act: 'INTEND', thread: T, body: 'str' }],
    ['body: []', { act: 'INTEND', thread: T, body: [] }],
    ['body: null', { act: 'INTEND', thread: T, body: null }],
    ['an unknown act', { act: 'SHOUT', thread: T, body: {} }],
    ['a lowercase act', { act: 'intend', thread: T, body: {} }],
    ['no act', { thread: T, body: {} }],
    ['no thread', { act: 'INTEND', body: {} }],
    ['a thread without th_', { act: 'INTEND', thread: 'demo', body: {} }],
    ['a thread with a space', { act: 'INTEND', thread: 'th_a b', body: {} }],
    ['a thread of 201 characters after th_', { act: 'INTEND', thread: `th_${'a'.repeat(201)}`, body: {} }],
    ['a negative clock', { act: 'INTEND', thread: T, body: {}, clock: -1 }],
    ['a fractional clock', { act: 'INTEND', thread: T, body: {}, clock: 1.5 }],
    ['a clock of 2^53', { act: 'INTEND', thread: T, body: {}, clock: 2 ** 53 }],
    ['a clock as a string', { act: 'INTEND', thread: T, body: {}, clock: '3' }],
    ['parents that are not record ids', { act: 'INTEND', thread: T, body: {}, parents: ['abc'] }],
    ['parents as a string', { act: 'INTEND', thread: T, body: {}, parents: 'a'.repeat(64) }],
    ['an unknown data_type', { act: 'INTEND', thread: T, body: {}, data_type: 'BLOB' }],
    ['a bad judged_by', { act: 'INTEND', thread: T, body: {}, judged_by: 'xyz' }],
    ['an unknown field', { act: 'INTEND', thread: T, body: {}, actor: 'did:key:z6Mkevil' }],
  ]
  for (const [what, value] of wrong) {
    it(`POST /v1/records with ${what} → 400 envelope`, async () => {
      expectErrorEnvelope(await d.postJson('/v1/records', value), 400)
    })
  }

  it('POST /v1/records in an unregistered namespace → 403 NAMESPACE_REJECTED with the fix', async () => {
    const a = await d.postJson('/v1/records', {
      act: 'KNOW',
      thread: T,
      body: { namespace: 'nope/sub', text: 'x' },
    })
    expectErrorEnvelope(a, 403, 'NAMESPACE_REJECTED')
    expect(a.json).toMatchObject({
      message: "NAMESPACE_REJECTED: ancestor 'nope' is not Active in the registry.",
      fix: 'spl namespace create nope',
    })
  })

  it('an unknown route → 404 NOT_FOUND (open and admin prefixes, any method)', async () => {
    expectErrorEnvelope(await d.call('GET', '/nope'), 404, 'NOT_FOUND')
    expectErrorEnvelope(await d.call('GET', '/v1/nope'), 404, 'NOT_FOUND')
    expectErrorEnvelope(await d.call('PUT', '/v1/records', { body: '{}' }), 404, 'NOT_FOUND')
    expectErrorEnvelope(await d.call('DELETE', '/health'), 404, 'NOT_FOUND')
  })

  it('GET /v1/records/not-hex → 400; an unknown well-formed id → 404 NOT_FOUND', async () => {
    expectErrorEnvelope(await d.call('GET', '/v1/records/not-hex'), 400)
    expectErrorEnvelope(await d.call('GET', `/v1/records/${'A'.repeat(64)}`), 400)
    expectErrorEnvelope(await d.call('GET', '/v1/records/%ZZ'), 400)
    expectErrorEnvelope(await d.call('GET', `/v1/records/${'0'.repeat(64)}`), 404, 'NOT_FOUND')
  })

  it('bad thread ids and query parameters on reads → 400', async () => {
    expectErrorEnvelope(await d.call('GET', '/v1/threads/demo/records'), 400)
    expectErrorEnvelope(await d.call('GET', '/v1/threads/th_a%20b/records'), 400)
    expectErrorEnvelope(await d.call('GET', `/v1/threads/${T}/records?limit=abc`), 400)
    expectErrorEnvelope(await d.call('GET', `/v1/threads/${T}/records?after=-1`), 400)
    expectErrorEnvelope(await d.call('GET', `/v1/threads/${T}/records?limit=99999999`), 400)
  })

  it('bad namespace input → 4xx', async () => {
    expectErrorEnvelope(await d.postJson('/v1/namespaces', { namespace: 'Acme' }), 400)
    expectErrorEnvelope(await d.postJson('/v1/namespaces', { namespace: 5 }), 400)
    expectErrorEnvelope(await d.postJson('/v1/namespaces', { namespace: 'orphan/child' }), 403, 'NAMESPACE_REJECTED')
    expectErrorEnvelope(await d.postJson('/v1/namespaces', { namespace: 'default' }))
    expectErrorEnvelope(await d.call('GET', '/v1/namespaces/Bad%20Id'), 400)
    expectErrorEnvelope(await d.call('POST', '/v1/namespaces/never-made/archive'), 404, 'NOT_FOUND')
  })

  it('after all of them the daemon still answers and stored nothing', async () => {
    const health = await d.call('GET', '/health')
    expect(health.status).toBe(200)
    expect(await d.daemon.ctx.store.count()).toBe(countBefore)
    expect((await d.call('GET', '/v1/threads')).json).toEqual(threadsBefore)
    expect(await threadClocks(d, T)).toEqual([0])
    expect(d.daemon.ctx.registry.namespaces().map((n) => n.namespace)).not.toContain('orphan/child')
    // And a good request still works.
    const ok = await d.postJson('/v1/records', { act: 'DO', thread: T, body: { text: 'still fine' } })
    expect(ok.status).toBe(201)
    expect((ok.json as RecordOut).clock).toBe(1)
  })
})
