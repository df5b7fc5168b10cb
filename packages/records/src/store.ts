import type { Kysely, Transaction } from 'kysely'
import { CompiledQuery, sql } from 'kysely'
import { isPostgres } from './dialect.js'
import type { Candidate, Rejection } from './ingest.js'
import { idKeyOf, migrateRecords } from './migrations.js'
import { type ClockOwner, type KnownId, planIngest } from './plan.js'
import { type StoreOptions, storedRowOf } from './rows.js'
import { namespaceOf } from './schema.js'
import type { SignedRecord } from './sign.js'
import type { InsertRow, RecordsTables, StoredRow } from './tables.js'
import { inTransaction } from './transaction.js'

/** What happened to one verified candidate handed to `ingest`. */
export type IngestOutcome = { status: 'stored'; seq: number } | { status: 'replaced'; seq: number } | { status: 'duplicate' } | Rejection

/**
 * Rows per INSERT statement (12 variables each stays far below SQLite's limit). A batch is cut
 * greedily into these few sizes so that only five statement texts exist: each prepared INSERT of
 * 400 rows holds ~0.4 MB, and one per row count would fill the statement cache with them.
 */
const INSERT_SIZES = [400, 100, 20, 5, 1] as const
const LOOKUP_CHUNK = 500

const INSERT_COLUMNS = [
  'id',
  'id_key',
  'thread',
  'actor',
  'clock',
  'act',
  'namespace',
  'record',
  'sig',
  'redacted',
  'stored_at',
  'origin',
] as const
const insertSql = new Map<number, string>()
const pgInsertSql = new Map<number, string>()

/**
 * The key of the transaction-scoped advisory lock every PostgreSQL writer of spl_records takes
 * before it draws sequence values, and holds until it commits: rows then become visible in seq
 * order on every replica, so a feed reading `seq > cursor` can never pass a row that commits
 * later with a lower seq (docs/decisions.md 130). A transaction lock, not a session lock: it is
 * released by COMMIT/ROLLBACK, also behind a transaction-mode pooler.
 */
export const SEQ_LOCK_KEY = 0x5350_4c01

/** The PostgreSQL INSERT of `rows` ($n placeholders), handing back each row's seq by id. */
function pgInsertQuery(rows: readonly InsertRow[]): CompiledQuery {
  let text = pgInsertSql.get(rows.length)
  if (text === undefined) {
    const n = INSERT_COLUMNS.length
    const values = Array.from({ length: rows.length }, (_, r) => `(${INSERT_COLUMNS.map((_, c) => `$${r * n + c + 1}`).join(', ')})`)
    text = `insert into "spl_records" (${INSERT_COLUMNS.map((c) => `"${c}"`).join(', ')}) values ${values.join(', ')} returning "id", "seq"`
    pgInsertSql.set(rows.length, text)
  }
  const params: unknown[] = []
  for (const r of rows) for (const c of INSERT_COLUMNS) params.push(r[c] ?? null)
  return CompiledQuery.raw(text, params)
}

/**
 * The INSERT of `rows`, as SQL text made once per row count and its variables: kysely's query
 * builder costs ~17 µs and a tree of nodes per row, the hottest path of a catch-up.
 */
function insertQuery(rows: readonly InsertRow[]): CompiledQuery {
  let text = insertSql.get(rows.length)
  if (text === undefined) {
    const one = `(${INSERT_COLUMNS.map(() => '?').join(', ')})`
    text = `insert into "spl_records" (${INSERT_COLUMNS.map((c) => `"${c}"`).join(', ')}) values ${Array(rows.length).fill(one).join(', ')}`
    insertSql.set(rows.length, text)
  }
  const params: unknown[] = []
  for (const r of rows) for (const c of INSERT_COLUMNS) params.push(r[c] ?? null)
  return CompiledQuery.raw(text, params)
}

type Db = Kysely<RecordsTables> | Transaction<RecordsTables>

/**
 * The record store: a rowid table whose rowid is the local sequence (what cursors point at),
 * with a unique (actor, thread, clock) index and ids found through their integer key. Each id is
 * stored once because `ingest` looks it up before inserting, in the same transaction: run every
 * write through `ingest`/`appendLocal`, inside `transaction` when several run at once.
 */
export class RecordStore {
  readonly #pg: boolean

  private constructor(
    readonly db: Kysely<RecordsTables>,
    readonly epoch: string,
  ) {
    this.#pg = isPostgres(db)
  }

  /** Migrates the record tables on `db` and opens the store. */
  static async open<DB>(db: Kysely<DB>): Promise<RecordStore> {
    await migrateRecords(db as unknown as Kysely<unknown>)
    const rdb = db as unknown as Kysely<RecordsTables>
    const row = await rdb.selectFrom('spl_meta').select('value').where('key', '=', 'epoch').executeTakeFirstOrThrow()
    return new RecordStore(rdb, row.value)
  }

  /** Runs `fn` in one database transaction. */
  transaction<T>(fn: (trx: Transaction<RecordsTables>) => Promise<T>): Promise<T> {
    return inTransaction(this.db, fn)
  }

  /** A value of the store's own key-value table (`epoch`, the identity that last opened it…). */
  async getMeta(key: string): Promise<string | undefined> {
    const row = await this.db.selectFrom('spl_meta').select('value').where('key', '=', key).executeTakeFirst()
    return row?.value
  }

  /** Sets a value of the key-value table. */
  async setMeta(key: string, value: string): Promise<void> {
    await this.db
      .insertInto('spl_meta')
      .values({ key, value })
      .onConflict((oc) => oc.column('key').doUpdateSet({ value }))
      .execute()
  }

  /** The clock the next record of `actor` in `thread` gets: one more than its highest, 0 first. */
  async nextClock(actor: string, thread: string, db: Db = this.db): Promise<number> {
    // Replicas on PostgreSQL emit as one actor: the commit-order lock, taken before the read and held
    // to COMMIT, makes the highest clock every writer has committed the one read here (no two
    // replicas pick the same clock). It is the lock the insert takes anyway (#pgInsert).
    if (this.#pg) await sql`select pg_advisory_xact_lock(${SEQ_LOCK_KEY})`.execute(db)
    const row = await db
      .selectFrom('spl_records')
      .select((eb) => eb.fn.max('clock').as('max'))
      .where('actor', '=', actor)
      .where('thread', '=', thread)
      .executeTakeFirst()
    const max = row?.max
    return max === null || max === undefined ? 0 : Number(max) + 1
  }

  /** One stored row by id. */
  async getById(id: string, db: Db = this.db): Promise<StoredRow | undefined> {
    return (await db.selectFrom('spl_records').selectAll().where('id_key', '=', idKeyOf(id)).where('id', '=', id).executeTakeFirst()) as
      | StoredRow
      | undefined
  }

  /** Rows of `thread` with these ids (at most LOOKUP_CHUNK at a time is fine; any number works). */
  async getManyInThread(thread: string, ids: readonly string[]): Promise<StoredRow[]> {
    const out: StoredRow[] = []
    const wanted = new Set(ids)
    for (let i = 0; i < ids.length; i += LOOKUP_CHUNK) {
      const rows = (await this.db
        .selectFrom('spl_records')
        .selectAll()
        .where('id_key', 'in', ids.slice(i, i + LOOKUP_CHUNK).map(idKeyOf))
        .execute()) as StoredRow[]
      for (const r of rows) if (r.thread === thread && wanted.has(r.id)) out.push(r)
    }
    return out
  }

  /** Rows of `thread` in `namespaces` with afterSeq < seq ≤ upTo, in store order (the feed's reveal pass). */
  async listAfterIn(thread: string, afterSeq: number, upTo: number, namespaces: readonly string[], limit: number): Promise<StoredRow[]> {
    if (namespaces.length === 0) return []
    return (await this.db
      .selectFrom('spl_records')
      .selectAll()
      .where('thread', '=', thread)
      .where('seq', '>', afterSeq)
      .where('seq', '<=', upTo)
      .where('namespace', 'in', [...namespaces])
      .orderBy('seq')
      .limit(limit)
      .execute()) as StoredRow[]
  }

  /** Every id of `thread` with its namespace, sorted by id (the set an audit reconciles, SPEC 13). */
  async threadIds(thread: string): Promise<{ id: string; namespace: string }[]> {
    const rows = await this.db.selectFrom('spl_records').select(['id', 'namespace']).where('thread', '=', thread).execute()
    return rows.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  }

  /** Rows of `thread` after local sequence `afterSeq`, in store order. */
  async listAfter(thread: string, afterSeq: number, limit: number): Promise<StoredRow[]> {
    return (await this.db
      .selectFrom('spl_records')
      .selectAll()
      .where('thread', '=', thread)
      .where('seq', '>', afterSeq)
      .orderBy('seq')
      .limit(limit)
      .execute()) as StoredRow[]
  }

  /** The highest local sequence in `thread` (0 when it has none): one step down the (thread, seq) index. */
  async threadHead(thread: string): Promise<number> {
    const row = await this.db
      .selectFrom('spl_records')
      .select((eb) => eb.fn.max('seq').as('seq'))
      .where('thread', '=', thread)
      .executeTakeFirst()
    return Number(row?.seq ?? 0)
  }

  /** Rows of every thread (or of `threads` only) after local sequence `afterSeq`, in store order (an export's pages). */
  async listAllAfter(afterSeq: number, limit: number, threads?: readonly string[]): Promise<StoredRow[]> {
    let q = this.db.selectFrom('spl_records').selectAll().where('seq', '>', afterSeq)
    if (threads !== undefined) q = q.where('thread', 'in', threads.length > 0 ? [...threads] : [''])
    return (await q.orderBy('seq').limit(limit).execute()) as StoredRow[]
  }

  /** The highest local sequence (0 when empty). */
  async headSeq(): Promise<number> {
    const row = await sql<{ seq: number | null }>`select max(seq) as seq from spl_records`.execute(this.db)
    return Number(row.rows[0]?.seq ?? 0)
  }

  /** Threads with their record counts, most recently written first. */
  async listThreads(): Promise<{ thread: string; records: number; last_seq: number }[]> {
    const rows = await this.db
      .selectFrom('spl_records')
      .select((eb) => ['thread', eb.fn.countAll<number>().as('records'), eb.fn.max('seq').as('last_seq')])
      .groupBy('thread')
      .orderBy('last_seq', 'desc')
      .execute()
    return rows.map((r) => ({ thread: r.thread, records: Number(r.records), last_seq: Number(r.last_seq) }))
  }

  /** Number of stored records. */
  async count(): Promise<number> {
    const row = await this.db
      .selectFrom('spl_records')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow()
    return Number(row.n)
  }

  /** Which of `ids` are stored, and whether each stored one is a redacted stub. */
  async findExisting(ids: readonly string[], db: Db = this.db): Promise<Map<string, KnownId>> {
    const found = new Map<string, KnownId>()
    const wanted = new Set(ids)
    for (let i = 0; i < ids.length; i += LOOKUP_CHUNK) {
      const rows = await db
        .selectFrom('spl_records')
        .select(['id', 'redacted'])
        .where('id_key', 'in', ids.slice(i, i + LOOKUP_CHUNK).map(idKeyOf))
        .execute()
      // The key is a prefix: another id may share it.
      for (const r of rows) if (wanted.has(r.id)) found.set(r.id, { redacted: r.redacted === 1 })
    }
    return found
  }

  private async clockOwners(candidates: readonly Candidate[], db: Db): Promise<Map<string, ClockOwner>> {
    const owners = new Map<string, ClockOwner>()
    const byKey = new Map<string, { actor: string; thread: string; clocks: number[] }>()
    for (const c of candidates) {
      const k = `${c.record.actor}\n${c.record.thread}`
      let g = byKey.get(k)
      if (!g) byKey.set(k, (g = { actor: c.record.actor, thread: c.record.thread, clocks: [] }))
      g.clocks.push(c.record.clock)
    }
    for (const g of byKey.values()) {
      for (let i = 0; i < g.clocks.length; i += LOOKUP_CHUNK) {
        const rows = await db
          .selectFrom('spl_records')
          .select(['clock', 'id', 'redacted'])
          .where('actor', '=', g.actor)
          .where('thread', '=', g.thread)
          .where('clock', 'in', g.clocks.slice(i, i + LOOKUP_CHUNK))
          .execute()
        for (const r of rows) owners.set(`${g.actor}\n${g.thread}\n${r.clock}`, { id: r.id, redacted: r.redacted === 1 })
      }
    }
    return owners
  }

  /** Stores a record signed here. Returns whether it was new (the same record twice is a no-op). */
  async appendLocal(signed: SignedRecord, storedAt: number, db: Db = this.db): Promise<{ created: boolean; row: StoredRow } | Rejection> {
    const {
      outcomes: [outcome],
      rows: [inserted],
    } = await this.ingestRows(
      [
        {
          ok: true,
          id: signed.id,
          record: signed.record,
          canonical: signed.canonical,
          sig: signed.sig,
          namespace: namespaceOf(signed.record),
          redacted: false,
          storedAt: null,
        },
      ],
      { origin: null, now: storedAt },
      db,
    )
    if (!outcome) throw new Error('unreachable: one candidate gives one outcome')
    if ('ok' in outcome) return outcome
    // A new record's row is the one just inserted; a duplicate's is read.
    const row = inserted ?? (await this.getById(signed.id, db))
    if (!row) throw new Error(`record ${signed.id} vanished after insert`)
    return { created: outcome.status === 'stored', row }
  }

  /**
   * The seq of the first row one multi-row INSERT just stored: SQLite numbers the rows of one
   * statement consecutively up to the last insert rowid (RETURNING would cost ~10 µs a row).
   */
  static #firstInsertedSeq(lastId: bigint | undefined, count: number): number {
    if (lastId === undefined) throw new Error('the database did not report the last insert rowid (RecordStore needs SQLite)')
    return Number(lastId) - count + 1
  }

  /**
   * Stores verified candidates by the rules of planIngest (duplicates are no-ops, a full record
   * replaces its redacted stub, a second id for a used clock is CLOCK_CONFLICT). Run it inside
   * the transaction that also moves the cursor.
   */
  async ingest(
    candidates: readonly Candidate[],
    options: { origin: string | null; now: number },
    db: Db = this.db,
  ): Promise<IngestOutcome[]> {
    return (await this.ingestRows(candidates, options, db)).outcomes
  }

  /** `ingest`, also handing back the rows it inserted (for listeners, without reading them back). */
  async ingestRows(
    candidates: readonly Candidate[],
    options: StoreOptions,
    db: Db = this.db,
  ): Promise<{ outcomes: IngestOutcome[]; rows: StoredRow[] }> {
    if (candidates.length === 0) return { outcomes: [], rows: [] }
    // On PostgreSQL the commit-order lock must be held from the first seq drawn to COMMIT.
    if (this.#pg && !db.isTransaction) return this.transaction((trx) => this.ingestRows(candidates, options, trx))
    const known = await this.findExisting(
      candidates.map((c) => c.id),
      db,
    )
    const plan = planIngest(candidates, known, await this.clockOwners(candidates, db))
    const outcomes = plan.outcomes as IngestOutcome[]
    if (plan.deletes.length > 0) {
      // A stub is replaced by a new row so pullers downstream receive the full record too.
      for (let i = 0; i < plan.deletes.length; i += LOOKUP_CHUNK) {
        const part = plan.deletes.slice(i, i + LOOKUP_CHUNK)
        await db.deleteFrom('spl_records').where('id_key', 'in', part.map(idKeyOf)).where('id', 'in', part).execute()
      }
    }
    // Rows are built with the shape they are stored as: the seq is filled in once inserted.
    const rows: StoredRow[] = plan.inserts.map((k) => storedRowOf(candidates[k]!, options))
    if (this.#pg) {
      if (rows.length > 0) await this.#pgInsert(rows, plan.inserts, outcomes, db)
      return { outcomes, rows }
    }
    for (let i = 0; i < rows.length; ) {
      const size = INSERT_SIZES.find((n) => n <= rows.length - i)!
      const part = rows.slice(i, i + size)
      const result = await db.executeQuery(insertQuery(part))
      const first = RecordStore.#firstInsertedSeq(result.insertId, part.length)
      for (let j = 0; j < part.length; j++) {
        part[j]!.seq = first + j
        ;(outcomes[plan.inserts[i + j]!] as { seq: number }).seq = first + j
      }
      i += size
    }
    return { outcomes, rows }
  }

  /** The inserts on PostgreSQL, under the commit-order lock (SEQ_LOCK_KEY). */
  async #pgInsert(rows: StoredRow[], inserts: readonly number[], outcomes: IngestOutcome[], db: Db): Promise<void> {
    await sql`select pg_advisory_xact_lock(${SEQ_LOCK_KEY})`.execute(db)
    for (let i = 0; i < rows.length; ) {
      const size = INSERT_SIZES.find((n) => n <= rows.length - i)!
      const part = rows.slice(i, i + size)
      const result = await db.executeQuery<{ id: string; seq: number | string }>(pgInsertQuery(part))
      const seqOf = new Map(result.rows.map((r) => [r.id, Number(r.seq)]))
      for (let j = 0; j < part.length; j++) {
        const seq = seqOf.get(part[j]!.id)
        if (seq === undefined) throw new Error(`record ${part[j]!.id} was not reported back by its insert`)
        part[j]!.seq = seq
        ;(outcomes[inserts[i + j]!] as { seq: number }).seq = seq
      }
      i += size
    }
  }
}
