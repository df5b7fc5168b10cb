// Invites: single use, expiry, scope, and the binding an invite names (SPEC 9.1).
import { describe, expect, it } from 'vitest'
import { alice, bob, carol, clock, instance, refusal, requestFrom, useServiceHarness } from '../test/service-harness.js'

useServiceHarness()

describe('invites', () => {
  it('single use: the code pairs once; another instance with the same code gets INVITE_USED', async () => {
    const b = await instance(bob, { policy: 'invite' })
    const { code } = await b.service.invite({ threads: ['th_a'], map: [] })
    expect((await b.service.handlePairRequest(alice.did, await requestFrom(alice, bob, { invite: code }), 'http://b')).status).toBe(200)
    expect(await refusal(b.service.handlePairRequest(carol.did, await requestFrom(carol, bob, { invite: code }), 'http://b'))).toBe(
      '403 INVITE_USED',
    )
    expect((await b.service.links()).map((l) => l.peer_did)).toEqual([alice.did])
  })

  it('expired: INVITE_EXPIRED with its time; an unknown code: INVITE_INVALID; without a code: held', async () => {
    const b = await instance(bob, { policy: 'invite' })
    const { code, expires_at } = await b.service.invite({ threads: [], map: [], expiresMs: 1000 })
    clock.ms += 1000
    const expired = b.service.handlePairRequest(alice.did, await requestFrom(alice, bob, { invite: code }), 'http://b')
    await expect(expired).rejects.toMatchObject({ code: 'INVITE_EXPIRED', message: expect.stringContaining(expires_at) })
    expect(await refusal(b.service.handlePairRequest(alice.did, await requestFrom(alice, bob, { invite: 'spl-nope' }), 'http://b'))).toBe(
      '403 INVITE_INVALID',
    )
    expect((await b.service.handlePairRequest(alice.did, await requestFrom(alice, bob), 'http://b')).status).toBe(202)
    expect(await b.service.links()).toEqual([])
  })

  it('scope: threads outside the invite, or a mapping it does not name, are refused (INVITE_SCOPE) and the code stays usable', async () => {
    const b = await instance(bob, { policy: 'invite' })
    const { code } = await b.service.invite({ threads: ['th_a'], map: [] })
    expect(
      await refusal(b.service.handlePairRequest(alice.did, await requestFrom(alice, bob, { invite: code, threads: ['th_b'] }), 'http://b')),
    ).toBe('403 INVITE_SCOPE')
    // The invite names no mapping: the holder cannot choose the namespace it is bound to here.
    const grab = await requestFrom(alice, bob, { invite: code, namespace_map: [{ local: 'acme', peer: 'partner' }] })
    expect(await refusal(b.service.handlePairRequest(alice.did, grab, 'http://b'))).toBe('403 INVITE_SCOPE')
    expect(b.bindings.size).toBe(0)
    expect((await b.service.handlePairRequest(alice.did, await requestFrom(alice, bob, { invite: code }), 'http://b')).status).toBe(200)
  })

  it('an invite with a mapping binds the peer to the invite’s namespace (its own side of --map)', async () => {
    const b = await instance(bob, { policy: 'invite' })
    // From B's side: the peer is bound to `partner` here and reads B as… (its own `acme`).
    const { code } = await b.service.invite({ threads: ['th_a'], map: [{ local: 'partner', peer: 'acme' }] })
    const req = await requestFrom(alice, bob, { invite: code, namespace_map: [{ local: 'acme', peer: 'partner' }] })
    expect((await b.service.handlePairRequest(alice.did, req, 'http://b')).status).toBe(200)
    expect(b.bindings.get(alice.did)).toBe('partner')
    expect((await b.service.links())[0]).toMatchObject({ local_namespace: 'partner', peer_namespace: 'acme' })
    expect(b.service.targetNamespaceFor(alice.did)).toBe('acme')
  })

  it('an invite mapping a namespace that is not active here is refused when made', async () => {
    const b = await instance(bob, { policy: 'invite' })
    expect(await refusal(b.service.invite({ threads: [], map: [{ local: 'nope', peer: 'acme' }] }))).toMatch(/NAMESPACE_REJECTED/)
  })
})
