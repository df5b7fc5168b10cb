import { migrateWith } from '@spl/records'
import type { Kysely, Migration } from 'kysely'

// In-code migrations with the directory's own bookkeeping tables (spl_directory_migrations).
const migrations: Record<string, Migration> = {
  '0001_directory': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('spl_directory_entries')
        .ifNotExists()
        .addColumn('did', 'text', (c) => c.primaryKey())
        .addColumn('url', 'text', (c) => c.notNull())
        .addColumn('handle', 'text')
        .addColumn('namespaces', 'text', (c) => c.notNull())
        .addColumn('iat', 'integer', (c) => c.notNull())
        .addColumn('exp', 'integer', (c) => c.notNull())
        .addColumn('jwt', 'text', (c) => c.notNull())
        .addColumn('stored_at', 'integer', (c) => c.notNull())
        .execute()
      // One DID per handle, whatever the code above it does (NULLs do not collide).
      await db.schema
        .createIndex('spl_directory_entries_handle')
        .ifNotExists()
        .unique()
        .on('spl_directory_entries')
        .column('handle')
        .execute()
      await db.schema.createIndex('spl_directory_entries_exp').ifNotExists().on('spl_directory_entries').column('exp').execute()
      await db.schema
        .createTable('spl_directory_namespaces')
        .ifNotExists()
        .addColumn('namespace', 'text', (c) => c.notNull())
        .addColumn('did', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('spl_directory_namespaces_pk', ['namespace', 'did'])
        .execute()
      await db.schema.createIndex('spl_directory_namespaces_did').ifNotExists().on('spl_directory_namespaces').column('did').execute()
      await db.schema
        .createTable('spl_directory_tombstones')
        .ifNotExists()
        .addColumn('did', 'text', (c) => c.primaryKey())
        .addColumn('before_iat', 'integer', (c) => c.notNull())
        .addColumn('until_s', 'integer', (c) => c.notNull())
        .execute()
    },
  },
}

/** Brings the directory tables up to date. */
export function migrateDirectory(db: Kysely<unknown>): Promise<void> {
  return migrateWith(db, 'directory', { getMigrations: async () => migrations })
}
