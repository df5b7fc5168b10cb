// Token renewal (SPEC 9.1, 7.5): the held token renewed before it expires (by one replica
// only), on the operator's demand, and the fresh token this side issues when the peer asks.
import { signedRequest } from '@spl/transport'
import { type LinkContext, reload } from './context.js'
import { peerError, refuse } from './errors.js'
import type { Link, LinkView } from './link.js'
import { checkHeldToken, claimsOf, issueLinkToken } from './tokens.js'
import { live, view } from './views.js'
import { renewAnswerSchema, renewPath } from './wire.js'

/** `spl federation refresh`: renew the held token now. */
export async function refresh(ctx: LinkContext, ref: string): Promise<LinkView> {
  const link = await live(ctx, ref)
  await renew(ctx, link)
  return view(ctx, (await ctx.c.store.link(link.link_id))!)
}

/** `POST /v1/federation/links/{id}/renew`: the peer asks for a fresh token (a light re-handshake). */
export async function handleRenew(
  ctx: LinkContext,
  proofIss: string,
  linkId: string,
): Promise<{ object: 'federation_token'; token: string; expires_at: string }> {
  const link = await ctx.c.store.link(linkId)
  if (!link || link.peer_did !== proofIss) throw refuse('LINK_NOT_FOUND', 404, `no link ${linkId.slice(0, 40)} with you.`)
  if (link.state === 'revoked')
    throw refuse('LINK_REVOKED', 403, 'this link was revoked: its tokens are not renewed.', 'pair again with spl federation pair')
  const now = ctx.now()
  const issued = await issueLinkToken(ctx.c.keypair, link.peer_did, link.local_namespace ?? ctx.s.namespace, ctx.s.tokenTtlMs, now)
  const renewed: Link = { ...link, issued_jti: issued.claims.jti, issued_exp: issued.claims.exp * 1000, updated_at: now }
  await ctx.c.store.putLink(renewed)
  ctx.byPeer.set(link.peer_did, renewed)
  return { object: 'federation_token', token: issued.token, expires_at: new Date(renewed.issued_exp).toISOString() }
}

/** Renews every held token past two thirds of its life (the timer calls this each second). */
export async function renewDue(ctx: LinkContext): Promise<void> {
  const now = ctx.now()
  // A copy: a renewal another replica took reloads the map.
  for (const link of [...ctx.byPeer.values()]) {
    if (link.state !== 'active' && link.state !== 'paused') continue
    if (!link.held_token) {
      // Restored from a bundle (token ids only, docs/backup.md): the id is known, the token is
      // not. Ask the peer for a fresh one now, and every 30 s until it answers.
      const retryAt = link.renewal_error ? link.renewal_error.at + 30_000 : 0
      if (link.held_jti !== null && now >= retryAt) await renewOnce(ctx, link, now)
      continue
    }
    const { iat, exp } = claimsOf(link.held_token)
    if (typeof iat !== 'number' || typeof exp !== 'number') continue
    const due = iat * 1000 + ((exp - iat) * 1000 * 2) / 3
    // After a failure, wait a little before the next try (not once a second).
    const retryAt = link.renewal_error ? link.renewal_error.at + Math.min(30_000, ((exp - iat) * 1000) / 10) : 0
    if (now >= due && now >= retryAt) await renewOnce(ctx, link, now)
  }
}

/**
 * A due renewal, by this daemon only if it takes the link's row first: two replicas renewing
 * at once would each get a token from the peer, which revokes the first when it issues the
 * second, and the row could end up holding the revoked one. The other replica reloads.
 */
async function renewOnce(ctx: LinkContext, link: Link, now: number): Promise<void> {
  try {
    if (!(await ctx.c.store.claimRenewal(link.link_id, link.updated_at, now))) {
      await reload(ctx)
      return
    }
    await renew(ctx, { ...link, updated_at: Math.max(now, link.updated_at + 1) })
  } catch {
    // renew keeps its failure on the link; a store that is away is tried at the next round.
  }
}

async function renew(ctx: LinkContext, link: Link): Promise<void> {
  try {
    const answer = await signedRequest(ctx.c.keypair, {
      peerUrl: link.peer_url,
      method: 'POST',
      path: renewPath(link.link_id),
      body: {},
      aud: link.peer_did,
      timeoutMs: 5000,
    })
    const parsed = renewAnswerSchema.safeParse(answer.json)
    if (!parsed.success) throw refuse('PAIR_ANSWER_INVALID', 502, 'the peer renewed with an answer that does not fit')
    const claims = await checkHeldToken(parsed.data.token, link.peer_did, ctx.c.keypair.did)
    const current = (await ctx.c.store.link(link.link_id)) ?? link
    const renewed: Link = {
      ...current,
      held_token: parsed.data.token,
      held_jti: claims.jti,
      held_exp: claims.exp * 1000,
      renewal_error: null,
      updated_at: ctx.now(),
    }
    await ctx.c.store.putLink(renewed)
    ctx.byPeer.set(link.peer_did, renewed)
    ctx.c.logger.info({ link: link.link_id, jti: claims.jti }, 'federation: token renewed')
  } catch (err) {
    const e = peerError(err, 'renewing the token')
    const current = (await ctx.c.store.link(link.link_id)) ?? link
    const failed: Link = { ...current, renewal_error: { code: e.code, message: e.message, at: ctx.now() } }
    await ctx.c.store.putLink(failed)
    ctx.byPeer.set(link.peer_did, failed)
    if (!link.renewal_error) ctx.c.logger.warn({ link: link.link_id, code: e.code }, `federation: token renewal failed: ${e.message}`)
    throw e
  }
}
