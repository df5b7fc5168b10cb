import Database from 'better-sqlite3'
import { Kysely, SqliteDialect } from 'kysely'

/** An open SQLite database: the raw handle (for pragmas and closing) and the kysely on top. */
export interface OpenDatabase {
  sqlite: Database.Database
  db: Kysely<unknown>
}

/**
 * Opens `file` with WAL and NORMAL sync: a committed transaction survives a crash of the
 * process (what kill -9 tests); only a power loss can drop the last commits.
 */
export function openDatabase(file: string): OpenDatabase {
  const sqlite = new Database(file)
  sqlite.pragma('journal_mode = WAL')
  sqlite.pragma('synchronous = NORMAL')
  sqlite.pragma('busy_timeout = 5000')
  sqlite.pragma('cache_size = -8000') // 8 MiB of page cache
  const db = new Kysely<unknown>({ dialect: new SqliteDialect({ database: sqlite }) })
  return { sqlite, db }
}
