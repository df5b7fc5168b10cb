import type { CallerContext } from '@spl/consent'
import { inTransaction, migrateWith } from '@spl/records'
import type { Kysely, Migration } from 'kysely'

/**
 * The sender side's memory of who pulls what from this instance (SPEC 10): per caller and
 * thread, how far it has pulled (the `since` of its last request: everything up to it is durable
 * there), the consent context it was served with, when it was last seen, whether it holds a long
 * poll now, and how far deposits for it have gone. The change feed tells it; the depositor reads
 * it. Kept in memory and written to the database in batches (a long poll does not cost a write).
 */

interface ReaderTables {
  spl_relay_readers: {
    did: string
    thread: string
    after_seq: number
    deposited_seq: number
    namespace: string
    bound_namespace: string | null
    include_own: number
    seen_at: number
  }
}

const migrations: Record<string, Migration> = {
  '0001_readers': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('spl_relay_readers')
        .ifNotExists()
        .addColumn('did', 'text', (c) => c.notNull())
        .addColumn('thread', 'text', (c) => c.notNull())
        .addColumn('after_seq', 'integer', (c) => c.notNull())
        .addColumn('deposited_seq', 'integer', (c) => c.notNull())
        .addColumn('namespace', 'text', (c) => c.notNull())
        .addColumn('bound_namespace', 'text')
        .addColumn('include_own', 'integer', (c) => c.notNull())
        .addColumn('seen_at', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('spl_relay_readers_pk', ['did', 'thread'])
        .execute()
    },
  },
}

export interface ReaderEntry {
  did: string
  thread: string
  /** The caller holds every record up to this seq. */
  afterSeq: number
  /** Deposits for it have covered records up to this seq. */
  depositedSeq: number
  ctx: CallerContext
  includeOwn: boolean
  seenAt: number
  /** Requests of it being answered now (a held long poll counts: the caller is online). */
  active: number
}

/** A reader as the database remembers it (not answering anything here now). */
function entryOf(r: ReaderTables['spl_relay_readers']): ReaderEntry {
  return {
    did: r.did,
    thread: r.thread,
    afterSeq: r.after_seq,
    depositedSeq: r.deposited_seq,
    ctx: { namespace: r.namespace, boundNamespace: r.bound_namespace },
    includeOwn: r.include_own === 1,
    seenAt: r.seen_at,
    active: 0,
  }
}

/** At most this many readers are remembered (the least recently seen go first). */
const MAX_READERS = 100_000

export class FeedReaders {
  readonly #entries = new Map<string, ReaderEntry>()
  readonly #dirty = new Set<string>()
  #db: Kysely<ReaderTables> | undefined

  /** Loads the readers a previous run remembered and keeps them in `db` from now on. */
  async persistIn<DB>(db: Kysely<DB>): Promise<void> {
    await migrateWith(db as unknown as Kysely<unknown>, 'relay_readers', { getMigrations: async () => migrations })
    this.#db = db as unknown as Kysely<ReaderTables>
    for (const r of await this.#db.selectFrom('spl_relay_readers').selectAll().execute()) {
      const key = `${r.did}\n${r.thread}`
      if (!this.#entries.has(key)) this.#entries.set(key, entryOf(r))
    }
  }

  /**
   * Merges what the database holds (other replicas on the same database write their readers
   * there): the latest sighting, the furthest cursor and deposit win, so a caller pulling from
   * another replica does not look away here. Nothing becomes dirty.
   */
  async merge(): Promise<void> {
    if (!this.#db) return
    for (const r of await this.#db.selectFrom('spl_relay_readers').selectAll().execute()) {
      const key = `${r.did}\n${r.thread}`
      const e = this.#entries.get(key)
      if (!e) {
        if (this.#entries.size < MAX_READERS) this.#entries.set(key, entryOf(r))
        continue
      }
      if (r.seen_at > e.seenAt) {
        e.seenAt = r.seen_at
        e.ctx = { namespace: r.namespace, boundNamespace: r.bound_namespace }
      }
      e.afterSeq = Math.max(e.afterSeq, r.after_seq)
      e.depositedSeq = Math.max(e.depositedSeq, r.deposited_seq)
    }
  }

  /** A request of `did` for `thread` after `afterSeq` starts being answered. */
  begin(did: string, thread: string, afterSeq: number, ctx: CallerContext, includeOwn: boolean, now: number): ReaderEntry {
    const key = `${did}\n${thread}`
    let e = this.#entries.get(key)
    if (!e) {
      if (this.#entries.size >= MAX_READERS) this.#evictOldest()
      e = { did, thread, afterSeq, depositedSeq: 0, ctx, includeOwn, seenAt: now, active: 0 }
      this.#entries.set(key, e)
      this.#dirty.add(key)
    } else {
      // A cursor that went back (a reset on the caller's side) is believed: deposits start over from it.
      if (e.afterSeq !== afterSeq || e.ctx.namespace !== ctx.namespace || e.ctx.boundNamespace !== ctx.boundNamespace) this.#dirty.add(key)
      if (afterSeq < e.depositedSeq && afterSeq < e.afterSeq) e.depositedSeq = afterSeq
      e.afterSeq = afterSeq
      e.ctx = ctx
      e.includeOwn = includeOwn
      e.seenAt = now
    }
    e.active++
    return e
  }

  /** The request ends; the caller was seen now. */
  end(entry: ReaderEntry, now: number): void {
    entry.active = Math.max(0, entry.active - 1)
    entry.seenAt = now
    this.#dirty.add(`${entry.did}\n${entry.thread}`)
  }

  /** Deposits for the reader now cover records up to `seq`. */
  deposited(entry: ReaderEntry, seq: number): void {
    if (seq <= entry.depositedSeq) return
    entry.depositedSeq = seq
    this.#dirty.add(`${entry.did}\n${entry.thread}`)
  }

  list(): ReaderEntry[] {
    return [...this.#entries.values()]
  }

  #evictOldest(): void {
    let oldest: [string, ReaderEntry] | undefined
    for (const kv of this.#entries) if (kv[1].active === 0 && (!oldest || kv[1].seenAt < oldest[1].seenAt)) oldest = kv
    if (oldest) {
      this.#entries.delete(oldest[0])
      this.#dirty.delete(oldest[0])
    }
  }

  /**
   * Writes what changed since the last flush (one transaction), for the readers `keep` says a
   * deposit may be made for (those with a relay route): the others cost no write at all.
   */
  async flush(keep: (did: string) => boolean = () => true): Promise<void> {
    const db = this.#db
    if (!db || this.#dirty.size === 0) return
    const keys = [...this.#dirty].filter((k) => keep(k.slice(0, k.indexOf('\n'))))
    this.#dirty.clear()
    if (keys.length === 0) return
    try {
      await inTransaction(db, async (trx) => {
        for (const key of keys) {
          const e = this.#entries.get(key)
          if (!e) continue
          const row = {
            did: e.did,
            thread: e.thread,
            after_seq: e.afterSeq,
            deposited_seq: e.depositedSeq,
            namespace: e.ctx.namespace,
            bound_namespace: e.ctx.boundNamespace,
            include_own: e.includeOwn ? 1 : 0,
            seen_at: e.seenAt,
          }
          await trx
            .insertInto('spl_relay_readers')
            .values(row)
            .onConflict((oc) => oc.columns(['did', 'thread']).doUpdateSet(row))
            .execute()
        }
      })
    } catch (err) {
      for (const k of keys) this.#dirty.add(k)
      throw err
    }
  }
}
