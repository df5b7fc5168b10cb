import { randomBytes } from 'node:crypto'
import { type Kysely, type Migration, type MigrationProvider, Migrator, sql } from 'kysely'
import { isPostgres } from './dialect.js'

// Migrations are TS modules in a static map: no file system scanning at run time.
const migrations: Record<string, Migration> = {
  '0001_records': {
    async up(db: Kysely<unknown>) {
      if (isPostgres(db)) return createPostgresTables(db)
      await db.schema
        .createTable('spl_records')
        .ifNotExists()
        .addColumn('seq', 'integer', (c) => c.primaryKey().autoIncrement())
        .addColumn('id', 'text', (c) => c.notNull().unique())
        .addColumn('thread', 'text', (c) => c.notNull())
        .addColumn('actor', 'text', (c) => c.notNull())
        .addColumn('clock', 'integer', (c) => c.notNull())
        .addColumn('act', 'text', (c) => c.notNull())
        .addColumn('namespace', 'text', (c) => c.notNull())
        .addColumn('record', 'text', (c) => c.notNull())
        .addColumn('sig', 'text')
        .addColumn('redacted', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('stored_at', 'integer', (c) => c.notNull())
        .addColumn('origin', 'text')
        .execute()
      await db.schema.createIndex('spl_records_thread_seq').ifNotExists().on('spl_records').columns(['thread', 'seq']).execute()
      // One id per (actor, thread, clock): equivocation cannot be stored even by a bug upstream.
      await db.schema
        .createIndex('spl_records_actor_thread_clock')
        .ifNotExists()
        .unique()
        .on('spl_records')
        .columns(['actor', 'thread', 'clock'])
        .execute()
      await db.schema
        .createTable('spl_meta')
        .ifNotExists()
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('value', 'text', (c) => c.notNull())
        .execute()
      await sql`insert or ignore into spl_meta (key, value) values ('epoch', lower(hex(randomblob(8))))`.execute(db)
    },
  },
  // A unique index on 64-character random ids costs ~14 µs per inserted record (each insert
  // dirties a random page of a large index). Ids are found through a small integer key instead
  // (idKeyOf: their first 52 bits, not unique), and compared in full; the store already refuses
  // a second copy of an id inside the transaction that inserts it.
  '0002_id_key': {
    async up(db: Kysely<unknown>) {
      // PostgreSQL's tables are made in their final shape by 0001.
      if (isPostgres(db)) return
      await db.transaction().execute(async (trx) => {
        const kept = await sql<{ seq: number }>`select seq from sqlite_sequence where name = 'spl_records'`.execute(trx)
        await sql`create table spl_records_v2 (
          seq integer primary key autoincrement,
          id text not null,
          id_key integer not null,
          thread text not null,
          actor text not null,
          clock integer not null,
          act text not null,
          namespace text not null,
          record text not null,
          sig text,
          redacted integer not null default 0,
          stored_at integer not null,
          origin text
        )`.execute(trx)
        await sql`insert into spl_records_v2 (seq, id, id_key, thread, actor, clock, act, namespace, record, sig, redacted, stored_at, origin)
          select seq, id, 0, thread, actor, clock, act, namespace, record, sig, redacted, stored_at, origin from spl_records order by seq`.execute(
          trx,
        )
        // In slices of 10,000 rows: a large store is never held in memory at once.
        for (let after = -1; ; ) {
          const ids = await sql<{
            seq: number
            id: string
          }>`select seq, id from spl_records_v2 where seq > ${after} order by seq limit 10000`.execute(trx)
          if (ids.rows.length === 0) break
          for (const r of ids.rows) await sql`update spl_records_v2 set id_key = ${idKeyOf(r.id)} where seq = ${r.seq}`.execute(trx)
          after = ids.rows[ids.rows.length - 1]!.seq
        }
        await sql`drop table spl_records`.execute(trx)
        await sql`alter table spl_records_v2 rename to spl_records`.execute(trx)
        // AUTOINCREMENT never hands out a seq again, also one whose row was deleted: keep the mark.
        const mark = kept.rows[0]?.seq ?? 0
        await sql`update sqlite_sequence set seq = max(seq, ${mark}) where name = 'spl_records'`.execute(trx)
        await sql`create index spl_records_id_key on spl_records (id_key)`.execute(trx)
        await sql`create index spl_records_thread_seq on spl_records (thread, seq)`.execute(trx)
        await sql`create unique index spl_records_actor_thread_clock on spl_records (actor, thread, clock)`.execute(trx)
      })
    },
  },
}

/**
 * The record tables on PostgreSQL, in the shape SQLite reaches after 0002: `seq` is a bigserial
 * (a sequence: values are taken at insert and become visible at commit, see RecordStore's
 * commit-order lock), `id_key` the indexed lookup key.
 */
async function createPostgresTables(db: Kysely<unknown>): Promise<void> {
  await sql`create table if not exists spl_records (
    seq bigserial primary key,
    id text not null,
    id_key bigint not null,
    thread text not null,
    actor text not null,
    clock bigint not null,
    act text not null,
    namespace text not null,
    record text not null,
    sig text,
    redacted bigint not null default 0,
    stored_at bigint not null,
    origin text
  )`.execute(db)
  await sql`create index if not exists spl_records_id_key on spl_records (id_key)`.execute(db)
  await sql`create index if not exists spl_records_thread_seq on spl_records (thread, seq)`.execute(db)
  await sql`create unique index if not exists spl_records_actor_thread_clock on spl_records (actor, thread, clock)`.execute(db)
  await sql`create table if not exists spl_meta (key text primary key, value text not null)`.execute(db)
  await sql`insert into spl_meta (key, value) values ('epoch', ${randomBytes(8).toString('hex')}) on conflict (key) do nothing`.execute(db)
}

const KEY_RE = /^[0-9a-f]{13}/

/**
 * The lookup key of a record id: its first 13 hex digits as a number, -1 for what is not an id.
 * Not unique: rows found by key are compared by id.
 */
export function idKeyOf(id: string): number {
  return KEY_RE.test(id) ? Number.parseInt(id.slice(0, 13), 16) : -1
}

const provider: MigrationProvider = { getMigrations: async () => migrations }

/** Thrown when a package's migrations fail; carries kysely's error as the cause. */
export class MigrationError extends Error {
  override readonly name = 'MigrationError'
}

/** Runs a package's migrations with its own bookkeeping tables, so packages migrate independently. */
export async function migrateWith(db: Kysely<unknown>, name: string, provider: MigrationProvider): Promise<void> {
  const migrator = new Migrator({
    db,
    provider,
    migrationTableName: `spl_${name}_migrations`,
    migrationLockTableName: `spl_${name}_migrations_lock`,
  })
  const { error, results } = await migrator.migrateToLatest()
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown'
    throw new MigrationError(`migration ${name}/${failed} failed: ${String(error)}`, { cause: error })
  }
}

/** Brings the record tables up to date. */
export function migrateRecords(db: Kysely<unknown>): Promise<void> {
  return migrateWith(db, 'records', provider)
}
