// Revocation (SPEC 9.2, 7.5): the issued jti refused, the pairs removed, the peer told.
import { describe, expect, it } from 'vitest'
import { alice, bob, carol, instance, linked, refusal, useServiceHarness } from '../test/service-harness.js'
import { linkIdFor } from './link.js'

useServiceHarness()

describe('revocation (SPEC 9.2, 7.5)', () => {
  it('puts the issued jti on the list, stops the pairs, tells the peer; the list survives a new service over the same database', async () => {
    const { a, b, link } = await linked()
    const [bLink] = await b.service.links()
    const jti = bLink!.tokens.issued.jti
    expect(b.pairs.rows).toHaveLength(1)
    // B's link points at A's made-up URL (127.0.0.1:1): the notice fails, the revocation stands.
    const out = await b.service.revoke(bLink!.link_id)
    expect(out).toMatchObject({ notified: false, link: { state: 'revoked', revoked_by: 'local' } })
    expect(b.service.isRevoked(jti)).toBe(true)
    expect(b.pairs.rows).toEqual([])
    expect(b.service.tokenFor(alice.did)).toBeNull()
    expect(b.service.isLinked(alice.did)).toBe(false)
    b.service.stop()
    const again = await instance(bob, {}, b.db)
    expect(again.service.isRevoked(jti)).toBe(false)
    await again.service.start()
    again.service.stop()
    expect(again.service.isRevoked(jti)).toBe(true)
    expect((await again.service.links())[0]).toMatchObject({ state: 'revoked' })
    // A was not told (its link is as it was).
    expect((await a.service.links())[0]!.stored_state).toBe('active')
    expect(link.state).toBe('active')
  })

  it('revoking again re-sends the notice: the peer then shows revoked (by the peer) and revokes its own token', async () => {
    const { a, b, link } = await linked()
    // A revokes; B's doors are up, so B is told at once.
    const out = await a.service.revoke(link.link_id)
    expect(out.notified).toBe(true)
    const [bLink] = await b.service.links()
    expect(bLink).toMatchObject({ state: 'revoked', revoked_by: 'peer' })
    expect(b.service.isRevoked(bLink!.tokens.issued.jti)).toBe(true)
    // Again: still told (idempotent on B).
    expect((await a.service.revoke(link.link_id)).notified).toBe(true)
    // On B (revoked by the peer) a revoke sends nothing.
    expect(await b.service.revoke(bLink!.link_id)).toMatchObject({ notified: false, notice: 'already revoked by the peer' })
  })

  it('a notice from another DID than the link’s peer is refused', async () => {
    const { b } = await linked()
    const id = linkIdFor(alice.did, bob.did)
    expect(await refusal(b.service.handlePeerRevoked(carol.did, id))).toBe('404 LINK_NOT_FOUND')
    expect((await b.service.links())[0]!.state).toBe('active')
  })
})
