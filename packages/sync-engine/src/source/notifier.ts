/** Wakes long polls waiting on a thread when a record lands in it. */
export class ThreadNotifier {
  readonly #waiters = new Map<string, Set<() => void>>()
  readonly #versions = new Map<string, number>()
  /** The newest seq stored in a thread as told by `notify` or `hintHead`, and when (watches compare cursors with it). */
  readonly #heads = new Map<string, { seq: number; at: number }>()
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

  /** A record landed in `thread` (`seq`: the highest stored; without it, what was known of the head is forgotten). */
  notify(thread: string, seq?: number): void {
    this.#versions.set(thread, (this.#versions.get(thread) ?? 0) + 1)
    if (seq === undefined) this.#heads.delete(thread)
    else this.hintHead(thread, seq)
    const set = this.#waiters.get(thread)
    if (set) for (const w of [...set]) w()
  }

  /**
   * The newest seq of `thread` if known within `maxAgeMs` (a hint: a watch that finds a cursor at
   * or past it has nothing to look up for that thread; anything else it looks up in the store).
   */
  headOf(thread: string, now: number, maxAgeMs: number): number | undefined {
    const h = this.#heads.get(thread)
    return h && now - h.at <= maxAgeMs ? h.seq : undefined
  }

  /**
   * Forgets every head hint: what was told may be incomplete (a replica that could not hear the
   * others for a while); watches look the heads up in the store again.
   */
  forgetHeads(): void {
    this.#heads.clear()
  }

  /** Remembers a head read from the store (never lower than one already told). */
  hintHead(thread: string, seq: number, now = Date.now()): void {
    const h = this.#heads.get(thread)
    if (h && h.seq > seq) return
    this.#heads.set(thread, { seq, at: now })
  }

  /**
   * Calls `fn(thread)` each time one of `threads` is notified (or all are), until the returned
   * function is called: one registration per thread for a watch that waits on many.
   */
  subscribe(threads: readonly string[], fn: (thread: string) => void): () => void {
    const entries: [Set<() => void>, () => void, string][] = []
    for (const thread of threads) {
      let set = this.#waiters.get(thread)
      if (!set) this.#waiters.set(thread, (set = new Set()))
      const cb = () => fn(thread)
      set.add(cb)
      entries.push([set, cb, thread])
    }
    return () => {
      for (const [set, cb, thread] of entries) {
        set.delete(cb)
        if (set.size === 0 && this.#waiters.get(thread) === set) this.#waiters.delete(thread)
      }
    }
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
