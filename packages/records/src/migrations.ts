import { type Kysely, type Migration, type MigrationProvider, Migrator, sql } from 'kysely'

// Migrations are TS modules in a static map: no file system scanning at run time.
const migrations: Record<string, Migration> = {
  '0001_records': {
    async up(db: Kysely<unknown>) {
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
