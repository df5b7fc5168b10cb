// The responder's decision on a pairing request (SPEC 9.1 step 3); the harness is test/service-harness.ts.
import { issuePeerToken } from '@spl/transport'
import { describe, expect, it } from 'vitest'
import { alice, bob, carol, clock, instance, refusal, requestFrom, useServiceHarness } from '../test/service-harness.js'
import { linkIdFor } from './link.js'

useServiceHarness()

describe('the responder decides (SPEC 9.1 step 3)', () => {
  it('auto: accepts, stores the link with its token, makes the pairs and journals the transition', async () => {
    const b = await instance(bob, { policy: 'auto' })
    const answer = await b.service.handlePairRequest(alice.did, await requestFrom(alice, bob, { threads: ['th_a', 'th_b'] }), 'http://b')
    expect(answer.status).toBe(200)
    expect(answer.body).toMatchObject({ state: 'active', pair_id: linkIdFor(alice.did, bob.did) })
    const [link] = await b.service.links()
    expect(link).toMatchObject({ state: 'active', role: 'responder', peer_did: alice.did, threads: ['th_a', 'th_b'] })
    expect(b.pairs.rows.map((p) => p.thread_id)).toEqual(['th_a', 'th_b'])
    expect(b.journal.map((j) => j['transition'])).toEqual([{ from: 'establishing', to: 'active' }])
    // The answer's token is for A, from B, and its jti is the link's issued one.
    const claims = JSON.parse(Buffer.from((answer.body['token_for_initiator'] as string).split('.')[1]!, 'base64url').toString())
    expect(claims).toMatchObject({ iss: bob.did, sub: alice.did, scope: 'federation:sync', jti: link!.tokens.issued.jti })
    expect(JSON.stringify(link)).not.toContain(answer.body['token_for_initiator'] as string)
  })

  it('auto with a mapping: held for the operator (a stranger does not pick its own binding); approve binds it', async () => {
    const b = await instance(bob, { policy: 'auto' })
    const req = await requestFrom(alice, bob, { namespace_map: [{ local: 'acme', peer: 'partner' }] })
    expect((await b.service.handlePairRequest(alice.did, req, 'http://b')).status).toBe(202)
    expect(b.bindings.size).toBe(0)
    expect((await b.service.requests())[0]).toMatchObject({ namespace_map: [{ local: 'acme', peer: 'partner' }] })
    await b.service.approve(linkIdFor(alice.did, bob.did))
    expect(b.bindings.get(alice.did)).toBe('partner')
  })

  it('never: 403 PAIRING_DISABLED, nothing stored', async () => {
    const b = await instance(bob, { policy: 'never' })
    expect(await refusal(b.service.handlePairRequest(alice.did, await requestFrom(alice, bob), 'http://b'))).toBe('403 PAIRING_DISABLED')
    expect(await b.service.links()).toEqual([])
    expect(await b.service.requests()).toEqual([])
  })

  it('a proof by another DID than the initiator: 401 PROOF_INVALID, nothing stored', async () => {
    const b = await instance(bob)
    expect(await refusal(b.service.handlePairRequest(carol.did, await requestFrom(alice, bob), 'http://b'))).toBe('401 PROOF_INVALID')
    expect(await b.service.links()).toEqual([])
  })

  it('a replayed nonce: 410 NONCE_REPLAYED, also once the first request made a link', async () => {
    const b = await instance(bob, { policy: 'manual' })
    const req = await requestFrom(alice, bob)
    expect((await b.service.handlePairRequest(alice.did, req, 'http://b')).status).toBe(202)
    expect(await refusal(b.service.handlePairRequest(alice.did, req, 'http://b'))).toBe('410 NONCE_REPLAYED')
    const auto = await instance(bob, { policy: 'auto' })
    const first = await requestFrom(alice, bob)
    expect((await auto.service.handlePairRequest(alice.did, first, 'http://b')).status).toBe(200)
    expect(await refusal(auto.service.handlePairRequest(alice.did, first, 'http://b'))).toBe('410 NONCE_REPLAYED')
  })

  it('the same DID asking again for a live link (it lost its side): new tokens, the old one revoked; another mapping: 409 LINK_EXISTS', async () => {
    const b = await instance(bob, { policy: 'auto' })
    const first = await b.service.handlePairRequest(alice.did, await requestFrom(alice, bob), 'http://b')
    const before = (await b.service.links())[0]!.tokens.issued.jti
    const again = await b.service.handlePairRequest(alice.did, await requestFrom(alice, bob), 'http://b')
    expect(again.status).toBe(200)
    expect(again.body['token_for_initiator']).not.toBe(first.body['token_for_initiator'])
    const links = await b.service.links()
    expect(links).toHaveLength(1)
    expect(links[0]!.tokens.issued.jti).not.toBe(before)
    expect(b.service.isRevoked(before)).toBe(true)
    const remapped = await requestFrom(alice, bob, { namespace_map: [{ local: 'default', peer: 'default' }] })
    expect(await refusal(b.service.handlePairRequest(alice.did, remapped, 'http://b'))).toBe('409 LINK_EXISTS')
  })

  it('a token_for_responder that is not the initiator’s own for this instance: 400 TOKEN_INVALID', async () => {
    const b = await instance(bob)
    const { token } = await issuePeerToken(alice, { holderDid: carol.did, namespace: 'default', threads: '*' }, clock.ms)
    expect(
      await refusal(b.service.handlePairRequest(alice.did, await requestFrom(alice, bob, { token_for_responder: token }), 'http://b')),
    ).toBe('400 TOKEN_INVALID')
  })
})
