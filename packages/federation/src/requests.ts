// The operator's decisions on held pairing requests (list, approve, reject) and the blocklist.
import type { LinkContext } from './context.js'
import { refuse } from './errors.js'
import type { LinkView } from './link.js'
import { acceptRequest } from './responder.js'
import type { HeldRequest } from './store.js'
import { checkGivenToken } from './tokens.js'
import { view } from './views.js'

export async function requests(ctx: LinkContext): Promise<HeldRequest[]> {
  const held = await ctx.c.store.pendingRequests(ctx.now())
  const blocked = new Set((await ctx.c.store.blocked()).map((b) => b.did))
  return held.filter((r) => !blocked.has(r.initiator_did))
}

export async function approve(ctx: LinkContext, linkId: string): Promise<LinkView> {
  const held = await pending(ctx, linkId)
  const given = await checkGivenToken(held.token_for_responder, held.initiator_did, ctx.c.keypair.did, ctx.now())
  const localNs = held.namespace_map[0]?.peer
  if (localNs) ctx.c.bindings.assertUsable(localNs)
  await acceptRequest(ctx, held, given)
  return view(ctx, (await ctx.c.store.link(linkId))!)
}

export async function reject(ctx: LinkContext, linkId: string): Promise<HeldRequest> {
  const held = await pending(ctx, linkId)
  const done: HeldRequest = { ...held, state: 'rejected', decided_at: ctx.now() }
  await ctx.c.store.putRequest(done)
  return done
}

async function pending(ctx: LinkContext, linkId: string): Promise<HeldRequest> {
  const held = await ctx.c.store.request(linkId)
  if (held?.state !== 'pending' || held.expires_at <= ctx.now() || (await ctx.c.store.isBlocked(held.initiator_did))) {
    throw refuse('REQUEST_NOT_FOUND', 404, `no held pairing request ${linkId.slice(0, 40)}.`, 'spl federation requests')
  }
  return held
}

export async function block(ctx: LinkContext, did: string): Promise<void> {
  await ctx.c.store.transaction(async (trx) => {
    await ctx.c.store.block(did, ctx.now(), trx)
    await ctx.c.store.deleteRequestsOf(did, trx)
  })
}

export function unblock(ctx: LinkContext, did: string): Promise<boolean> {
  return ctx.c.store.unblock(did)
}

export function blocked(ctx: LinkContext) {
  return ctx.c.store.blocked()
}
