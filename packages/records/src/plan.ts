import type { Candidate, Rejection } from './ingest.js'

/** What the store already holds about an id: whether it is a redacted stub. */
export interface KnownId {
  redacted: boolean
}

/** The record holding an (actor, thread, clock) slot. */
export interface ClockOwner {
  id: string
  redacted: boolean
}

/** What the plan decides for one candidate (a store adds the seq once it inserted). */
export type PlannedOutcome = { status: 'stored' } | { status: 'replaced' } | { status: 'duplicate' } | Rejection

/** The writes one batch of candidates takes, and each candidate's outcome, in order. */
export interface IngestPlan {
  outcomes: PlannedOutcome[]
  /** Stored ids to delete first (stubs a full record replaces). */
  deletes: string[]
  /** Indexes of the candidates to insert, in this order. */
  inserts: number[]
}

/** The key of a record's (actor, thread, clock) slot, as in the maps the plan reads. */
export function clockKeyOf(record: Candidate['record']): string {
  return `${record.actor}\n${record.thread}\n${record.clock}`
}

/** True when a candidate adds nothing to what is held: the same id, unless a full record meets its stub. */
export function isDuplicate(have: KnownId | undefined, redacted: boolean): boolean {
  return have !== undefined && !(have.redacted && !redacted)
}

/**
 * The one ingest rule set, pure: duplicates are no-ops, a full record replaces its redacted stub
 * (stored or earlier in the batch), a second id for a used (actor, thread, clock) is
 * CLOCK_CONFLICT. `known` (by id) and `owners` (by clockKeyOf) describe the store before the batch;
 * both maps are updated in place as the plan goes (callers build them fresh for each batch).
 */
export function planIngest(candidates: readonly Candidate[], known: Map<string, KnownId>, owners: Map<string, ClockOwner>): IngestPlan {
  const outcomes: PlannedOutcome[] = new Array(candidates.length)
  const slots: number[] = [] // candidate index per insert slot
  const pending = new Map<string, number>() // id → its slot
  const deletes: string[] = []
  const dropped = new Set<number>() // slots of in-batch stubs evicted by a verified record
  for (let i = 0; i < candidates.length; i++) {
    const c = candidates[i]!
    const have = known.get(c.id)
    const clockKey = clockKeyOf(c.record)
    if (isDuplicate(have, c.redacted)) {
      outcomes[i] = { status: 'duplicate' }
      continue
    }
    const owner = owners.get(clockKey)
    if (owner !== undefined && owner.id !== c.id) {
      if (!(owner.redacted && !c.redacted)) {
        outcomes[i] = {
          ok: false,
          code: 'CLOCK_CONFLICT',
          message: `actor already signed clock ${c.record.clock} in ${c.record.thread} as ${owner.id.slice(0, 12)}`,
          id: c.id,
        }
        continue
      }
      // An unverifiable stub never outranks a verified record: it gives the slot up.
      const stubAt = pending.get(owner.id)
      if (stubAt !== undefined) {
        dropped.add(stubAt)
        outcomes[slots[stubAt]!] = { ok: false, code: 'CLOCK_CONFLICT', message: 'a verified record holds this clock', id: owner.id }
        pending.delete(owner.id)
      } else {
        deletes.push(owner.id)
      }
      known.delete(owner.id)
    }
    known.set(c.id, { redacted: c.redacted })
    owners.set(clockKey, { id: c.id, redacted: c.redacted })
    const pendingAt = pending.get(c.id)
    if (pendingAt !== undefined) {
      // Its stub came earlier in this batch and is not inserted yet: the full record takes that slot.
      outcomes[slots[pendingAt]!] = { status: 'duplicate' }
      slots[pendingAt] = i
      outcomes[i] = { status: 'stored' }
      continue
    }
    if (have) deletes.push(c.id)
    pending.set(c.id, slots.length)
    slots.push(i)
    outcomes[i] = { status: have ? 'replaced' : 'stored' }
  }
  const inserts = dropped.size === 0 ? slots : slots.filter((_, k) => !dropped.has(k))
  return { outcomes, deletes, inserts }
}
