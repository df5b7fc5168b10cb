import { SplError } from '@spl/identity'
import type { Candidate, Rejection, RejectionCode, StoredRow } from '@spl/records'
import type { Pair } from './pair.js'

/** A row the feed can serve: what the record store keeps per record (record as JSON text). */
export type FeedRow = Pick<StoredRow, 'seq' | 'id' | 'namespace' | 'origin' | 'redacted' | 'record' | 'sig' | 'stored_at'>

/** Where the feed reads records (RecordStore fits; so does MemorySyncStore). */
export interface ChangeSource {
  /** Random id of this store, made with it: cursors from another store reset. */
  readonly epoch: string
  headSeq(): Promise<number>
  listAfter(thread: string, afterSeq: number, limit: number): Promise<FeedRow[]>
  /** The highest seq in `thread` (0 when it has none); a watch compares cursors with it. */
  threadHead?(thread: string): Promise<number>
  /** Rows of `thread` in `namespaces` with afterSeq < seq ≤ upTo, in store order (optional: else listAfter, filtered). */
  listAfterIn?(thread: string, afterSeq: number, upTo: number, namespaces: readonly string[], limit: number): Promise<FeedRow[]>
}

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
  /** The pair after this page (cursor, counters, state), before what storing finds is folded in. */
  next: Pair
  now: number
  /**
   * false: store the records and rejections but leave the pair's row alone — a one-off pull, or a
   * relay delivery on a replica that does not hold the pair's lease (the holder writes its row).
   */
  writePair?: boolean
}

export interface CommitResult {
  stored: number
  duplicates: number
  /** CLOCK_CONFLICT and other rejections found while storing. */
  rejected: Rejection[]
  /** The rows stored (new or replacing a stub), in store order. */
  storedRows: StoredRow[]
  /** The pair as committed: `next` with stored, duplicates and clock conflicts counted. */
  pair: Pair
}

/** Pairs, persisted. */
export interface PairStore {
  /** Every pair; with `updatedSince`, those written at or after that time (replicas refresh with it). */
  listPairs(options?: { updatedSince?: number }): Promise<Pair[]>
  getPair(pairId: string): Promise<Pair | undefined>
  /** Writes the whole pair (insert or replace). */
  savePair(pair: Pair): Promise<void>
  listRejections(pairId: string, limit: number): Promise<RejectionEntry[]>
  /** Forgets rejections of `pairId` with `code` for these record ids (they were taken in since). */
  dropRejections(pairId: string, code: RejectionCode, ids: readonly string[]): Promise<void>
}

/**
 * Rejections a fix on this side can undo (SPEC 7.2: the namespace missing here); every other
 * code is final — the record is forged, malformed or equivocates, and stays refused.
 */
export const RETRYABLE_REJECTIONS: ReadonlySet<RejectionCode> = new Set<RejectionCode>(['NAMESPACE_REJECTED'])

/**
 * Where pulled records go. `commit` must be atomic: records, rejections, the new cursor and
 * the counters are durable together or not at all.
 */
export interface RecordSink {
  /** Which ids are stored already, and whether each is a redacted stub. */
  known(ids: readonly string[]): Promise<Map<string, { redacted: boolean }>>
  /** Stores the page, folds its outcome into the pair's counters, and returns the committed pair. */
  commit(batch: PullCommit): Promise<CommitResult>
}

/** Folds what storing found into the pair's counters: for a sink's `commit`, once, inside its transaction. */
export function foldCommit(next: Pair, result: Pick<CommitResult, 'stored' | 'duplicates' | 'rejected'>): Pair {
  const out = structuredClone(next)
  out.totals.records_stored += result.stored
  out.totals.duplicates += result.duplicates
  for (const r of result.rejected) out.totals.rejected[r.code] = (out.totals.rejected[r.code] ?? 0) + 1
  return out
}

/**
 * Who pulls which pair when several replicas share one database (SPEC 11): a lease per pair with
 * an epoch that grows with every change of holder. Without one, the engine pulls every pair.
 */
export interface PairLeases {
  readonly replicaId: string
  readonly ttlMs: number
  /** Pairs whose lease this replica holds (as of its last renew, take or fence). */
  readonly held: number
  holds(pairId: string): boolean
  heldIds(): string[]
  /** Marks this replica alive; returns how many replicas are alive, this one included. */
  heartbeat(now: number): Promise<number>
  /** Extends every lease this replica holds; returns the pairs it still holds (the rest were taken over). */
  renew(now: number): Promise<Set<string>>
  /** Live pairs that have no holder: no lease, or an expired one (at most `limit`). */
  unheld(now: number, limit: number): Promise<string[]>
  /** Takes the leases of those of `pairIds` that are free or expired; returns the ones taken. */
  acquire(pairIds: readonly string[], now: number): Promise<string[]>
  /** Takes a pair's lease from whoever holds it (an operator's change made on this replica). */
  seize(pairId: string, now: number): Promise<void>
  /** Hands leases back (expired at once) so another replica can take them. */
  release(pairIds: readonly string[], now: number): Promise<void>
  /** Closes what the leases opened (after the last release). */
  close?(): Promise<void>
}

/** A write for a pair whose lease this replica no longer holds under the epoch it had (503). */
export class LeaseLostError extends SplError {
  constructor(pairId: string, replicaId: string) {
    super('LEASE_LOST', `replica ${replicaId} no longer holds the lease of pair ${pairId}: another replica pulls it now.`, {
      status: 503,
      fix: 'nothing to do: the pair goes on on the replica that holds its lease; retry the request if it was yours',
    })
  }
}
