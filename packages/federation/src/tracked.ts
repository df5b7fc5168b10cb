/**
 * Counts the writes of the service's in-memory links and revocations and tells `onChange` of
 * each (a replica on the same database must hear of them), except writes made `quietly` (a
 * reload from the store, which is what another replica told).
 */
export class ChangeCounter {
  #writes = 0
  #quiet = false

  constructor(private readonly onChange: (() => void) | undefined) {}

  get writes(): number {
    return this.#writes
  }

  touch(): void {
    this.#writes++
    if (!this.#quiet) this.onChange?.()
  }

  /** Runs `fn` without telling anyone (a reload). */
  quietly(fn: () => void): void {
    this.#quiet = true
    try {
      fn()
    } finally {
      this.#quiet = false
    }
  }
}

/** A Map whose set/delete/clear count as changes. */
export class TrackedMap<K, V> extends Map<K, V> {
  #changes: ChangeCounter | undefined

  constructor(changes: ChangeCounter) {
    super()
    this.#changes = changes
  }

  override set(key: K, value: V): this {
    super.set(key, value)
    this.#changes?.touch()
    return this
  }

  override delete(key: K): boolean {
    const had = super.delete(key)
    if (had) this.#changes?.touch()
    return had
  }

  override clear(): void {
    super.clear()
    this.#changes?.touch()
  }
}

/** A Set whose add/delete count as changes. */
export class TrackedSet<T> extends Set<T> {
  #changes: ChangeCounter | undefined

  constructor(changes: ChangeCounter) {
    super()
    this.#changes = changes
  }

  override add(value: T): this {
    const had = super.has(value)
    super.add(value)
    if (!had) this.#changes?.touch()
    return this
  }

  override delete(value: T): boolean {
    const had = super.delete(value)
    if (had) this.#changes?.touch()
    return had
  }
}
