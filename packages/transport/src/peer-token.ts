import crypto from 'node:crypto'
import { JwtInvalidError, type Keypair, SplError, signJwt, verifyDidJwt } from '@spl/identity'

const PEER_TOKEN_TYP = 'spl-peer+jwt'
export const PEER_TOKEN_SCOPE = 'federation:sync'
const NINETY_DAYS_S = 90 * 24 * 3600

/** Claims of a peer token (SPEC 7.5). */
export interface PeerTokenClaims {
  iss: string
  aud: string
  sub: string
  scope: typeof PEER_TOKEN_SCOPE
  ns: string
  threads: '*' | string[]
  iat: number
  exp: number
  jti: string
}

/** A bearer token that is not ours, not for this caller, expired or revoked. */
export class PeerTokenInvalidError extends SplError {
  override readonly name = 'PeerTokenInvalidError'
  constructor(reason: string, code: 'TOKEN_INVALID' | 'TOKEN_REVOKED' = 'TOKEN_INVALID') {
    super(code, `peer token rejected: ${reason}`, {
      status: 401,
      fix:
        code === 'TOKEN_REVOKED'
          ? "the peer revoked this instance's link: pair again with `spl federation pair <peer-url>` if its operator agrees"
          : 're-pair with `spl federation pair <peer-url>` to get a fresh token',
    })
  }
}

/** Issues a token that lets `holderDid` pull from this source (signed by `source`). */
export async function issuePeerToken(
  source: Keypair,
  grant: { holderDid: string; namespace: string; threads: '*' | string[]; ttlSec?: number },
  nowMs = Date.now(),
): Promise<{ token: string; claims: PeerTokenClaims }> {
  const iat = Math.floor(nowMs / 1000)
  const claims: PeerTokenClaims = {
    iss: source.did,
    aud: source.did,
    sub: grant.holderDid,
    scope: PEER_TOKEN_SCOPE,
    ns: grant.namespace,
    threads: grant.threads,
    iat,
    exp: iat + (grant.ttlSec ?? NINETY_DAYS_S),
    jti: crypto.randomBytes(16).toString('base64url'),
  }
  return { token: await signJwt(source, PEER_TOKEN_TYP, { ...claims }), claims }
}

/**
 * Checks a bearer peer token presented together with a proof by `proofIss`: it must be issued
 * by this source for that holder, unexpired, and not on the revocation list.
 */
export async function verifyPeerToken(
  token: string,
  expected: { selfDid: string; proofIss: string; isRevoked: (jti: string) => boolean },
): Promise<PeerTokenClaims> {
  let claims: Awaited<ReturnType<typeof verifyDidJwt>>
  try {
    claims = await verifyDidJwt(token, { typ: PEER_TOKEN_TYP, clockToleranceSec: 120, code: 'TOKEN_INVALID' })
  } catch (err) {
    throw new PeerTokenInvalidError(err instanceof JwtInvalidError ? err.message : 'it does not verify')
  }
  const c = claims as unknown as PeerTokenClaims
  if (c.iss !== expected.selfDid || c.aud !== expected.selfDid) throw new PeerTokenInvalidError('it was not issued by this instance')
  if (c.sub !== expected.proofIss) throw new PeerTokenInvalidError('it belongs to another holder than the proof signer')
  if (c.scope !== PEER_TOKEN_SCOPE) throw new PeerTokenInvalidError(`scope must be ${PEER_TOKEN_SCOPE}`)
  if (typeof c.jti !== 'string') throw new PeerTokenInvalidError('it has no jti')
  if (expected.isRevoked(c.jti)) throw new PeerTokenInvalidError('it has been revoked', 'TOKEN_REVOKED')
  return c
}
