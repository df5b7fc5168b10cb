import { SplError } from '@spl/identity'
import { PullError } from '@spl/transport'
import type { Pair, PairError, PairTotals } from '../pair.js'
import type { PullProgress } from './components.js'

/** A peer that answers feed=longpoll with 400 (other than a bad cursor) only does `normal`. */
export function refusesLongpoll(err: unknown, pair: Pair): boolean {
  return (
    err instanceof PullError && err.httpStatus === 400 && err.remoteCode !== 'INVALID_CURSOR' && !pair.poll_only && pair.mode === 'longpoll'
  )
}

/**
 * Failures of this instance's own store that end by themselves (space freed, the database
 * started again): not the peer's fault, retried every few seconds, said once in the log.
 */
export function isLocalStoreFailure(code: string): boolean {
  return code === 'DISK_FULL' || code === 'STORE_UNAVAILABLE'
}

/** The `last_error` a failed cycle leaves on its pair. */
export function pairErrorOf(err: unknown, now: number): PairError {
  if (err instanceof SplError && (err.code === 'DISK_FULL' || err.code === 'STORE_UNAVAILABLE')) {
    return { code: err.code, message: `${err.message}; ${err.fix ?? ''}`.replace(/; $/, ''), at: now }
  }
  const pe = err instanceof PullError ? err : null
  return {
    code: pe ? pe.pullCode : 'INTERNAL',
    message: pe ? `${pe.message}; ${pe.fix ?? ''}`.replace(/; $/, '') : err instanceof Error ? err.message : String(err),
    at: now,
  }
}

/** What a pair's cycle did, from its totals before and its pair after (for `pullOnce` on a live pair). */
export function progressBetween(before: PairTotals, after: Pair): PullProgress {
  return {
    pages: after.totals.pulls - before.pulls,
    received: after.totals.records_received - before.records_received,
    stored: after.totals.records_stored - before.records_stored,
    duplicates: after.totals.duplicates - before.duplicates,
    rejected: sumValues(after.totals.rejected) - sumValues(before.rejected),
    cursor: after.cursor,
    hasMore: false,
  }
}

function sumValues(o: Record<string, number>): number {
  return Object.values(o).reduce((a, b) => a + b, 0)
}
