import { SplError } from '@spl/identity'
import type { PairMode, PullErrorCode } from '@spl/transport'

export const PAIR_STATES = ['starting', 'running', 'paused', 'failing', 'stopped'] as const
export type PairState = (typeof PAIR_STATES)[number]
// The pair body is a wire shape: its schema lives in @spl/transport with the other ones.
export { PAIR_MODES, type PairInput, type PairMode, pairIdFor, pairInputSchema } from '@spl/transport'

/** Counters of a pair that survive restarts (SPEC 5.2 `totals`). */
export interface PairTotals {
  pulls: number
  records_received: number
  records_stored: number
  duplicates: number
  rejected: Record<string, number>
  bytes_received: number
  cursor_resets: number
}

export interface PairError {
  code: PullErrorCode | 'INTERNAL' | 'DISK_FULL' | 'STORE_UNAVAILABLE'
  message: string
  at: number
}

/** Something the operator should know about a pair that is not a failure (shown with it, and by doctor). */
export interface PairNotice {
  /** `LONGPOLL_RETURNS_AT_ONCE`: the peer ends long polls at once with nothing; `LONGPOLL_REFUSED`: it answers them 400. */
  code: 'LONGPOLL_RETURNS_AT_ONCE' | 'LONGPOLL_REFUSED'
  message: string
  at: number
}

/** A one-way, one-thread pull subscription held by the puller (SPEC 4.1). */
export interface Pair {
  pair_id: string
  peer_did: string
  peer_url: string
  thread_id: string
  cursor: string | null
  state: PairState
  last_error: PairError | null
  mode: PairMode
  poll_interval_ms: number
  /** The peer answered `feed=longpoll` with 400: it only does `normal`. */
  poll_only: boolean
  created_at: number
  updated_at: number
  last_success_at: number | null
  caught_up_at: number | null
  totals: PairTotals
}

export function emptyTotals(): PairTotals {
  return {
    pulls: 0,
    records_received: 0,
    records_stored: 0,
    duplicates: 0,
    rejected: {},
    bytes_received: 0,
    cursor_resets: 0,
  }
}

/** A pair as created: starting, no cursor, long-poll mode, zeroed counters. */
export function newPair(pairId: string, peerDid: string, peerUrl: string, threadId: string, now: number): Pair {
  return {
    pair_id: pairId,
    peer_did: peerDid,
    peer_url: peerUrl.replace(/\/+$/, ''),
    thread_id: threadId,
    cursor: null,
    state: 'starting',
    last_error: null,
    mode: 'longpoll',
    poll_interval_ms: 5000,
    poll_only: false,
    created_at: now,
    updated_at: now,
    last_success_at: null,
    caught_up_at: null,
    totals: emptyTotals(),
  }
}

/** No pair matches the id or prefix. */
export class PairNotFoundError extends SplError {
  override readonly name = 'PairNotFoundError'
  constructor(readonly ref: string) {
    super('PAIR_NOT_FOUND', `no pair '${ref.slice(0, 40)}' on this instance.`, {
      status: 404,
      fix: 'spl fleet sync list --all',
    })
  }
}

/** A prefix that matches more than one pair, or is too short. */
export class PairAmbiguousError extends SplError {
  override readonly name = 'PairAmbiguousError'
  constructor(
    readonly ref: string,
    matches: number,
  ) {
    super(
      'PAIR_AMBIGUOUS',
      matches === 0 ? `'${ref}' is too short: give at least 4 characters of the pair id.` : `'${ref}' matches ${matches} pairs.`,
      { status: 400, fix: 'give more characters of the pair id (spl fleet sync list)' },
    )
  }
}

/** Resolves an id or unique prefix (≥ 4 chars) against `pairs`. */
export function resolvePairRef(pairs: readonly Pair[], ref: string): Pair {
  const exact = pairs.find((p) => p.pair_id === ref)
  if (exact) return exact
  if (!/^[0-9a-f]{4,16}$/.test(ref)) {
    if (/^[0-9a-f]{1,3}$/.test(ref)) throw new PairAmbiguousError(ref, 0)
    throw new PairNotFoundError(ref)
  }
  const found = pairs.filter((p) => p.pair_id.startsWith(ref))
  if (found.length === 1) return found[0]!
  if (found.length === 0) throw new PairNotFoundError(ref)
  throw new PairAmbiguousError(ref, found.length)
}

/** Backoff after `attempt` consecutive failures: 1 s doubling, ±20 % jitter, capped at `cap` (5 min). */
export function backoffMs(attempt: number, random: () => number = Math.random, cap = 300_000): number {
  const base = Math.min(cap, 1000 * 2 ** Math.max(0, attempt - 1))
  const jittered = base * (0.8 + 0.4 * random())
  return Math.round(Math.min(cap, jittered))
}

/**
 * The cap of the backoff while the local disk is full: space can come back at any moment, and
 * a retry costs one page; the pair resumes within this of space returning.
 */
export const DISK_FULL_BACKOFF_CAP_MS = 2000
