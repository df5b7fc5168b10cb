import { Keypair } from '@spl/identity'
import { describe, expect, it } from 'vitest'
import { issuePeerToken, PEER_TOKEN_SCOPE, PeerTokenInvalidError, verifyPeerToken } from './peer-token.js'

// issuePeerToken has no caller yet: `spl federation pair` will issue tokens with it. Until then
// this test keeps it honest against verifyPeerToken, which the change feed uses.

const source = Keypair.generate()
const holder = Keypair.generate()
const never = () => false

describe('peer tokens (SPEC 7.5)', () => {
  it('a token issued for a holder verifies for a proof by that holder, with its claims', async () => {
    const now = Date.now()
    const { token, claims } = await issuePeerToken(source, { holderDid: holder.did, namespace: 'acme', threads: ['th_a'] }, now)
    expect(claims).toMatchObject({ iss: source.did, aud: source.did, sub: holder.did, scope: PEER_TOKEN_SCOPE, ns: 'acme' })
    expect(claims.exp - claims.iat).toBe(90 * 24 * 3600)
    const back = await verifyPeerToken(token, { selfDid: source.did, proofIss: holder.did, isRevoked: never })
    expect(back).toMatchObject({ sub: holder.did, threads: ['th_a'], jti: claims.jti })
  })

  it('is refused for another holder, by another instance, when revoked or expired', async () => {
    const { token, claims } = await issuePeerToken(source, { holderDid: holder.did, namespace: 'acme', threads: '*' })
    const other = Keypair.generate()
    await expect(verifyPeerToken(token, { selfDid: source.did, proofIss: other.did, isRevoked: never })).rejects.toThrow(
      PeerTokenInvalidError,
    )
    await expect(verifyPeerToken(token, { selfDid: other.did, proofIss: holder.did, isRevoked: never })).rejects.toThrow(
      /not issued by this/,
    )
    const revoked = await verifyPeerToken(token, {
      selfDid: source.did,
      proofIss: holder.did,
      isRevoked: (jti) => jti === claims.jti,
    }).catch((e: unknown) => e)
    // A revoked token has its own code, so the holder can tell it from a bad one (SPEC 9.2).
    expect((revoked as PeerTokenInvalidError).toJSON()).toMatchObject({ code: 'TOKEN_REVOKED', message: expect.stringMatching(/revoked/) })
    const old = await issuePeerToken(source, { holderDid: holder.did, namespace: 'acme', threads: '*', ttlSec: 60 }, Date.now() - 3600_000)
    const err = await verifyPeerToken(old.token, { selfDid: source.did, proofIss: holder.did, isRevoked: never }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(PeerTokenInvalidError)
    expect((err as PeerTokenInvalidError).toJSON()).toMatchObject({ object: 'error', code: 'TOKEN_INVALID' })
  })
})
