// The two peer tokens of a link (SPEC 7.5): the one this side issues to the peer, and the one the
// peer issued to this side, each checked for what it must say before it is kept.
import { type Keypair, verifyDidJwt } from '@spl/identity'
import { issuePeerToken, PEER_TOKEN_SCOPE } from '@spl/transport'
import { refuse } from './errors.js'

const PEER_TOKEN_TYP = 'spl-peer+jwt'

/** A token's id and expiry (s since the epoch), as kept on the link. */
export interface TokenId {
  jti: string
  exp: number
}

/** Issues the token that lets `holderDid` pull from this instance, reading as `namespace`. */
export function issueLinkToken(keypair: Keypair, holderDid: string, namespace: string, ttlMs: number, now: number) {
  return issuePeerToken(keypair, { holderDid, namespace, threads: '*', ttlSec: Math.floor(ttlMs / 1000) }, now)
}

/** The verified claims of a peer token; a refusal with `status` and `what` otherwise. */
async function verified(token: string, status: number, what: string) {
  try {
    return await verifyDidJwt(token, { typ: PEER_TOKEN_TYP, code: 'TOKEN_INVALID' })
  } catch (err) {
    throw refuse('TOKEN_INVALID', status, `${what}: ${err instanceof Error ? err.message : String(err)}`)
  }
}

/** The token the peer issued to this side: by the peer, for us, for sync (a bad one is the peer's fault: 502). */
export async function checkHeldToken(token: string, peerDid: string, selfDid: string): Promise<TokenId> {
  const c = await verified(token, 502, "the peer's token does not verify")
  if (
    c.iss !== peerDid ||
    c['sub'] !== selfDid ||
    c['scope'] !== PEER_TOKEN_SCOPE ||
    typeof c.jti !== 'string' ||
    typeof c.exp !== 'number'
  ) {
    throw refuse('TOKEN_INVALID', 502, 'the peer issued a token that is not for this instance (iss, sub or scope)')
  }
  return { jti: c.jti, exp: c.exp }
}

/** The token an initiator gives us in its request: its own, for us, for sync, unexpired (else 400). */
export async function checkGivenToken(token: string, initiator: string, selfDid: string, now: number): Promise<TokenId> {
  const c = await verified(token, 400, 'token_for_responder')
  if (c.iss !== initiator || c.aud !== initiator || c['sub'] !== selfDid || c['scope'] !== PEER_TOKEN_SCOPE) {
    throw refuse(
      'TOKEN_INVALID',
      400,
      'token_for_responder must be issued by the initiator for this instance (iss, aud, sub, scope of SPEC 7.5)',
    )
  }
  if (typeof c.jti !== 'string' || typeof c.exp !== 'number' || c.exp * 1000 <= now)
    throw refuse('TOKEN_INVALID', 400, 'token_for_responder has expired or has no jti')
  return { jti: c.jti, exp: c.exp }
}

/** The claims of a token we hold, decoded without checking (its iat/exp, for renewal). */
export function claimsOf(token: string): { iat?: number; exp?: number; jti?: string } {
  try {
    return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { iat?: number; exp?: number; jti?: string }
  } catch {
    return {}
  }
}
