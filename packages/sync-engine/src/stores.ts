import type { Candidate, Rejection, RejectionCode } from '@spl/records'
import type { Pair } from './pair.js'

/** One rejected record, as kept in a pair's rejection log. */
export interface RejectionEntry {
  pair_id: string
  record_id: string | null
  code: RejectionCode
  message: string
  at: number
}

/** What one page of a pull commits, all at once. */
export interface PullCommit {
  pair: Pair
  /** Verified candidates whose namespace is usable: to store (duplicates are dropped there). */
  accepted: Candidate[]
  rejected: Rejection[]
  /** The pair after this page: cursor, counters, state. */
  next: Pair
  now: number
}

export interface CommitResult {
  stored: number
  duplicates: number
  /** CLOCK_CONFLICT and other rejections found while storing. */
  rejected: Rejection[]
  /** Ids that were stored (new or replacing a stub). */
  storedIds: string[]
}

/** Pairs, persisted. */
export interface PairStore {
  listPairs(): Promise<Pair[]>
  getPair(pairId: string): Promise<Pair | undefined>
  /** Writes the whole pair (insert or replace). */
  savePair(pair: Pair): Promise<void>
  listRejections(pairId: string, limit: number): Promise<RejectionEntry[]>
}

/**
 * Where pulled records go. `commit` must be atomic: records, rejections, the new cursor and
 * the counters are durable together or not at all.
 */
export interface RecordSink {
  /** Which ids are stored already, and whether each is a redacted stub. */
  known(ids: readonly string[]): Promise<Map<string, { redacted: boolean }>>
  commit(batch: PullCommit): Promise<CommitResult>
}

/** Folds what storing found (stored, duplicates, clock conflicts) into the pair's counters. */
export function foldCommit(next: Pair, result: CommitResult): Pair {
  const out = structuredClone(next)
  out.totals.records_stored += result.stored
  out.totals.duplicates += result.duplicates
  for (const r of result.rejected) out.totals.rejected[r.code] = (out.totals.rejected[r.code] ?? 0) + 1
  return out
}
