// What the parts of the link service share: its components and settings, its clock, and the
// links and revocations it keeps in memory, in step with the store. service.ts makes it once.
import crypto from 'node:crypto'
import type { FederationComponents, FederationSettings } from './components.js'
import type { Link } from './link.js'
import { ChangeCounter, TrackedMap, TrackedSet } from './tracked.js'

export interface LinkContext {
  readonly c: FederationComponents
  readonly s: FederationSettings
  readonly now: () => number
  /** Writes of the two below: each is told to `components.changed` (replicas reload). */
  readonly changes: ChangeCounter
  /** Links by peer DID, kept in step with the store for the synchronous checks of every pull. */
  readonly byPeer: Map<string, Link>
  readonly revoked: Set<string>
}

export function linkContext(components: FederationComponents, settings: FederationSettings): LinkContext {
  const changes = new ChangeCounter(components.changed)
  return {
    c: components,
    s: settings,
    now: components.now ?? Date.now,
    changes,
    byPeer: new TrackedMap(changes),
    revoked: new TrackedSet(changes),
  }
}

/**
 * Reads links and revocations from the store again (another daemon on the same database, a
 * replica, changed them). Revoked ids are only added: an expired one is refused by its expiry.
 * A write of this service during the read makes it read again, so a newer local state is never
 * replaced by an older one.
 */
export async function reload(ctx: LinkContext): Promise<void> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const writes = ctx.changes.writes
    const revoked = await ctx.c.store.revokedJtis(ctx.now())
    const links = await ctx.c.store.links()
    if (ctx.changes.writes !== writes) continue
    ctx.changes.quietly(() => {
      for (const jti of revoked) ctx.revoked.add(jti)
      ctx.byPeer.clear()
      for (const link of links) ctx.byPeer.set(link.peer_did, link)
    })
    return
  }
}

/** `n` random bytes, base64url (nonces, invite codes). */
export const b64 = (n: number) => crypto.randomBytes(n).toString('base64url')
