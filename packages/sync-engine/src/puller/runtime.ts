import type { Pair, PairNotice } from '../pair.js'
import type { PairView } from './components.js'
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
  /** Long polls in a row that came back empty much sooner than asked. */
  fastEmpty: number
  /** Why the pair polls instead of long-polling, since this process saw it. */
  notice: PairNotice | null
  /** Log the next failure even when it repeats the last one (set by a kick). */
  sayNextFailure: boolean
  /** The next cycle pulls at once instead of waiting (a kick: "pull now"). */
  pullNow: boolean
  /** The pair's last commit: a pull's page and a relay delivery commit one after the other. */
  commitChain: Promise<unknown>
  /** The last audit of the pair (SPEC 13), since this process started. */
  lastAudit: { at: number; puller_lacks: number; source_lacks: number; healed: boolean } | null
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
    fastEmpty: 0,
    notice: null,
    sayNextFailure: false,
    pullNow: false,
    commitChain: Promise.resolve(),
    lastAudit: null,
  }
}

/** Runs `fn` after the pair's earlier commits (each reads the pair's counters as the last one left them). */
export function underCommitLock<T>(rt: Runtime, fn: () => Promise<T>): Promise<T> {
  const run = rt.commitChain.then(fn, fn)
  rt.commitChain = run.catch(() => {})
  return run
}

/** The view of a pair with its runtime. */
export function viewOf(p: Pair, rt: Runtime): PairView {
  return {
    ...structuredClone(p),
    backoff_ms: rt.backoffMs,
    attempt: rt.attempt,
    next_attempt_at: rt.nextAttemptAt,
    notice: rt.notice === null ? null : { ...rt.notice },
  }
}
