import { RollingCounter } from '../rolling-counter.js'

/** Upper bounds (ms) of the delivery-latency histogram buckets (SPEC 5.2). */
export const LATENCY_BUCKETS = [10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000] as const

const HOUR = 3_600_000

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[idx]!
}

/** Delivery latencies: recent samples (for percentiles) and a cumulative histogram since start. */
export class LatencyWindow {
  // A ring of the most recent samples: adding is O(1) however many records arrive.
  readonly #at: number[] = []
  readonly #ms: number[] = []
  #next = 0
  readonly counts: number[] = new Array(LATENCY_BUCKETS.length + 1).fill(0)
  sum = 0
  count = 0
  max = 0

  constructor(private readonly keep = 5000) {}

  add(ms: number, now: number): void {
    const v = Math.max(0, ms)
    this.#at[this.#next] = now
    this.#ms[this.#next] = v
    this.#next = (this.#next + 1) % this.keep
    let i = 0
    while (i < LATENCY_BUCKETS.length && v > LATENCY_BUCKETS[i]!) i++
    this.counts[i]!++
    this.sum += v
    this.count++
    if (v > this.max) this.max = v
  }

  /** Sorted samples of the last hour. */
  recent(now: number): number[] {
    const from = now - HOUR
    const out: number[] = []
    for (let i = 0; i < this.#at.length; i++) if (this.#at[i]! > from) out.push(this.#ms[i]!)
    return out.sort((a, b) => a - b)
  }

  /** Cumulative histogram: `le_10` counts every latency ≤ 10 ms, `inf` counts all. */
  histogram(): Record<string, number> {
    const out: Record<string, number> = {}
    let acc = 0
    LATENCY_BUCKETS.forEach((b, i) => {
      acc += this.counts[i]!
      out[`le_${b}`] = acc
    })
    out['inf'] = acc + this.counts[LATENCY_BUCKETS.length]!
    return out
  }
}

/** In-memory, per-pair rolling figures (reset at restart; totals that must survive are in the store). */
export class PairMetrics {
  readonly stored = new RollingCounter()
  readonly errors = new RollingCounter()
  readonly rejections = new RollingCounter()
  readonly latency = new LatencyWindow()
  /** Last time a page moved the cursor or stored anything. */
  lastProgressAt: number | null = null
  /** The source said it had more at the last answer. */
  sourceHadMore = false
}
