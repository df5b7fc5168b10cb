// The service's face: replicas on one database (changes told, reload), the link's shown state,
// pause and resume. Setup and the peer doors: test/service-harness.ts.
import { describe, expect, it } from 'vitest'
import { alice, bob, clock, DAY, instance, linked, useServiceHarness } from '../test/service-harness.js'

useServiceHarness()

describe('replicas on one database (docs/postgres.md)', () => {
  it('a revocation made by one replica is told (changed) and refused by the other after its reload; a reload tells nobody', async () => {
    const { b, link } = await linked()
    const [bLink] = await b.service.links()
    const jti = bLink!.tokens.issued.jti
    let told = 0
    const b2 = await instance(bob, {}, b.db, { changed: () => told++ })
    await b2.service.start()
    b2.service.stop()
    expect(told).toBe(0)
    await b2.service.revoke(link.link_id)
    expect(told).toBeGreaterThan(0)
    // The first replica still answers from memory until it reloads.
    expect(b.service.isRevoked(jti)).toBe(false)
    expect(b.service.isLinked(alice.did)).toBe(true)
    await b.service.reload()
    expect(b.service.isRevoked(jti)).toBe(true)
    expect(b.service.isLinked(alice.did)).toBe(false)
    expect(b.service.tokenFor(alice.did)).toBeNull()
    const n = told
    await b2.service.reload()
    expect(told).toBe(n)
    expect(b2.service.isRevoked(jti)).toBe(true)
  })
})

describe('the link’s shown state', () => {
  it('degraded when the peer refused our token (its code is in the pair’s message) or after degraded_after of failures', async () => {
    const { a, link } = await linked()
    const pair = a.pairs.rows[0]!
    expect(a.service.snapshot()[0]!.state).toBe('active')
    pair.state = 'failing'
    pair.last_error = {
      code: 'HTTP_4XX',
      message: 'peer answered 401 (TOKEN_REVOKED: peer token rejected: it has been revoked); the peer rejected the request',
    }
    expect(a.service.snapshot()[0]!.state).toBe('degraded')
    pair.last_error = { code: 'CONNECT_REFUSED', message: 'cannot connect to the peer (ECONNREFUSED)' }
    pair.last_success_at = clock.ms
    clock.ms += DAY
    expect(a.service.snapshot()[0]!.state).toBe('active')
    clock.ms += 1
    expect(a.service.snapshot()[0]!.state).toBe('degraded')
    expect(link.link_id).toMatch(/^fed_[0-9a-f]{16}$/)
  })

  it('pause stops the pairs, resume restarts them; both are journaled', async () => {
    const { a, link } = await linked()
    expect((await a.service.pause(link.link_id)).state).toBe('paused')
    expect(a.pairs.rows.map((p) => p.state)).toEqual(['paused'])
    expect((await a.service.resume(link.link_id)).state).toBe('active')
    expect(a.pairs.rows.map((p) => p.state)).toEqual(['running'])
    expect(a.journal.map((j) => j['transition'])).toEqual([
      { from: 'active', to: 'paused' },
      { from: 'paused', to: 'active' },
    ])
  })
})
