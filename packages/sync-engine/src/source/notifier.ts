/** Wakes long polls waiting on a thread when a record lands in it. */
export class ThreadNotifier {
  readonly #waiters = new Map<string, Set<() => void>>()
  readonly #versions = new Map<string, number>()
  /** Wake-ups of every thread at once (a change of grants). */
  #all = 0
  #closed = false

  /** How many times `thread` was notified (or all threads were): read it before looking, pass it to `wait`. */
  version(thread: string): number {
    return (this.#versions.get(thread) ?? 0) + this.#all
  }

  /** True once closed: long polls answer at once (the daemon is shutting down). */
  get closed(): boolean {
    return this.#closed
  }

  /** Wakes every waiter and makes later waits return at once. */
  close(): void {
    this.#closed = true
    for (const set of [...this.#waiters.values()]) for (const w of [...set]) w()
  }

  /**
   * Resolves when `thread` gets a record, after `ms`, or when `signal` aborts. With `since` (a
   * `version` read before the caller looked at the thread) it resolves at once if a record landed
   * in between, so no wake-up is lost.
   */
  wait(thread: string, ms: number, signal?: AbortSignal, since?: number): Promise<void> {
    if (this.#closed || (since !== undefined && this.version(thread) !== since)) return Promise.resolve()
    return new Promise((resolve) => {
      let set = this.#waiters.get(thread)
      if (!set) this.#waiters.set(thread, (set = new Set()))
      const done = () => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', done)
        set.delete(done)
        if (set.size === 0) this.#waiters.delete(thread)
        resolve()
      }
      const timer = setTimeout(done, ms)
      signal?.addEventListener('abort', done, { once: true })
      set.add(done)
    })
  }

  notify(thread: string): void {
    this.#versions.set(thread, (this.#versions.get(thread) ?? 0) + 1)
    const set = this.#waiters.get(thread)
    if (set) for (const w of [...set]) w()
  }

  /** Wakes every waiter of every thread (what they may be served changed: consent). */
  notifyAll(): void {
    this.#all++
    for (const set of [...this.#waiters.values()]) for (const w of [...set]) w()
  }

  /** Number of requests waiting (for metrics). */
  get waiting(): number {
    let n = 0
    for (const s of this.#waiters.values()) n += s.size
    return n
  }
}
