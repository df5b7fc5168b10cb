// Invites (SPEC 9.1): single-use codes the operator hands out, and the check of a code a
// pairing request carries (unused, unexpired, covering the request's threads and mapping).
import crypto from 'node:crypto'
import { b64, type LinkContext } from './context.js'
import { refuse } from './errors.js'
import type { HeldRequest } from './store.js'
import type { NamespaceMap } from './wire.js'

/** Invites are single use and expire (24 h by default, at most 30 days). */
export const INVITE_DEFAULT_MS = 86_400_000
const INVITE_MAX_MS = 30 * 86_400_000

const hashCode = (code: string) => crypto.createHash('sha256').update(code.trim()).digest('hex')

export async function invite(
  ctx: LinkContext,
  input: {
    threads: string[]
    map: NamespaceMap
    expiresMs?: number | undefined
  },
): Promise<{ code: string; expires_at: string }> {
  const ttl = input.expiresMs ?? INVITE_DEFAULT_MS
  if (ttl <= 0 || ttl > INVITE_MAX_MS) throw refuse('INVALID_DURATION', 400, 'an invite lives between 1 s and 30 days.', '--expires 24h')
  // The invite's mapping is from this side: `local` is the namespace the peer will be bound to here.
  if (input.map[0]) ctx.c.bindings.assertUsable(input.map[0].local)
  const code = `spl-${b64(18)}`
  const now = ctx.now()
  await ctx.c.store.addInvite(hashCode(code), {
    threads: input.threads,
    namespace_map: input.map,
    created_at: now,
    expires_at: now + ttl,
    used_at: null,
    used_by: null,
  })
  return { code, expires_at: new Date(now + ttl).toISOString() }
}

export async function takeInvite(ctx: LinkContext, code: string, held: HeldRequest, now: number): Promise<void> {
  const hash = hashCode(code)
  const invite = await ctx.c.store.invite(hash)
  if (!invite)
    throw refuse(
      'INVITE_INVALID',
      403,
      'this invite code is not one this instance made.',
      'ask the operator for a fresh code: spl federation invite',
    )
  if (invite.used_at !== null)
    throw refuse(
      'INVITE_USED',
      403,
      `this invite was used at ${new Date(invite.used_at).toISOString()}: codes are single use.`,
      'ask the operator for a fresh code: spl federation invite',
    )
  if (invite.expires_at <= now)
    throw refuse(
      'INVITE_EXPIRED',
      403,
      `this invite expired at ${new Date(invite.expires_at).toISOString()}.`,
      'ask the operator for a fresh code: spl federation invite',
    )
  const outside = invite.threads.length ? held.threads.filter((t) => !invite.threads.includes(t)) : []
  if (outside.length)
    throw refuse(
      'INVITE_SCOPE',
      403,
      `the invite does not cover ${outside.join(', ')}.`,
      `pair with --thread ${invite.threads.join(' --thread ')}`,
    )
  // The mapping is the invite's, turned round (the request's `peer` is this side's namespace):
  // an invite never lets the holder pick the namespace it is bound to here.
  const want = invite.namespace_map[0]
  const asked = held.namespace_map[0]
  if ((want?.local ?? null) !== (asked?.peer ?? null) || (want?.peer ?? null) !== (asked?.local ?? null))
    throw refuse(
      'INVITE_SCOPE',
      403,
      asked
        ? `the invite does not cover the mapping ${asked.local}:${asked.peer}.`
        : 'the invite is for a namespace mapping the request does not ask for.',
      want ? `pair with --map ${want.peer}:${want.local}` : 'pair without --map',
    )
  if (!(await ctx.c.store.useInvite(hash, held.initiator_did, now)))
    throw refuse('INVITE_USED', 403, 'this invite was just used: codes are single use.')
}
