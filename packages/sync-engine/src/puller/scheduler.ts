/**
 * One timer for every pair: each pair has a due time, and a single setTimeout is armed for the
 * earliest. A thousand idle pairs cost one timer, not a thousand.
 */
export class Scheduler {
  readonly #due = new Map<string, number>()
  #timer: NodeJS.Timeout | null = null
  #armedFor = Number.POSITIVE_INFINITY

  constructor(
    private readonly run: (id: string) => void,
    private readonly clock: { now(): number },
  ) {}

  /** Runs `id` at `at` (ms); replaces an earlier schedule of the same id. */
  schedule(id: string, at: number): void {
    this.#due.set(id, at)
    if (at < this.#armedFor) this.#arm()
  }

  cancel(id: string): void {
    this.#due.delete(id)
  }

  clear(): void {
    this.#due.clear()
    if (this.#timer) clearTimeout(this.#timer)
    this.#timer = null
    this.#armedFor = Number.POSITIVE_INFINITY
  }

  #arm(): void {
    if (this.#timer) clearTimeout(this.#timer)
    this.#timer = null
    let next = Number.POSITIVE_INFINITY
    for (const at of this.#due.values()) if (at < next) next = at
    this.#armedFor = next
    if (next === Number.POSITIVE_INFINITY) return
    this.#timer = setTimeout(() => this.#fire(), Math.max(0, next - this.clock.now()))
  }

  #fire(): void {
    this.#timer = null
    this.#armedFor = Number.POSITIVE_INFINITY
    const now = this.clock.now()
    const ready: string[] = []
    for (const [id, at] of this.#due) if (at <= now) ready.push(id)
    for (const id of ready) this.#due.delete(id)
    this.#arm()
    for (const id of ready) this.run(id)
  }
}
