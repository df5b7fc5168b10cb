import { inTransaction, migrateWith } from '@spl/records'
import { type Generated, type Kysely, type Migration, sql, type Transaction } from 'kysely'
import { LeaseLostError, type PairLeases } from '../stores.js'

/** One change of a pair's holder, as `spl_pair_lease_log` keeps it (read back after an incident). */
export interface LeaseLogEntry {
  pair_id: string
  epoch: number
  holder: string
  /** acquire (free or lapsed), seize (an operator's change), release (handed back). */
  event: string
  at: number
  prev_holder: string | null
  /** When the previous lease lapsed: 0 when handed back, else its holder's last heartbeat + ttl. */
  prev_expires_at: number | null
}

interface LeaseTables {
  spl_pair_leases: { pair_id: string; holder: string; epoch: number; expires_at: number }
  spl_pair_lease_log: LeaseLogEntry & { id: Generated<number> }
  spl_replicas: { replica_id: string; seen_at: number }
  spl_pairs: { pair_id: string; state: string }
}

const migrations: Record<string, Migration> = {
  '0001_leases': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('spl_pair_leases')
        .ifNotExists()
        .addColumn('pair_id', 'text', (c) => c.primaryKey())
        .addColumn('holder', 'text', (c) => c.notNull())
        .addColumn('epoch', 'integer', (c) => c.notNull())
        .addColumn('expires_at', 'integer', (c) => c.notNull())
        .execute()
      await db.schema.createIndex('spl_pair_leases_holder').ifNotExists().on('spl_pair_leases').columns(['holder']).execute()
      await db.schema
        .createTable('spl_pair_lease_log')
        .ifNotExists()
        .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
        .addColumn('pair_id', 'text', (c) => c.notNull())
        .addColumn('epoch', 'integer', (c) => c.notNull())
        .addColumn('holder', 'text', (c) => c.notNull())
        .addColumn('event', 'text', (c) => c.notNull())
        .addColumn('at', 'integer', (c) => c.notNull())
        .addColumn('prev_holder', 'text')
        .addColumn('prev_expires_at', 'integer')
        .execute()
      await db.schema.createIndex('spl_pair_lease_log_pair').ifNotExists().on('spl_pair_lease_log').columns(['pair_id', 'id']).execute()
      await db.schema
        .createTable('spl_replicas')
        .ifNotExists()
        .addColumn('replica_id', 'text', (c) => c.primaryKey())
        .addColumn('seen_at', 'integer', (c) => c.notNull())
        .execute()
    },
  },
}

/** Lease log rows older than this are trimmed (a week: enough to read back any incident). */
const KEEP_LOG_MS = 7 * 24 * 3600 * 1000
/** A replica not seen for this long is forgotten (its row only counted replicas). */
const FORGET_REPLICA_MS = 24 * 3600 * 1000
/** Ids per statement (PostgreSQL and SQLite both take far more parameters; this keeps statements small). */
const CHUNK = 500

/**
 * Pair leases in the shared database (SPEC 11): a row per pair naming the replica that pulls it,
 * until when, and an epoch that grows with every change of holder. A cursor write checks the
 * epoch in its own transaction (`fence`), so a replica that lost its lease — paused, partitioned,
 * slow — cannot write behind its successor. Every change of holder is logged.
 */
export class KyselyPairLeases implements PairLeases {
  readonly #held = new Map<string, number>()

  private constructor(
    private readonly db: Kysely<LeaseTables>,
    readonly replicaId: string,
    readonly ttlMs: number,
  ) {}

  /**
   * `db` is the leases' own connection when the daemon gives one (`owned`: closed by `close`):
   * the heartbeat must not queue behind the pulls' commits on the query connection, or a busy
   * replica would look dead. Fences run in the caller's transaction, whatever connection it is on.
   */
  static async open<DB>(db: Kysely<DB>, options: { replicaId: string; ttlMs: number; owned?: boolean }): Promise<KyselyPairLeases> {
    await migrateWith(db as unknown as Kysely<unknown>, 'leases', { getMigrations: async () => migrations })
    const leases = new KyselyPairLeases(db as unknown as Kysely<LeaseTables>, options.replicaId, options.ttlMs)
    leases.#owned = options.owned === true
    return leases
  }

  #owned = false

  async close(): Promise<void> {
    if (this.#owned) await this.db.destroy()
  }

  get held(): number {
    return this.#held.size
  }

  holds(pairId: string): boolean {
    return this.#held.has(pairId)
  }

  heldIds(): string[] {
    return [...this.#held.keys()]
  }

  async heartbeat(now: number): Promise<number> {
    await this.#seen(this.db, now)
    await this.db
      .deleteFrom('spl_replicas')
      .where('seen_at', '<', now - FORGET_REPLICA_MS)
      .execute()
    const alive = await this.db
      .selectFrom('spl_replicas')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      // A live replica says so every ttl/3: one not seen for two of its rounds is gone, and stops
      // counting before its leases lapse, so the others reach for its pairs as soon as they can.
      .where('seen_at', '>=', now - Math.ceil((2 * this.ttlMs) / 3))
      .executeTakeFirstOrThrow()
    return Math.max(1, Number(alive.n))
  }

  async renew(now: number): Promise<Set<string>> {
    // The leases live as long as their holder's heartbeat (spl_replicas): renewing them is the
    // heartbeat, one row, however many pairs. What is checked here is whether they are all still
    // this replica's — one aggregate read, and the rows only when it differs.
    const sum = await this.db
      .selectFrom('spl_pair_leases')
      .select((eb) => [eb.fn.countAll<number>().as('n'), eb.fn.coalesce(eb.fn.sum<number>('epoch'), sql<number>`0`).as('s')])
      .where('holder', '=', this.replicaId)
      .where('expires_at', '<>', 0)
      .executeTakeFirstOrThrow()
    let localSum = 0
    for (const e of this.#held.values()) localSum += e
    if (Number(sum.n) !== this.#held.size || Number(sum.s) !== localSum) {
      const rows = await this.db
        .selectFrom('spl_pair_leases')
        .select(['pair_id', 'epoch'])
        .where('holder', '=', this.replicaId)
        .where('expires_at', '<>', 0)
        .execute()
      const there = new Map(rows.map((r) => [r.pair_id, Number(r.epoch)]))
      for (const [id, epoch] of this.#held) if (there.get(id) !== epoch) this.#held.delete(id)
      // Rows this replica holds but does not know of (a take whose answer was lost with the
      // connection): handed back, or nobody would ever pull those pairs.
      const orphans = rows.filter((r) => !this.#held.has(r.pair_id)).map((r) => r.pair_id)
      if (orphans.length > 0) await this.#handBack(orphans, now)
    }
    return new Set(this.#held.keys())
  }

  async unheld(now: number, limit: number): Promise<string[]> {
    if (limit <= 0) return []
    const rows = await this.db
      .selectFrom('spl_pairs as p')
      .leftJoin('spl_pair_leases as l', 'l.pair_id', 'p.pair_id')
      .leftJoin('spl_replicas as r', 'r.replica_id', 'l.holder')
      .select('p.pair_id')
      .where('p.state', 'not in', ['paused', 'stopped'])
      .where((eb) =>
        eb.or([
          eb('l.pair_id', 'is', null),
          eb('l.expires_at', '=', 0),
          eb('r.replica_id', 'is', null),
          eb('r.seen_at', '<', now - this.ttlMs),
        ]),
      )
      // Replicas starting together should not all reach for the same pairs first.
      .orderBy(sql`random()`)
      .limit(limit)
      .execute()
    return rows.map((r) => r.pair_id)
  }

  async acquire(pairIds: readonly string[], now: number): Promise<string[]> {
    const taken: string[] = []
    for (let i = 0; i < pairIds.length; i += CHUNK) {
      taken.push(...(await this.#take(pairIds.slice(i, i + CHUNK), now, 'acquire')))
    }
    return taken
  }

  async seize(pairId: string, now: number): Promise<void> {
    await this.#take([pairId], now, 'seize')
  }

  async release(pairIds: readonly string[], now: number): Promise<void> {
    const ids = pairIds.filter((id) => this.#held.has(id))
    await this.#handBack(ids, now)
    for (const id of ids) this.#held.delete(id)
  }

  /** Marks leases of this replica free at once (expires_at 0) and logs it. */
  async #handBack(pairIds: readonly string[], now: number): Promise<void> {
    for (let i = 0; i < pairIds.length; i += CHUNK) {
      const ids = pairIds.slice(i, i + CHUNK)
      await inTransaction(this.db, async (trx) => {
        const rows = await trx
          .updateTable('spl_pair_leases')
          .set({ expires_at: 0 })
          .where('holder', '=', this.replicaId)
          .where('pair_id', 'in', ids)
          .returning(['pair_id', 'epoch'])
          .execute()
        if (rows.length > 0) {
          await trx
            .insertInto('spl_pair_lease_log')
            .values(
              rows.map((r) => ({
                pair_id: r.pair_id,
                epoch: r.epoch,
                holder: this.replicaId,
                event: 'release',
                at: now,
                prev_holder: null,
                prev_expires_at: null,
              })),
            )
            .execute()
        }
      })
    }
  }

  async fence(trx: Transaction<unknown>, pairId: string): Promise<void> {
    const epoch = this.#held.get(pairId)
    if (epoch === undefined) throw new LeaseLostError(pairId, this.replicaId)
    // An UPDATE, not a SELECT: it locks the lease row until this transaction ends, so a takeover
    // waits for this commit (and then reads its cursor), or this write sees the new epoch and fails.
    const res = await (trx as unknown as Transaction<LeaseTables>)
      .updateTable('spl_pair_leases')
      .set({ epoch })
      .where('pair_id', '=', pairId)
      .where('holder', '=', this.replicaId)
      .where('epoch', '=', epoch)
      .executeTakeFirst()
    if (Number(res.numUpdatedRows) !== 1) {
      this.#held.delete(pairId)
      throw new LeaseLostError(pairId, this.replicaId)
    }
  }

  /** Takes `ids` when free or expired (`acquire`), or whoever holds them (`seize`); logs each change of holder. */
  async #take(ids: readonly string[], now: number, event: 'acquire' | 'seize'): Promise<string[]> {
    if (ids.length === 0) return []
    const rows = await inTransaction(this.db, async (trx) => {
      // A holder is alive from its first take: its leases are not free before its first round.
      await this.#seen(trx, now)
      const before = await trx
        .selectFrom('spl_pair_leases as l')
        .leftJoin('spl_replicas as r', 'r.replica_id', 'l.holder')
        .select(['l.pair_id', 'l.holder', 'l.expires_at', 'r.seen_at'])
        .where('l.pair_id', 'in', ids)
        .execute()
      // When the previous lease lapsed: handed back (0), or its holder's last heartbeat + ttl.
      const prev = new Map(
        before.map((r) => [
          r.pair_id,
          { holder: r.holder, expires_at: Number(r.expires_at) === 0 ? 0 : Number(r.seen_at ?? 0) + this.ttlMs },
        ]),
      )
      const taken = await trx
        .insertInto('spl_pair_leases')
        .values(ids.map((pair_id) => ({ pair_id, holder: this.replicaId, epoch: 1, expires_at: now + this.ttlMs })))
        .onConflict((oc) => {
          const update = oc.column('pair_id').doUpdateSet({
            holder: this.replicaId,
            epoch: sql`spl_pair_leases.epoch + 1`,
            expires_at: now + this.ttlMs,
          })
          // Free: handed back, or its holder has not been seen for a lease time (it died or stalled).
          const free = sql<boolean>`(spl_pair_leases.expires_at = 0 or not exists (select 1 from spl_replicas r
            where r.replica_id = spl_pair_leases.holder and r.seen_at >= ${now - this.ttlMs}))`
          return event === 'seize' ? update : update.where(free)
        })
        .returning(['pair_id', 'epoch'])
        .execute()
      if (taken.length > 0) {
        await trx
          .insertInto('spl_pair_lease_log')
          .values(
            taken.map((r) => ({
              pair_id: r.pair_id,
              epoch: r.epoch,
              holder: this.replicaId,
              event,
              at: now,
              prev_holder: prev.get(r.pair_id)?.holder ?? null,
              prev_expires_at: prev.get(r.pair_id)?.expires_at ?? null,
            })),
          )
          .execute()
      }
      return taken
    })
    for (const r of rows) this.#held.set(r.pair_id, Number(r.epoch))
    if (rows.length > 0 && Math.random() < 0.01) await this.#trimLog(now)
    return rows.map((r) => r.pair_id)
  }

  /** This replica's heartbeat: while it is fresh (within a lease time), its leases hold. */
  async #seen(db: Kysely<LeaseTables>, now: number): Promise<void> {
    await db
      .insertInto('spl_replicas')
      .values({ replica_id: this.replicaId, seen_at: now })
      .onConflict((oc) => oc.column('replica_id').doUpdateSet({ seen_at: now }))
      .execute()
  }

  async #trimLog(now: number): Promise<void> {
    await this.db
      .deleteFrom('spl_pair_lease_log')
      .where('at', '<', now - KEEP_LOG_MS)
      .execute()
  }
}
