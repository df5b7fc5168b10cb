const HOUR = 3_600_000

/** Counts events in one-second buckets over the last hour. */
export class RollingCounter {
  readonly #buckets = new Map<number, number>()

  add(n: number, now: number): void {
    if (n === 0) return
    const s = Math.floor(now / 1000)
    this.#buckets.set(s, (this.#buckets.get(s) ?? 0) + n)
    if (this.#buckets.size > 3700) this.prune(now)
  }

  /** Sum over the last `windowMs`. */
  sum(windowMs: number, now: number): number {
    const from = Math.floor((now - windowMs) / 1000)
    let total = 0
    for (const [s, n] of this.#buckets) if (s > from) total += n
    return total
  }

  prune(now: number): void {
    const from = Math.floor((now - HOUR) / 1000)
    for (const s of this.#buckets.keys()) if (s <= from) this.#buckets.delete(s)
  }
}
