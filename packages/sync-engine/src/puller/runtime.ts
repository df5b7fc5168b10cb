import type { Pair } from '../pair.js'
import { PairMetrics } from './metrics.js'

/** The live, unpersisted state of one pair's loop. */
export interface Runtime {
  attempt: number
  backoffMs: number
  nextAttemptAt: number | null
  abort: AbortController | null
  running: Promise<void> | null
  metrics: PairMetrics
  /** Clock offset estimate: peer clock − local clock, ms. */
  skewMs: number | null
  minRttMs: number
  waiters: (() => void)[]
}

/** A pair's runtime before its first cycle. */
export function newRuntime(): Runtime {
  return {
    attempt: 0,
    backoffMs: 0,
    nextAttemptAt: null,
    abort: null,
    running: null,
    metrics: new PairMetrics(),
    skewMs: null,
    minRttMs: Number.POSITIVE_INFINITY,
    waiters: [],
  }
}

/** A pair as the API shows it: the stored pair plus its live scheduling state. */
export interface PairView extends Pair {
  backoff_ms: number
  attempt: number
  next_attempt_at: number | null
}

/** The view of a pair with its runtime. */
export function viewOf(p: Pair, rt: Runtime): PairView {
  return { ...structuredClone(p), backoff_ms: rt.backoffMs, attempt: rt.attempt, next_attempt_at: rt.nextAttemptAt }
}

/** Progress of a catch-up, page by page. */
export interface PullProgress {
  pages: number
  received: number
  stored: number
  duplicates: number
  rejected: number
  cursor: string | null
  hasMore: boolean
}
