import Database from 'better-sqlite3'
import { Kysely, type SqliteDatabase, SqliteDialect } from 'kysely'

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
  // 4 MiB of page cache: the hot pages of a catch-up (index leaves, the table's tail) fit in it
  // since ids are found through an integer key; every MiB here is resident memory.
  sqlite.pragma('cache_size = -4000')
  const db = new Kysely<unknown>({ dialect: new SqliteDialect({ database: reusingStatements(sqlite) }) })
  return { sqlite, db }
}

/**
 * The database as kysely sees it, with prepared statements kept by their SQL (the 64 most recent):
 * kysely prepares every query anew, and a page of 1000 records runs the same few statements.
 * A statement still iterating (a streamed select) is never handed out twice.
 */
export function reusingStatements(sqlite: Database.Database, max = 64): SqliteDatabase {
  const cache = new Map<string, Database.Statement>()
  return {
    close: () => sqlite.close(),
    prepare(sql) {
      let stmt = cache.get(sql)
      if (stmt !== undefined && !stmt.busy) {
        cache.delete(sql) // re-inserted below: the map's order is the recency
      } else {
        stmt = sqlite.prepare(sql)
        if (cache.size >= max) cache.delete(cache.keys().next().value as string)
      }
      cache.set(sql, stmt)
      return stmt
    },
  }
}
