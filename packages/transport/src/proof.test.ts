import { Keypair, signJwt } from '@spl/identity'
import { describe, expect, it } from 'vitest'
import { createRequestProof, MemoryReplayStore, type ProofExpectation, ReplayCache, type ReplayStore, verifyRequestProof } from './proof.js'

// SPEC 7.4: a proof is good once, at one place, briefly. Each case here was accepted before
// aud, the window and the replay store were tightened.

const caller = Keypair.fromSeed(new Uint8Array(32).fill(71))
const callee = Keypair.fromSeed(new Uint8Array(32).fill(72))
const other = Keypair.fromSeed(new Uint8Array(32).fill(73))
const PQ = '/v1/sync/changes?thread=th_proof'
const T0 = 1_900_000_000_000 // a fixed "now" (ms) for the window cases

const expectAt = (over: Partial<ProofExpectation> = {}): ProofExpectation => ({
  selfDid: callee.did,
  method: 'GET',
  pathAndQuery: PQ,
  replay: new ReplayCache(),
  ...over,
})

/** A proof with hand-set claims (what a caller that does not follow the rules could send). */
async function rawProof(claims: Record<string, unknown>, keypair = caller): Promise<string> {
  return signJwt(keypair, 'spl-proof+jwt', {
    aud: callee.did,
    htm: 'GET',
    htu: PQ,
    jti: `jti-${Math.random().toString(36).slice(2)}-${'x'.repeat(16)}`,
    ...claims,
  })
}

const rejects = (p: Promise<unknown>, reason: RegExp) => expect(p).rejects.toMatchObject({ code: 'PROOF_INVALID', message: reason })

describe('SPL-Proof audience (SPEC 7.4)', () => {
  it('a proof for this instance verifies', async () => {
    const { token } = await createRequestProof(caller, { method: 'GET', pathAndQuery: PQ, aud: callee.did })
    await expect(verifyRequestProof(token, expectAt())).resolves.toMatchObject({ iss: caller.did, aud: callee.did })
  })

  it('aud "*" is refused unless the door is a first contact (allowAnyAudience)', async () => {
    const star = async () => (await createRequestProof(caller, { method: 'GET', pathAndQuery: PQ, aud: '*' })).token
    await rejects(verifyRequestProof(await star(), expectAt()), /aud "\*" is not accepted/)
    await expect(verifyRequestProof(await star(), expectAt({ allowAnyAudience: true }))).resolves.toMatchObject({ aud: '*' })
  })

  it('a proof made for another instance is refused here (the same proof at two daemons)', async () => {
    const { token } = await createRequestProof(caller, { method: 'GET', pathAndQuery: PQ, aud: other.did })
    await rejects(verifyRequestProof(token, expectAt()), /aud names did:key:.*not this instance/)
    // …and accepted where it was meant to go.
    await expect(verifyRequestProof(token, expectAt({ selfDid: other.did }))).resolves.toMatchObject({ aud: other.did })
    // allowAnyAudience never accepts another instance's DID.
    const again = await createRequestProof(caller, { method: 'GET', pathAndQuery: PQ, aud: other.did })
    await rejects(verifyRequestProof(again.token, expectAt({ allowAnyAudience: true })), /not this instance/)
  })

  it('a proof without aud is refused', async () => {
    await rejects(
      verifyRequestProof(await rawProof({ aud: undefined, iat: T0 / 1000, exp: T0 / 1000 + 60 }), expectAt({ nowMs: T0 })),
      /aud is required/,
    )
  })
})

describe('SPL-Proof time window (SPEC 7.4: iat ≤ now + 30 s, now ≤ exp + 30 s, exp − iat ≤ 60 s)', () => {
  const at = (iatS: number, expS: number) => rawProof({ iat: T0 / 1000 + iatS, exp: T0 / 1000 + expS })
  const verifyAt = async (iatS: number, expS: number) => verifyRequestProof(await at(iatS, expS), expectAt({ nowMs: T0 }))

  it('iat up to 30 s ahead is accepted; 31 s ahead is refused', async () => {
    await expect(verifyAt(30, 90)).resolves.toMatchObject({ iss: caller.did })
    await rejects(verifyAt(31, 91), /iat is more than 30 s in the future/)
  })

  it('a proof is accepted until exp + 30 s and refused after it', async () => {
    await expect(verifyAt(-90, -30)).resolves.toMatchObject({ iss: caller.did })
    await rejects(verifyAt(-91, -31), /expired/)
    // The old code accepted this one (about 180 s after iat).
    await rejects(verifyAt(-180, -120), /expired/)
  })

  it('exp more than 60 s after iat, or before iat, is refused', async () => {
    await expect(verifyAt(0, 60)).resolves.toMatchObject({ iss: caller.did })
    await rejects(verifyAt(0, 61), /more than 60 s after iat/)
    await rejects(verifyAt(0, -1), /exp is before iat/)
  })

  it('a proof made by createRequestProof an injected 100 s ago is expired at the real clock', async () => {
    const { token } = await createRequestProof(caller, { method: 'GET', pathAndQuery: PQ, aud: callee.did }, Date.now() - 100_000)
    await rejects(verifyRequestProof(token, expectAt()), /expired|does not verify/)
  })
})

describe('SPL-Proof replay store (SPEC 7.4)', () => {
  it('the same proof is refused the second time through the same store', async () => {
    const replay = new ReplayCache(new MemoryReplayStore())
    const { token } = await createRequestProof(caller, { method: 'GET', pathAndQuery: PQ, aud: callee.did })
    await verifyRequestProof(token, expectAt({ replay }))
    await rejects(verifyRequestProof(token, expectAt({ replay })), /replay/)
  })

  it('the id is held until exp + 30 s, so the proof can never pass twice inside its window', async () => {
    const calls: { key: string; untilMs: number; nowMs: number }[] = []
    const store: ReplayStore = {
      claim: (key, untilMs, nowMs) => {
        calls.push({ key, untilMs, nowMs })
        return true
      },
    }
    const token = await rawProof({ iat: T0 / 1000, exp: T0 / 1000 + 60 })
    await verifyRequestProof(token, expectAt({ replay: new ReplayCache(store), nowMs: T0 }))
    expect(calls).toHaveLength(1)
    expect(calls[0]!.key.startsWith(`${caller.did}\n`)).toBe(true)
    expect(calls[0]!.nowMs).toBe(T0)
    expect(calls[0]!.untilMs).toBeGreaterThanOrEqual(T0 + 90_000)
  })

  it('a store that answers a promise is awaited (a durable store)', async () => {
    const store: ReplayStore = { claim: async () => false }
    const { token } = await createRequestProof(caller, { method: 'GET', pathAndQuery: PQ, aud: callee.did })
    await rejects(verifyRequestProof(token, expectAt({ replay: new ReplayCache(store) })), /replay/)
  })

  it('MemoryReplayStore holds a key until its time, then lets it go and prunes it', () => {
    const s = new MemoryReplayStore()
    expect(s.claim('a', 1_000, 0)).toBe(true)
    expect(s.claim('a', 2_000, 999)).toBe(false)
    expect(s.claim('a', 2_000, 1_000)).toBe(true)
    expect(s.claim('b', 5_000, 1_000)).toBe(true)
    expect(s.size).toBe(2)
    // Pruning runs at most every 10 s of the clock it is given.
    expect(s.claim('c', 30_000, 20_000)).toBe(true)
    expect(s.size).toBe(1)
  })
})
