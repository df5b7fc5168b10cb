import { inTransaction, migrateWith, type RecordStore, type Rejection, type RejectionCode } from '@spl/records'
import { type Generated, type Kysely, type Migration, sql } from 'kysely'
import type { Pair, PairError, PairMode, PairState, PairTotals } from '../pair.js'
import { type CommitResult, foldCommit, type PairStore, type PullCommit, type RecordSink, type RejectionEntry } from '../stores.js'
import type { KyselyPairLeases } from './kysely-leases.js'

interface PairsTables {
  spl_pairs: {
    pair_id: string
    peer_did: string
    peer_url: string
    thread_id: string
    cursor: string | null
    state: string
    last_error: string | null
    mode: string
    poll_interval_ms: number
    poll_only: number
    created_at: number
    updated_at: number
    last_success_at: number | null
    caught_up_at: number | null
    totals: string
  }
  spl_pair_rejections: {
    id: Generated<number>
    pair_id: string
    record_id: string | null
    code: string
    message: string
    at: number
  }
}

const migrations: Record<string, Migration> = {
  '0001_pairs': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('spl_pairs')
        .ifNotExists()
        .addColumn('pair_id', 'text', (c) => c.primaryKey())
        .addColumn('peer_did', 'text', (c) => c.notNull())
        .addColumn('peer_url', 'text', (c) => c.notNull())
        .addColumn('thread_id', 'text', (c) => c.notNull())
        .addColumn('cursor', 'text')
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('last_error', 'text')
        .addColumn('mode', 'text', (c) => c.notNull())
        .addColumn('poll_interval_ms', 'integer', (c) => c.notNull())
        .addColumn('poll_only', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('created_at', 'integer', (c) => c.notNull())
        .addColumn('updated_at', 'integer', (c) => c.notNull())
        .addColumn('last_success_at', 'integer')
        .addColumn('caught_up_at', 'integer')
        .addColumn('totals', 'text', (c) => c.notNull())
        .execute()
      await db.schema
        .createTable('spl_pair_rejections')
        .ifNotExists()
        .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
        .addColumn('pair_id', 'text', (c) => c.notNull())
        .addColumn('record_id', 'text')
        .addColumn('code', 'text', (c) => c.notNull())
        .addColumn('message', 'text', (c) => c.notNull())
        .addColumn('at', 'integer', (c) => c.notNull())
        .execute()
      await db.schema.createIndex('spl_pair_rejections_pair').ifNotExists().on('spl_pair_rejections').columns(['pair_id', 'id']).execute()
    },
  },
}

const KEEP_REJECTIONS = 1000

function toRow(p: Pair): PairsTables['spl_pairs'] {
  return {
    pair_id: p.pair_id,
    peer_did: p.peer_did,
    peer_url: p.peer_url,
    thread_id: p.thread_id,
    cursor: p.cursor,
    state: p.state,
    last_error: p.last_error ? JSON.stringify(p.last_error) : null,
    mode: p.mode,
    poll_interval_ms: p.poll_interval_ms,
    poll_only: p.poll_only ? 1 : 0,
    created_at: p.created_at,
    updated_at: p.updated_at,
    last_success_at: p.last_success_at,
    caught_up_at: p.caught_up_at,
    totals: JSON.stringify(p.totals),
  }
}

function fromRow(r: PairsTables['spl_pairs']): Pair {
  return {
    pair_id: r.pair_id,
    peer_did: r.peer_did,
    peer_url: r.peer_url,
    thread_id: r.thread_id,
    cursor: r.cursor,
    state: r.state as PairState,
    last_error: r.last_error ? (JSON.parse(r.last_error) as PairError) : null,
    mode: r.mode as PairMode,
    poll_interval_ms: r.poll_interval_ms,
    poll_only: r.poll_only === 1,
    created_at: r.created_at,
    updated_at: r.updated_at,
    last_success_at: r.last_success_at,
    caught_up_at: r.caught_up_at,
    totals: JSON.parse(r.totals) as PairTotals,
  }
}

/**
 * Pairs and pulled records in one SQLite (or any kysely) database: a page's records, its
 * rejections, the cursor and the counters are written in ONE transaction, so after a crash at
 * any instant the cursor is never ahead of the records and nothing is stored twice.
 */
export class KyselySyncStore implements PairStore, RecordSink {
  private constructor(
    private readonly db: Kysely<PairsTables>,
    private readonly records: RecordStore,
    private readonly leases: KyselyPairLeases | null,
  ) {}

  /**
   * Migrates the pair tables and wraps `records` (which must use the same database). With
   * `leases` (replicas on one database), every write of a pair's row is fenced by its lease.
   */
  static async open<DB>(db: Kysely<DB>, records: RecordStore, leases: KyselyPairLeases | null = null): Promise<KyselySyncStore> {
    await migrateWith(db as unknown as Kysely<unknown>, 'sync', { getMigrations: async () => migrations })
    return new KyselySyncStore(db as unknown as Kysely<PairsTables>, records, leases)
  }

  async listPairs(options: { updatedSince?: number } = {}): Promise<Pair[]> {
    let q = this.db.selectFrom('spl_pairs').selectAll().orderBy('created_at')
    if (options.updatedSince !== undefined) q = q.where('updated_at', '>=', options.updatedSince)
    return (await q.execute()).map(fromRow)
  }

  async getPair(pairId: string): Promise<Pair | undefined> {
    const row = await this.db.selectFrom('spl_pairs').selectAll().where('pair_id', '=', pairId).executeTakeFirst()
    return row && fromRow(row)
  }

  async savePair(pair: Pair): Promise<void> {
    const row = toRow(pair)
    const write = (db: Kysely<PairsTables>) =>
      db
        .insertInto('spl_pairs')
        .values(row)
        .onConflict((oc) => oc.column('pair_id').doUpdateSet(row))
        .execute()
    const leases = this.leases
    if (leases === null) await write(this.db)
    else
      await inTransaction(this.db, async (trx) => {
        await leases.fence(trx as never, pair.pair_id)
        await write(trx)
      })
  }

  async listRejections(pairId: string, limit: number): Promise<RejectionEntry[]> {
    const rows = await this.db
      .selectFrom('spl_pair_rejections')
      .select(['pair_id', 'record_id', 'code', 'message', 'at'])
      .where('pair_id', '=', pairId)
      .orderBy('id', 'desc')
      .limit(limit)
      .execute()
    return rows as RejectionEntry[]
  }

  async dropRejections(pairId: string, code: RejectionCode, ids: readonly string[]): Promise<void> {
    for (let i = 0; i < ids.length; i += 500) {
      await this.db
        .deleteFrom('spl_pair_rejections')
        .where('pair_id', '=', pairId)
        .where('code', '=', code)
        .where('record_id', 'in', ids.slice(i, i + 500))
        .execute()
    }
  }

  known(ids: readonly string[]): Promise<Map<string, { redacted: boolean }>> {
    return this.records.findExisting(ids)
  }

  async commit(batch: PullCommit): Promise<CommitResult> {
    const writePair = batch.writePair !== false
    return inTransaction(this.db, async (trx) => {
      // First: a replica that lost the pair's lease stores nothing of this page (its successor pulls it).
      if (writePair && this.leases !== null) await this.leases.fence(trx as never, batch.pair.pair_id)
      const { outcomes, rows } = await this.records.ingestRows(
        batch.accepted,
        { origin: batch.pair.peer_did, now: batch.now },
        trx as unknown as Parameters<RecordStore['ingest']>[2],
      )
      const result: Omit<CommitResult, 'pair'> = { stored: rows.length, duplicates: 0, rejected: [], storedRows: rows }
      for (const o of outcomes) {
        if ('ok' in o) result.rejected.push(o)
        else if (o.status === 'duplicate') result.duplicates++
      }
      const rejected: Rejection[] = [...batch.rejected, ...result.rejected]
      if (rejected.length > 0) {
        await trx
          .insertInto('spl_pair_rejections')
          .values(
            rejected.slice(-KEEP_REJECTIONS).map((r) => ({
              pair_id: batch.pair.pair_id,
              record_id: r.id,
              code: r.code,
              message: r.message,
              at: batch.now,
            })),
          )
          .execute()
        await sql`delete from spl_pair_rejections where pair_id = ${batch.pair.pair_id} and id <= (
          select id from spl_pair_rejections where pair_id = ${batch.pair.pair_id} order by id desc limit 1 offset ${KEEP_REJECTIONS})`.execute(
          trx,
        )
      }
      // The counters are folded here, once, in the transaction that writes them.
      const pair = foldCommit(batch.next, result)
      if (writePair) await trx.updateTable('spl_pairs').set(toRow(pair)).where('pair_id', '=', pair.pair_id).execute()
      return { ...result, pair }
    })
  }
}
