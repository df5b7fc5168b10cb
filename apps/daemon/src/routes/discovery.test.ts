import { verifyManifest } from '@spl/discovery'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { prng } from '../../../../test-utils/prng.js'
import { type AppUnderTest, appUnderTest, expectErrorEnvelope } from '../../test/harness.js'

describe('discovery doors (SPEC 8)', () => {
  let d: AppUnderTest
  beforeAll(async () => {
    d = await appUnderTest()
  })
  afterAll(async () => {
    await d.close()
  })

  it('/.well-known/syncropel is open and signed by this daemon for the origin asked', async () => {
    const res = await d.app.request('http://127.0.0.1:9555/.well-known/syncropel')
    expect(res.status).toBe(200)
    const v = verifyManifest(await res.json(), { expectedDid: d.daemon.did, strict: true })
    expect(v.manifest.federation.pair_endpoint).toBe('http://127.0.0.1:9555/v1/federation/pair')
    expect(v.manifest.consent_policy.accepts_pair_requests).toBe('invite')
    expect(v.manifest.advertises.namespaces).toEqual(['default'])
  })

  it('GET /v1/discovery/peers answers per method; a method that is off is named with its fix', async () => {
    const all = await d.call('GET', '/v1/discovery/peers')
    expect(all.status).toBe(200)
    expect(all.json).toMatchObject({ object: 'discovery_result', peers: [] })
    // "All methods" leaves out what needs more input (no domain, no directory): no noise, no failure.
    expect((all.json as { methods: string[]; failures: unknown[] }).methods).toEqual(['static'])
    expect((all.json as { failures: unknown[] }).failures).toEqual([])
    // Named, did-sync says what it lacks.
    const sync = await d.call('GET', '/v1/discovery/peers?method=did-sync')
    expect((sync.json as { failures: unknown[] }).failures).toEqual([
      { method: 'did-sync', code: 'DIRECTORY_NOT_CONFIGURED', message: expect.any(String), fix: expect.stringContaining('--directory') },
    ])
    const web = await d.call('GET', '/v1/discovery/peers?domain=localhost:1&timeout_ms=0')
    expect((web.json as { methods: string[] }).methods).toContain('did-web')
    const off = await d.call('GET', '/v1/discovery/peers?method=mdns&timeout_ms=0')
    expect(off.status).toBe(200)
    expect((off.json as { failures: { code: string; fix: string }[] }).failures[0]).toMatchObject({
      code: 'DISCOVERY_METHOD_OFF',
      fix: expect.stringContaining('mdns_listen'),
    })
    expect((await d.call('POST', '/v1/discovery/flush', { body: '{}' })).json).toMatchObject({ flushed: true })
  })

  it.each([
    ['an unknown method', '?method=carrier-pigeon'],
    ['an empty method', '?method='],
    ['an unknown parameter', '?methd=mdns'],
    ['a timeout that is not a number', '?timeout_ms=soon'],
    ['a timeout over 30 s', '?timeout_ms=30001'],
    ['a negative timeout', '?timeout_ms=-1'],
    ['a directory that is not a URL', '?method=did-sync&directory=not a url'],
    ['a directory that is not http(s)', '?method=did-sync&directory=file:///etc/passwd'],
    ['a domain of 3,000 characters', `?method=did-web&domain=${'a'.repeat(3000)}`],
  ])('refuses %s with 400 and the envelope', async (_what, query) => {
    expectErrorEnvelope(await d.call('GET', `/v1/discovery/peers${query}`), 400)
  })

  it('never answers 5xx to a seeded fuzz of 300 query strings', async () => {
    const rand = prng(10)
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!
    const keys = ['method', 'domain', 'namespace', 'directory', 'did', 'timeout_ms', '__proto__', 'constructor', '']
    const values = ['mdns', 'static', 'mdns,static', ',', '%00', '%ZZ', '9'.repeat(400), '-0', '1e3', 'http://[::1', '☃', '\u{1F600}', '']
    for (let i = 0; i < 300; i++) {
      const parts = Array.from({ length: 1 + Math.floor(rand() * 3) }, () => `${pick(keys)}=${pick(values)}`)
      const a = await d.call('GET', `/v1/discovery/peers?${parts.join('&')}&timeout_ms=0`)
      if (a.status !== 200) expectErrorEnvelope(a)
    }
  })
})
