import { migrateWith } from '@spl/records'
import type { ReplayStore } from '@spl/transport'
import type { Kysely, Migration } from 'kysely'

interface ReplayTables {
  spl_proof_jtis: {
    key: string
    until_ms: number
  }
}

const migrations: Record<string, Migration> = {
  '0001_proof_jtis': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('spl_proof_jtis')
        .ifNotExists()
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('until_ms', 'integer', (c) => c.notNull())
        .execute()
      await db.schema.createIndex('spl_proof_jtis_until').ifNotExists().on('spl_proof_jtis').column('until_ms').execute()
    },
  },
}

/** Expired ids are deleted at most this often (and at open). */
const PRUNE_EVERY_MS = 30_000

/**
 * The durable replay cache of SPL-Proof ids (SPEC 7.4: a `jti` is refused until its proof
 * expires, also across restarts): one row per used id with the time it may be forgotten, in the
 * daemon's database; expired rows are pruned.
 */
export class KyselyReplayStore implements ReplayStore {
  #nextPrune = 0

  private constructor(private readonly db: Kysely<ReplayTables>) {}

  /** Migrates the table and prunes what expired while the daemon was down. */
  static async open<DB>(db: Kysely<DB>, nowMs = Date.now()): Promise<KyselyReplayStore> {
    await migrateWith(db as unknown as Kysely<unknown>, 'proofs', { getMigrations: async () => migrations })
    const store = new KyselyReplayStore(db as unknown as Kysely<ReplayTables>)
    await store.prune(nowMs)
    return store
  }

  async claim(key: string, untilMs: number, nowMs: number): Promise<boolean> {
    if (nowMs >= this.#nextPrune) await this.prune(nowMs)
    // One statement: a new id is inserted; a held one is taken over only when it has expired.
    const result = await this.db
      .insertInto('spl_proof_jtis')
      .values({ key, until_ms: untilMs })
      .onConflict((oc) => oc.column('key').doUpdateSet({ until_ms: untilMs }).where('spl_proof_jtis.until_ms', '<=', nowMs))
      .executeTakeFirst()
    return Number(result.numInsertedOrUpdatedRows ?? 0n) > 0
  }

  /** Deletes the ids whose proofs can no longer be accepted; returns how many. */
  async prune(nowMs: number): Promise<number> {
    this.#nextPrune = nowMs + PRUNE_EVERY_MS
    const r = await this.db.deleteFrom('spl_proof_jtis').where('until_ms', '<=', nowMs).executeTakeFirst()
    return Number(r.numDeletedRows)
  }

  /** How many ids are held (tests, metrics). */
  async size(): Promise<number> {
    const r = await this.db
      .selectFrom('spl_proof_jtis')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow()
    return Number(r.n)
  }
}
