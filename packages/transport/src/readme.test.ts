import { Keypair } from '@spl/identity'
import { describe, expect, it } from 'vitest'
import { runReadmeExample } from '../../../test-utils/readme-example.js'
import { createRequestProof, createResponseProof, ReplayCache, verifyRequestProof, verifyResponseProof } from './index.js'

describe('README usage', () => {
  it('the README usage example runs as written', async () => {
    const code = await runReadmeExample(new URL('../README.md', import.meta.url), (spec) =>
      spec === '@spl/transport' ? import('./index.js') : import(spec),
    )
    expect(code).toContain('verifyRequestProof')
  })

  it('a request proof verifies once and is refused when replayed', async () => {
    const caller = Keypair.generate()
    const callee = Keypair.generate()
    const pathAndQuery = '/v1/sync/changes?thread=th_a'
    const { token, jti } = await createRequestProof(caller, { method: 'GET', pathAndQuery, aud: callee.did })
    const replay = new ReplayCache()
    const proof = await verifyRequestProof(token, { selfDid: callee.did, method: 'GET', pathAndQuery, replay })
    expect(proof.iss).toBe(caller.did)
    await expect(verifyRequestProof(token, { selfDid: callee.did, method: 'GET', pathAndQuery, replay })).rejects.toMatchObject({
      code: 'PROOF_INVALID',
    })
    // The wrong path, the wrong method and the wrong audience are refused too.
    const fresh = async () => (await createRequestProof(caller, { method: 'GET', pathAndQuery, aud: callee.did })).token
    const check = (t: string, over: Partial<{ method: string; pathAndQuery: string; selfDid: string }>) =>
      verifyRequestProof(t, { selfDid: callee.did, method: 'GET', pathAndQuery, replay: new ReplayCache(), ...over })
    await expect(check(await fresh(), { pathAndQuery: '/v1/sync/changes?thread=th_b' })).rejects.toMatchObject({ code: 'PROOF_INVALID' })
    await expect(check(await fresh(), { method: 'POST' })).rejects.toMatchObject({ code: 'PROOF_INVALID' })
    await expect(check(await fresh(), { selfDid: Keypair.generate().did })).rejects.toMatchObject({ code: 'PROOF_INVALID' })

    const body = '{"records":[]}'
    const rp = await createResponseProof(callee, { callerDid: caller.did, jti, body })
    await expect(verifyResponseProof(rp, { peerDid: callee.did, callerDid: caller.did, jti, body })).resolves.toBeUndefined()
    await expect(verifyResponseProof(rp, { peerDid: callee.did, callerDid: caller.did, jti, body: `${body} ` })).rejects.toMatchObject({
      code: 'PROOF_INVALID',
    })
    await expect(verifyResponseProof(rp, { peerDid: Keypair.generate().did, callerDid: caller.did, jti, body })).rejects.toMatchObject({
      code: 'IDENTITY_MISMATCH',
    })
  })
})
