// The end of a link (SPEC 9.2, 7.5): revoked here (the issued token's id refused from then on,
// the pairs removed, the peer told) or by the peer's notice.
import { signedRequest } from '@spl/transport'
import type { LinkContext } from './context.js'
import { refuse } from './errors.js'
import { journal, linkPairs } from './lifecycle.js'
import type { Link, LinkView } from './link.js'
import { find, view } from './views.js'
import { peerRevokePath } from './wire.js'

/** Ends a link here: the issued token's jti revoked, the pairs removed, the peer told (best effort). */
export async function revoke(ctx: LinkContext, ref: string): Promise<{ link: LinkView; notified: boolean; notice?: string }> {
  const link = await find(ctx, ref)
  // Revoking again re-sends the notice (the peer may have been down the first time); a link
  // the peer revoked needs no notice.
  if (link.state === 'revoked' && link.revoked_by !== 'local')
    return { link: view(ctx, link), notified: false, notice: 'already revoked by the peer' }
  if (link.state !== 'revoked') await end(ctx, link, 'local')
  let notified = false
  let notice: string | undefined
  try {
    await signedRequest(ctx.c.keypair, {
      peerUrl: link.peer_url,
      method: 'POST',
      path: peerRevokePath(link.link_id),
      body: {},
      aud: link.peer_did,
      timeoutMs: 5000,
    })
    notified = true
  } catch (err) {
    notice = `the peer was not told (${err instanceof Error ? err.message : String(err)}): its pulls are refused from now on anyway`
  }
  return { link: view(ctx, (await ctx.c.store.link(link.link_id))!), notified, ...(notice ? { notice } : {}) }
}

/** `POST /v1/federation/links/{id}/revoked`: the peer ended the link. */
export async function handlePeerRevoked(
  ctx: LinkContext,
  proofIss: string,
  linkId: string,
): Promise<{ link_id: string; state: 'revoked' }> {
  const link = await ctx.c.store.link(linkId)
  if (!link || link.peer_did !== proofIss) throw refuse('LINK_NOT_FOUND', 404, `no link ${linkId.slice(0, 40)} with you.`)
  if (link.state !== 'revoked') await end(ctx, link, 'peer')
  return { link_id: linkId, state: 'revoked' }
}

async function end(ctx: LinkContext, link: Link, by: 'local' | 'peer'): Promise<void> {
  const now = ctx.now()
  await ctx.c.store.transaction(async (trx) => {
    await ctx.c.store.revoke(link.issued_jti, link.issued_exp, now, trx)
    await ctx.c.store.putLink({ ...link, state: 'revoked', revoked_by: by, nonce: null, updated_at: now }, trx)
  })
  ctx.revoked.add(link.issued_jti)
  ctx.byPeer.set(link.peer_did, { ...link, state: 'revoked', revoked_by: by })
  for (const p of linkPairs(ctx, link)) await ctx.c.pairs.remove(p).catch(() => {})
  await journal(ctx, link, link.state, 'revoked')
  ctx.c.logger.info({ link: link.link_id, by }, 'federation: peer link revoked')
}
