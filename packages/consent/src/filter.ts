import type { GrantState } from './grants.js'
import { DEFAULT_NAMESPACE } from './namespace.js'

/** What the source does with one record for one caller. */
export type FilterAction = 'serve' | 'redact' | 'hide'

/** Who is asking: the namespace it claims (already accepted, SPEC 6.4) and the one it is bound to. */
export interface CallerContext {
  namespace: string
  boundNamespace: string | null
}

function covers(grant: GrantState, thread: string): boolean {
  return grant.threads === '*' || grant.threads.includes(thread)
}

function expired(grant: GrantState, now: number): boolean {
  return grant.expires_at !== undefined && Date.parse(grant.expires_at) <= now
}

/**
 * The grant that decides R → T for `thread` at `now`: the most recent one that is neither
 * revoked nor expired; undefined when there is none.
 */
export function decidingGrant(
  grants: readonly GrantState[],
  source: string,
  target: string,
  thread: string,
  now: number,
): GrantState | undefined {
  let best: GrantState | undefined
  for (const g of grants) {
    if (g.revoked || g.source_namespace !== source || g.target_namespace !== target) continue
    if (!covers(g, thread) || expired(g, now)) continue
    if (!best || g.clock > best.clock) best = g
  }
  return best
}

/**
 * SPEC 6.3: what a source does with a record of namespace `recordNamespace` in `thread` for
 * `caller`. Pure: the same inputs always give the same answer.
 */
export function consentFilter(
  recordNamespace: string,
  thread: string,
  caller: CallerContext,
  grants: readonly GrantState[],
  now: number,
): FilterAction {
  const sameNamespace =
    recordNamespace === caller.namespace && (recordNamespace === DEFAULT_NAMESPACE || caller.boundNamespace === recordNamespace)
  if (sameNamespace) return 'serve'
  const grant = decidingGrant(grants, recordNamespace, caller.namespace, thread, now)
  if (!grant) return 'hide'
  return grant.hash_levels.includes('L0') ? 'serve' : 'redact'
}
