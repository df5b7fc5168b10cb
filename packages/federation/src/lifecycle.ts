// A link's changes of state (SPEC 9.2) and what follows them: pause and resume, the activation
// of a new link (binding, journal, pairs), the link's pairs in the sync engine, and the
// `core.federation.pair.v1` records of every transition.
import type { LinkContext } from './context.js'
import type { Link, LinkState, LinkView } from './link.js'
import { live, view } from './views.js'

export async function pause(ctx: LinkContext, ref: string): Promise<LinkView> {
  const link = await live(ctx, ref)
  if (link.state === 'active') {
    for (const p of linkPairs(ctx, link)) await ctx.c.pairs.pause(p)
    await transition(ctx, link, 'paused')
  }
  return view(ctx, (await ctx.c.store.link(link.link_id))!)
}

export async function resume(ctx: LinkContext, ref: string): Promise<LinkView> {
  const link = await live(ctx, ref)
  if (link.state === 'paused') {
    const active = await transition(ctx, link, 'active')
    await ensurePairs(ctx, active)
    for (const p of linkPairs(ctx, active)) await ctx.c.pairs.resume(p)
  }
  return view(ctx, (await ctx.c.store.link(link.link_id))!)
}

/** Binding, journal and pairs of a link that just became active (both roles). */
export async function activate(ctx: LinkContext, link: Link, from: LinkState, steps: string[]): Promise<string[]> {
  if (link.local_namespace && ctx.c.bindings.bindingOf(link.peer_did) !== link.local_namespace) {
    await ctx.c.bindings.bind(link.peer_did, link.local_namespace)
    steps.push(`bound ${link.peer_did} to namespace ${link.local_namespace} here (SPEC 6.4)`)
  }
  await journal(ctx, link, from, 'active')
  steps.push(`recorded on th_federation_pairs (${from} → active)`)
  const pairs = await ensurePairs(ctx, link)
  if (pairs.length) steps.push(`pairs pulling ${link.threads.join(', ')} from the peer: ${pairs.join(', ')}`)
  return pairs
}

export function linkPairs(ctx: LinkContext, link: Link): string[] {
  return ctx.c.pairs
    .of(link.peer_did)
    .filter((p) => link.threads.includes(p.thread_id))
    .map((p) => p.pair_id)
}

export async function ensurePairs(ctx: LinkContext, link: Link): Promise<string[]> {
  const ids: string[] = []
  for (const thread of link.threads)
    ids.push((await ctx.c.pairs.add({ peer_did: link.peer_did, peer_url: link.peer_url, thread_id: thread })).pair_id)
  return ids
}

export async function addThreads(ctx: LinkContext, link: Link, threads: string[]): Promise<string[]> {
  const fresh = threads.filter((t) => !link.threads.includes(t))
  if (!fresh.length) return []
  const grown: Link = { ...link, threads: [...link.threads, ...fresh], updated_at: ctx.now() }
  await ctx.c.store.putLink(grown)
  ctx.byPeer.set(link.peer_did, grown)
  if (grown.state === 'active') await ensurePairs(ctx, grown)
  return fresh
}

export async function transition(ctx: LinkContext, link: Link, to: 'active' | 'paused'): Promise<Link> {
  const next: Link = { ...link, state: to, updated_at: ctx.now() }
  await ctx.c.store.putLink(next)
  ctx.byPeer.set(link.peer_did, next)
  await journal(ctx, link, link.state, to)
  return next
}

export async function journal(ctx: LinkContext, link: Link, from: LinkState, to: LinkState): Promise<void> {
  try {
    await ctx.c.journal({
      kind: 'core.federation.pair.v1',
      link_id: link.link_id,
      peer_did: link.peer_did,
      peer_url: link.peer_url,
      role: link.role,
      transition: { from, to },
      threads: link.threads,
      namespace_map: link.local_namespace || link.peer_namespace ? [{ local: link.local_namespace, peer: link.peer_namespace }] : [],
      issued_token_jti: link.issued_jti,
      at: new Date(ctx.now()).toISOString(),
    })
  } catch (err) {
    // The link is in the store; the journal is its history: a failure is logged, not fatal.
    ctx.c.logger.warn({ err, link: link.link_id }, 'federation: th_federation_pairs record failed')
  }
}
