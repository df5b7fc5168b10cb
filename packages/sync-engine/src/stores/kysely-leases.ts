import { inTransaction, migrateWith } from '@spl/records'
import { type Generated, type Kysely, type Migration, sql, type Transaction } from 'kysely'
import { LeaseLostError, type PairLeases } from '../stores.js'

interface LeaseTables {
  spl_pair_leases: { pair_id: string; holder: string; epoch: number; expires_at: number }
  spl_pair_lease_log: {
    id: Generated<number>
    pair_id: string
    epoch: number
    holder: string
    /** acquire (free or expired), seize (an operator's change), release (handed back). */
    event: string
    at: number
    prev_holder: string | null
    prev_expires_at: number | null
  }
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

  static async open<DB>(db: Kysely<DB>, options: { replicaId: string; ttlMs: number }): Promise<KyselyPairLeases> {
    await migrateWith(db as unknown as Kysely<unknown>, 'leases', { getMigrations: async () => migrations })
    return new KyselyPairLeases(db as unknown as Kysely<LeaseTables>, options.replicaId, options.ttlMs)
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
    const row = { replica_id: this.replicaId, seen_at: now }
    await this.db
      .insertInto('spl_replicas')
      .values(row)
      .onConflict((oc) => oc.column('replica_id').doUpdateSet({ seen_at: now }))
      .execute()
    await this.db
      .deleteFrom('spl_replicas')
      .where('seen_at', '<', now - FORGET_REPLICA_MS)
      .execute()
    const alive = await this.db
      .selectFrom('spl_replicas')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      // A live replica says so every ttl/3: one not seen for two of its rounds is gone, and stops
      // counting before its leases expire, so the others reach for its pairs as soon as they can.
      .where('seen_at', '>=', now - Math.ceil((2 * this.ttlMs) / 3))
      .executeTakeFirstOrThrow()
    return Math.max(1, Number(alive.n))
  }

  async renew(now: number): Promise<Set<string>> {
    // holder = this replica means nobody took the lease since (a takeover changes the holder), so
    // even a lease that lapsed unnoticed is still this replica's to extend.
    const rows = await this.db
      .updateTable('spl_pair_leases')
      .set({ expires_at: now + this.ttlMs })
      .where('holder', '=', this.replicaId)
      .returning(['pair_id', 'epoch'])
      .execute()
    const still = new Set<string>()
    const next = new Map(rows.map((r) => [r.pair_id, Number(r.epoch)]))
    for (const [id, epoch] of this.#held) {
      if (next.get(id) === epoch) still.add(id)
      else this.#held.delete(id)
    }
    return still
  }

  async unheld(now: number, limit: number): Promise<string[]> {
    if (limit <= 0) return []
    const rows = await this.db
      .selectFrom('spl_pairs as p')
      .leftJoin('spl_pair_leases as l', 'l.pair_id', 'p.pair_id')
      .select('p.pair_id')
      .where('p.state', 'not in', ['paused', 'stopped'])
      .where((eb) => eb.or([eb('l.pair_id', 'is', null), eb('l.expires_at', '<', now)]))
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
    for (let i = 0; i < pairIds.length; i += CHUNK) {
      const ids = pairIds.slice(i, i + CHUNK).filter((id) => this.#held.has(id))
      if (ids.length === 0) continue
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
      for (const id of ids) this.#held.delete(id)
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
      const before = await trx
        .selectFrom('spl_pair_leases')
        .select(['pair_id', 'holder', 'expires_at'])
        .where('pair_id', 'in', ids)
        .execute()
      const prev = new Map(before.map((r) => [r.pair_id, r]))
      const taken = await trx
        .insertInto('spl_pair_leases')
        .values(ids.map((pair_id) => ({ pair_id, holder: this.replicaId, epoch: 1, expires_at: now + this.ttlMs })))
        .onConflict((oc) => {
          const update = oc.column('pair_id').doUpdateSet({
            holder: this.replicaId,
            epoch: sql`spl_pair_leases.epoch + 1`,
            expires_at: now + this.ttlMs,
          })
          return event === 'seize' ? update : update.where('spl_pair_leases.expires_at', '<', now)
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

  async #trimLog(now: number): Promise<void> {
    await this.db
      .deleteFrom('spl_pair_lease_log')
      .where('at', '<', now - KEEP_LOG_MS)
      .execute()
  }
}
