// Held pairing requests (manual policy, approve, reject, expiry) and the blocklist.
import { describe, expect, it } from 'vitest'
import { alice, bob, carol, clock, DAY, instance, refusal, requestFrom, useServiceHarness } from '../test/service-harness.js'
import { linkIdFor } from './link.js'
import { REQUEST_TTL_MS } from './service.js'

useServiceHarness()

describe('held requests and the blocklist', () => {
  it('manual: held (202) even with an invite; listed; approve makes the link and the poll gets the token', async () => {
    const b = await instance(bob, { policy: 'manual' })
    const { code } = await b.service.invite({ threads: [], map: [] })
    const req = await requestFrom(alice, bob, { invite: code })
    const held = await b.service.handlePairRequest(alice.did, req, 'http://b')
    expect(held).toMatchObject({ status: 202, body: { state: 'pending' } })
    const id = linkIdFor(alice.did, bob.did)
    expect((await b.service.requests()).map((r) => r.link_id)).toEqual([id])
    expect((await b.service.handlePoll(alice.did, id, req.nonce)).status).toBe(202)
    // Only the initiator, with its nonce, may poll.
    expect(await refusal(b.service.handlePoll(carol.did, id, req.nonce))).toBe('404 REQUEST_NOT_FOUND')
    expect(await refusal(b.service.handlePoll(alice.did, id, 'x'.repeat(32)))).toBe('404 REQUEST_NOT_FOUND')
    const view = await b.service.approve(id)
    expect(view).toMatchObject({ state: 'active', peer_did: alice.did })
    expect(await b.service.requests()).toEqual([])
    const answer = await b.service.handlePoll(alice.did, id, req.nonce)
    expect(answer.status).toBe(200)
    expect(typeof answer.body['token_for_initiator']).toBe('string')
    expect(await refusal(b.service.approve(id))).toBe('404 REQUEST_NOT_FOUND')
  })

  it('reject: the poll answers 403 PAIR_REJECTED; no link', async () => {
    const b = await instance(bob, { policy: 'manual' })
    const req = await requestFrom(alice, bob)
    await b.service.handlePairRequest(alice.did, req, 'http://b')
    const id = linkIdFor(alice.did, bob.did)
    expect((await b.service.reject(id)).state).toBe('rejected')
    expect(await refusal(b.service.handlePoll(alice.did, id, req.nonce))).toBe('403 PAIR_REJECTED')
    expect(await b.service.links()).toEqual([])
    expect(await b.service.requests()).toEqual([])
  })

  it('block: a held request disappears, the next request is refused at once (403 PEER_BLOCKED) and never listed; unblock undoes', async () => {
    const b = await instance(bob, { policy: 'manual' })
    const req = await requestFrom(carol, bob)
    await b.service.handlePairRequest(carol.did, req, 'http://b')
    expect(await b.service.requests()).toHaveLength(1)
    await b.service.block(carol.did)
    expect(await b.service.requests()).toEqual([])
    expect(await refusal(b.service.handlePoll(carol.did, linkIdFor(carol.did, bob.did), req.nonce))).toBe('404 REQUEST_NOT_FOUND')
    expect(await refusal(b.service.handlePairRequest(carol.did, await requestFrom(carol, bob), 'http://b'))).toBe('403 PEER_BLOCKED')
    expect(await b.service.requests()).toEqual([])
    // Blocked even under auto, and the blocklist is this instance's own (another DID is not affected).
    expect((await b.service.handlePairRequest(alice.did, await requestFrom(alice, bob), 'http://b')).status).toBe(202)
    expect((await b.service.blocked()).map((x) => x.did)).toEqual([carol.did])
    expect(await b.service.unblock(carol.did)).toBe(true)
    expect((await b.service.handlePairRequest(carol.did, await requestFrom(carol, bob), 'http://b')).status).toBe(202)
  })

  it('held requests expire after 7 days: not listed, not approvable, the poll says REQUEST_EXPIRED', async () => {
    const b = await instance(bob, { policy: 'manual' })
    const req = await requestFrom(alice, bob)
    await b.service.handlePairRequest(alice.did, req, 'http://b')
    const id = linkIdFor(alice.did, bob.did)
    clock.ms += REQUEST_TTL_MS - 1
    expect(await b.service.requests()).toHaveLength(1)
    clock.ms += 1
    expect(REQUEST_TTL_MS).toBe(7 * DAY)
    expect(await b.service.requests()).toEqual([])
    expect(await refusal(b.service.approve(id))).toBe('404 REQUEST_NOT_FOUND')
    expect(await refusal(b.service.handlePoll(alice.did, id, req.nonce))).toBe('410 REQUEST_EXPIRED')
  })
})
