// The responder of one-command pairing (SPEC 9.1 step 3): its decision on a pairing request
// (accept, hold for the operator, or refuse), a link re-established by its peer, and the answer
// to the initiator's poll of a held request.
import type { WellKnownDocument } from '@spl/discovery'
import type { LinkContext } from './context.js'
import { refuse } from './errors.js'
import { takeInvite } from './invites.js'
import { activate, ensurePairs, journal } from './lifecycle.js'
import { type Link, linkIdFor } from './link.js'
import type { HeldRequest } from './store.js'
import { checkGivenToken, issueLinkToken } from './tokens.js'
import type { PairRequest } from './wire.js'

/** Held requests expire after this (SPEC 9.1). */
export const REQUEST_TTL_MS = 7 * 86_400_000
/** Nonces are remembered as long as a held request may live. */
const NONCE_TTL_MS = REQUEST_TTL_MS

type PairAnswer = { status: 200 | 202; body: Record<string, unknown> }

/** The 200 answer of SPEC 9.1 (to the request or to a poll): the link is active, with the initiator's token. */
function accepted(linkId: string, token: string | null, manifest: WellKnownDocument): PairAnswer {
  return {
    status: 200,
    body: {
      object: 'federation_pair',
      pair_id: linkId,
      state: 'active',
      token_for_initiator: token,
      responder_manifest: manifest,
    },
  }
}

/** The 202 answer: the request is held for the operator until `expiresAt`. */
function pending(linkId: string, expiresAt: number): PairAnswer {
  return {
    status: 202,
    body: { object: 'federation_pair', pair_id: linkId, state: 'pending', expires_at: new Date(expiresAt).toISOString() },
  }
}

/** `POST /v1/federation/pair` after its proof was checked: accept (200), hold (202) or refuse. */
export async function handlePairRequest(ctx: LinkContext, proofIss: string, req: PairRequest, origin: string): Promise<PairAnswer> {
  if (proofIss !== req.initiator_did) {
    throw refuse('PROOF_INVALID', 401, `the proof is signed by ${proofIss}, not by the initiator ${req.initiator_did}`)
  }
  if (await ctx.c.store.isBlocked(req.initiator_did)) {
    throw refuse('PEER_BLOCKED', 403, 'this instance does not take pairing requests from you.')
  }
  if (ctx.s.policy === 'never') {
    throw refuse(
      'PAIRING_DISABLED',
      403,
      'this instance accepts no pairing requests (federation.accept_pair_requests = "never").',
      "ask the peer's operator",
    )
  }
  if (req.initiator_did === ctx.c.keypair.did) throw refuse('PAIR_SELF', 400, 'an instance cannot pair with itself.')
  const now = ctx.now()
  const given = await checkGivenToken(req.token_for_responder, req.initiator_did, ctx.c.keypair.did, now)
  const localNs = req.namespace_map[0]?.peer ?? null
  if (localNs) ctx.c.bindings.assertUsable(localNs)
  // The nonce first: a replayed request is 410 whatever became of the first one (SPEC 9.1).
  if (!(await ctx.c.store.claimNonce(`pair:${req.nonce}`, now + NONCE_TTL_MS, now))) {
    throw refuse(
      'NONCE_REPLAYED',
      410,
      'this pairing request was seen before (its nonce is used).',
      'run spl federation pair again: it makes a fresh request',
    )
  }
  const linkId = linkIdFor(ctx.c.keypair.did, req.initiator_did)
  const existing = await ctx.c.store.link(linkId)
  if (existing && existing.state !== 'revoked') {
    // The same DID, proven by its key with a fresh nonce, asks again: it lost its side of the
    // link (an answer that never arrived, a restored home). It gets new tokens for the same link;
    // the old ones stop. A different mapping is not taken this way: that is a new decision.
    const sameMap =
      (req.namespace_map[0]?.peer ?? null) === existing.local_namespace && (req.namespace_map[0]?.local ?? null) === existing.peer_namespace
    if (!sameMap || existing.state === 'establishing') {
      throw refuse(
        'LINK_EXISTS',
        409,
        `a link with you exists here (${linkId}, ${existing.state})${sameMap ? '' : ' with another namespace mapping'}.`,
        `the peer's operator can revoke it (spl federation revoke ${linkId}) to pair anew`,
      )
    }
    const token = await reestablish(ctx, existing, req, given)
    return accepted(linkId, token, ctx.c.ownManifest(origin))
  }
  const held: HeldRequest = {
    link_id: linkId,
    initiator_did: req.initiator_did,
    initiator_url: req.initiator_url.replace(/\/+$/, ''),
    nonce: req.nonce,
    threads: [...new Set(req.threads)],
    namespace_map: req.namespace_map,
    token_for_responder: req.token_for_responder,
    answer_token: null,
    created_at: now,
    expires_at: now + REQUEST_TTL_MS,
    state: 'pending',
    decided_at: null,
  }
  // `auto` accepts strangers, but never lets one choose the namespace it is bound to here (that
  // would be a grant it made itself, SPEC 6.4): a request with a mapping waits for the operator
  // unless it carries an invite naming that mapping.
  let accept = ctx.s.policy === 'auto' && req.namespace_map.length === 0
  if (req.invite !== undefined && ctx.s.policy !== 'manual') {
    await takeInvite(ctx, req.invite, held, now)
    accept = true
  }
  if (!accept) {
    await ctx.c.store.putRequest(held)
    ctx.c.logger.info({ link: linkId, did: req.initiator_did }, 'federation: pairing request held for the operator')
    return pending(linkId, held.expires_at)
  }
  const token = await acceptRequest(ctx, held, given)
  return accepted(linkId, token, ctx.c.ownManifest(origin))
}

/** New tokens both ways for a live link whose initiator lost its side; the old issued one is revoked. */
async function reestablish(ctx: LinkContext, link: Link, req: PairRequest, given: { jti: string; exp: number }): Promise<string> {
  const now = ctx.now()
  const issued = await issueLinkToken(ctx.c.keypair, link.peer_did, link.local_namespace ?? ctx.s.namespace, ctx.s.tokenTtlMs, now)
  const renewed: Link = {
    ...link,
    peer_url: req.initiator_url.replace(/\/+$/, ''),
    threads: [...new Set([...link.threads, ...req.threads])],
    issued_jti: issued.claims.jti,
    issued_exp: issued.claims.exp * 1000,
    held_token: req.token_for_responder,
    held_jti: given.jti,
    held_exp: given.exp * 1000,
    renewal_error: null,
    updated_at: now,
  }
  await ctx.c.store.transaction(async (trx) => {
    await ctx.c.store.revoke(link.issued_jti, link.issued_exp, now, trx)
    await ctx.c.store.putLink(renewed, trx)
  })
  ctx.revoked.add(link.issued_jti)
  ctx.byPeer.set(link.peer_did, renewed)
  if (renewed.state === 'active') await ensurePairs(ctx, renewed)
  await journal(ctx, renewed, link.state, renewed.state)
  ctx.c.logger.info({ link: link.link_id, did: link.peer_did }, 'federation: link re-established by its peer (new tokens)')
  return issued.token
}

/** Makes the responder's side of the link (auto, invite, or the operator's approve). */
export async function acceptRequest(ctx: LinkContext, held: HeldRequest, given: { jti: string; exp: number }): Promise<string> {
  const now = ctx.now()
  const localNs = held.namespace_map[0]?.peer ?? null
  const issued = await issueLinkToken(ctx.c.keypair, held.initiator_did, localNs ?? ctx.s.namespace, ctx.s.tokenTtlMs, now)
  const link: Link = {
    link_id: held.link_id,
    peer_did: held.initiator_did,
    peer_url: held.initiator_url,
    role: 'responder',
    state: 'active',
    threads: held.threads,
    local_namespace: localNs,
    peer_namespace: held.namespace_map[0]?.local ?? null,
    issued_jti: issued.claims.jti,
    issued_exp: issued.claims.exp * 1000,
    held_token: held.token_for_responder,
    held_jti: given.jti,
    held_exp: given.exp * 1000,
    nonce: null,
    created_at: now,
    updated_at: now,
    renewal_error: null,
    revoked_by: null,
  }
  await ctx.c.store.transaction(async (trx) => {
    await ctx.c.store.putLink(link, trx)
    await ctx.c.store.putRequest({ ...held, state: 'approved', decided_at: now, answer_token: issued.token }, trx)
  })
  ctx.byPeer.set(link.peer_did, link)
  await activate(ctx, link, 'establishing', [])
  ctx.c.logger.info({ link: link.link_id, did: link.peer_did }, 'federation: peer link active')
  return issued.token
}

/** `POST /v1/federation/pair/{id}/poll`: the initiator asks about its held request. */
export async function handlePoll(ctx: LinkContext, proofIss: string, linkId: string, nonce: string): Promise<PairAnswer> {
  const held = await ctx.c.store.request(linkId)
  if (!held || held.initiator_did !== proofIss || held.nonce !== nonce) {
    throw refuse(
      'REQUEST_NOT_FOUND',
      404,
      `no pairing request ${linkId.slice(0, 40)} from you with that nonce.`,
      'spl federation pair <peer-url>',
    )
  }
  if (await ctx.c.store.isBlocked(proofIss)) throw refuse('PEER_BLOCKED', 403, 'this instance does not take pairing requests from you.')
  if (held.state === 'rejected') throw refuse('PAIR_REJECTED', 403, "the peer's operator rejected the pairing request.")
  if (held.state === 'pending' && held.expires_at <= ctx.now())
    throw refuse('REQUEST_EXPIRED', 410, 'the pairing request expired (held requests live 7 days).', 'spl federation pair <peer-url> again')
  if (held.state === 'pending') return pending(linkId, held.expires_at)
  return accepted(linkId, held.answer_token, ctx.c.ownManifest(held.initiator_url))
}
