// The peer link (SPEC 9): one per peer DID, made by one handshake, holding the two tokens (the
// one we issued to the peer, by id only, and the one the peer issued to us) and the threads
// whose pull pairs it keeps on both sides.
import crypto from 'node:crypto'

/** Stored states; `degraded` is derived when read (see effectiveState). */
export const LINK_STATES = ['establishing', 'active', 'paused', 'degraded', 'revoked'] as const
export type LinkState = (typeof LINK_STATES)[number]
export type StoredLinkState = Exclude<LinkState, 'degraded'>

export interface LinkError {
  code: string
  message: string
  at: number
}

export interface Link {
  link_id: string
  peer_did: string
  peer_url: string
  /** Which side made the request. */
  role: 'initiator' | 'responder'
  state: StoredLinkState
  threads: string[]
  /** The namespace this side bound the peer to (SPEC 9.3), if any. */
  local_namespace: string | null
  /** The namespace the peer bound this instance to: the one to claim when pulling from it. */
  peer_namespace: string | null
  /** The token this side issued to the peer: id and expiry only. */
  issued_jti: string
  issued_exp: number
  /** The token the peer issued to this side (a secret: never shown, never in a record). */
  held_token: string | null
  held_jti: string | null
  held_exp: number | null
  /** The initiator's nonce while its request is held (to poll with); null otherwise. */
  nonce: string | null
  created_at: number
  updated_at: number
  /** The last failed renewal of the held token, cleared by the next success. */
  renewal_error: LinkError | null
  revoked_by: 'local' | 'peer' | null
}

/** The link id of SPEC 9.1: `fed_` + the first 16 hex of sha256 of the two DIDs sorted. */
export function linkIdFor(didA: string, didB: string): string {
  const [x, y] = [didA, didB].sort()
  return `fed_${crypto.createHash('sha256').update(`${x}\n${y}`).digest('hex').slice(0, 16)}`
}

export const LINK_ID_RE = /^fed_[0-9a-f]{16}$/

/** The state to show: `degraded` when the peer refused our token or has been unreachable too long. */
export function effectiveState(
  link: Link,
  health: { tokenRefused: boolean; lastSuccessAt: number | null; failingSince: number | null },
  degradedAfterMs: number,
  now: number,
): LinkState {
  if (link.state !== 'active') return link.state
  if (health.tokenRefused) return 'degraded'
  if (health.failingSince !== null && now - health.failingSince > degradedAfterMs) return 'degraded'
  return 'active'
}

/** A link as the API shows it: no token, ever. */
export function linkView(link: Link, state: LinkState) {
  const { held_token: _secret, nonce: _nonce, ...rest } = link
  return {
    object: 'federation_link' as const,
    ...rest,
    state,
    stored_state: link.state,
    tokens: {
      issued: { jti: link.issued_jti, scope: 'federation:sync', expires_at: new Date(link.issued_exp).toISOString() },
      held: link.held_jti ? { jti: link.held_jti, scope: 'federation:sync', expires_at: new Date(link.held_exp ?? 0).toISOString() } : null,
    },
  }
}
export type LinkView = ReturnType<typeof linkView>
