// Token renewal (SPEC 9.1, 7.5): due at two thirds of the held token's life, failures kept on the
// link, one replica asking the peer; and a check of the test's peer doors the renewals go through.
import { createRequestProof, PROOF_HEADER } from '@spl/transport'
import { describe, expect, it } from 'vitest'
import { alice, bob, carol, clock, instance, linked, refusal, useServiceHarness } from '../test/service-harness.js'
import { renewPath } from './wire.js'

useServiceHarness()

describe('renewal (SPEC 9.1: before expiry, a light re-handshake)', () => {
  it('is due at two thirds of the held token’s life, not before; both sides move to the new token', async () => {
    const { a, b, doors, link, held } = await linked()
    const due = held.iat * 1000 + ((held.exp - held.iat) * 1000 * 2) / 3
    clock.ms = due - 1
    await a.service.renewDue()
    expect(doors.calls).toEqual([])
    clock.ms = due
    await a.service.renewDue()
    expect(doors.calls).toEqual([renewPath(link.link_id)])
    const [mine] = await a.service.links()
    expect(mine!.tokens.held!.jti).not.toBe(held.jti)
    expect(mine!.renewal_error).toBeNull()
    // B issued it: its link names the new jti, and A's token is the one B now expects.
    const [theirs] = await b.service.links()
    expect(theirs!.tokens.issued.jti).toBe(mine!.tokens.held!.jti)
    expect(a.service.tokenFor(bob.did)).not.toBe(link.held_token)
    // Not due again right after.
    await a.service.renewDue()
    expect(doors.calls).toHaveLength(1)
  })

  it('a failed renewal is kept on the link (renewal_error) and cleared by the next success', async () => {
    const { a, doors, held } = await linked()
    doors.setDown(true)
    clock.ms = held.exp * 1000 - 1000
    await a.service.renewDue()
    const failed = a.service.snapshot()[0]!
    expect(failed.renewal_error).toMatchObject({ code: 'CONNECT_REFUSED' })
    expect(failed.tokens.held!.jti).toBe(held.jti)
    doors.setDown(false)
    clock.ms += 30_001
    await a.service.renewDue()
    const ok = a.service.snapshot()[0]!
    expect(ok.renewal_error).toBeNull()
    expect(ok.tokens.held!.jti).not.toBe(held.jti)
  })

  it('a revoked link is not renewed: LINK_REVOKED', async () => {
    const { a, b, link } = await linked()
    await b.service.revoke(alice.did)
    expect(await refusal(a.service.refresh(link.link_id))).toBe('403 LINK_REVOKED')
  })
})

describe('renewal by replicas on one database', () => {
  it('two replicas due at once: one asks the peer (it takes the row first), both then hold the token it got', async () => {
    const { a, doors, link, held } = await linked()
    const a2 = await instance(alice, {}, a.db)
    await a2.service.start()
    a2.service.stop()
    clock.ms = held.iat * 1000 + ((held.exp - held.iat) * 1000 * 2) / 3
    await Promise.all([a.service.renewDue(), a2.service.renewDue()])
    expect(doors.calls).toEqual([renewPath(link.link_id)])
    const stored = await a.store.link(link.link_id)
    expect(stored!.held_jti).not.toBe(held.jti)
    // The winner told the other (components.changed → spl_state): it reloads.
    for (const s of [a.service, a2.service]) await s.reload()
    for (const s of [a.service, a2.service]) expect(s.tokenFor(bob.did)).toBe(stored!.held_token)
    // B issued exactly one new token, the one the row holds.
    expect(doors.calls).toHaveLength(1)
  })
})

// The shim must check what the daemon checks, or the renewal tests above would prove less.
describe('the test’s peer doors', () => {
  it('refuse a proof for another audience (the shim checks what the daemon checks)', async () => {
    const { doors, link } = await linked()
    const path = renewPath(link.link_id)
    const proof = await createRequestProof(alice, { method: 'POST', pathAndQuery: path, aud: carol.did })
    const res = await fetch(`${doors.url}${path}`, { method: 'POST', headers: { [PROOF_HEADER]: proof.token }, body: '{}' })
    expect(res.status).toBe(401)
  })
})
