// Reading links: the view the API shows (its state derived from its pairs' health), the
// in-memory snapshot, and the lookup of a link by id, peer DID or peer URL.
import type { LinkContext } from './context.js'
import { refuse } from './errors.js'
import { effectiveState, type Link, type LinkState, type LinkView, linkView } from './link.js'

export function view(ctx: LinkContext, link: Link): LinkView {
  const pairs = ctx.c.pairs.of(link.peer_did).filter((p) => link.threads.includes(p.thread_id))
  // The pair's code is the pull class (HTTP_4XX); the peer's code is in the message: "peer answered 401 (TOKEN_REVOKED: …)".
  const tokenRefused = pairs.some((p) => p.last_error !== null && /\bTOKEN_(REVOKED|INVALID)\b/.test(p.last_error.message))
  const failing = pairs.length > 0 && pairs.every((p) => p.state === 'failing')
  const lastSuccess = Math.max(0, ...pairs.map((p) => p.last_success_at ?? p.created_at))
  const state: LinkState = effectiveState(
    link,
    { tokenRefused, lastSuccessAt: lastSuccess || null, failingSince: failing ? lastSuccess : null },
    ctx.s.degradedAfterMs,
    ctx.now(),
  )
  return { ...linkView(link, state), pair_ids: pairs.map((p) => p.pair_id) } as LinkView
}

/** Every link as kept in memory (in step with the store), for synchronous reports such as health. */
export function snapshot(ctx: LinkContext): LinkView[] {
  return [...ctx.byPeer.values()].sort((a, b) => a.created_at - b.created_at).map((l) => view(ctx, l))
}

export async function links(ctx: LinkContext): Promise<LinkView[]> {
  return (await ctx.c.store.links()).map((l) => view(ctx, l))
}

/** A link by id, peer DID, or peer URL. */
export async function find(ctx: LinkContext, ref: string): Promise<Link> {
  const all = await ctx.c.store.links()
  const ref0 = ref.replace(/\/+$/, '')
  const link = all.find((l) => l.link_id === ref || l.peer_did === ref || l.peer_url === ref0)
  if (!link) throw refuse('LINK_NOT_FOUND', 404, `no peer link ${ref.slice(0, 120)}.`, 'spl federation list')
  return link
}

/** A link by ref that is neither revoked nor waiting for the peer's decision (refused otherwise). */
export async function live(ctx: LinkContext, ref: string): Promise<Link> {
  const link = await find(ctx, ref)
  if (link.state === 'revoked')
    throw refuse('LINK_REVOKED', 409, `the link ${link.link_id} is revoked (terminal).`, 'pair again with spl federation pair')
  if (link.state === 'establishing')
    throw refuse(
      'LINK_ESTABLISHING',
      409,
      `the link ${link.link_id} waits for the peer's decision.`,
      'spl federation pair <peer-url> asks again',
    )
  return link
}
