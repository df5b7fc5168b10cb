import { createRequire } from 'node:module'
import { SplError } from '@spl/identity'
import { PostgresSchemaPlugin } from '@spl/records'
import Database from 'better-sqlite3'
import { Kysely, PostgresDialect, type PostgresPool, type PostgresPoolClient, type SqliteDatabase, SqliteDialect } from 'kysely'
import type pg from 'pg'

/** An open database: SQLite (the raw handle for pragmas and closing) or a PostgreSQL pool, and the kysely on top. */
export type OpenDatabase =
  | { kind: 'sqlite'; sqlite: Database.Database; db: Kysely<unknown>; close(): void }
  | { kind: 'postgres'; pool: pg.Pool; url: string; db: Kysely<unknown>; close(): void }

/**
 * Opens `file` with WAL and NORMAL sync: a committed transaction survives a crash of the
 * process (what kill -9 tests); only a power loss can drop the last commits.
 */
export function openDatabase(file: string): OpenDatabase & { kind: 'sqlite' } {
  const sqlite = new Database(file)
  sqlite.pragma('journal_mode = WAL')
  sqlite.pragma('synchronous = NORMAL')
  sqlite.pragma('busy_timeout = 5000')
  // 2 MiB of page cache: the hot pages of a catch-up (index leaves, the table's tail) fit in it
  // since ids are found through an integer key, and the system's page cache holds the rest; every
  // MiB here is resident memory (4 MiB measured no faster, docs/performance.md).
  sqlite.pragma('cache_size = -2000')
  const db = new Kysely<unknown>({ dialect: new SqliteDialect({ database: reusingStatements(sqlite) }) })
  return { kind: 'sqlite', sqlite, db, close: () => sqlite.close() }
}

/**
 * The database of `[storage] url` (PostgreSQL) or the home's spl.db. A PostgreSQL that cannot
 * be reached or refuses the login is one SplError with a code and a fix, not a stack trace.
 */
export async function openStorage(storageUrl: string, sqliteFile: string): Promise<OpenDatabase> {
  if (storageUrl === '') return openDatabase(sqliteFile)
  if (!/^postgres(ql)?:\/\/./.test(storageUrl)) {
    throw new SplError('CONFIG_INVALID', `the database URL '${redactUrl(storageUrl)}' is not a postgres:// URL.`, {
      status: 500,
      fix: "write it as postgres://user:password@host:5432/database, or leave [storage] url empty for the home's spl.db",
    })
  }
  const database = openPostgres(storageUrl)
  try {
    await database.pool.query('select 1')
  } catch (err) {
    await database.pool.end().catch(() => {})
    throw storeErrorOf(err, storageUrl)
  }
  return database
}

/**
 * The `pg` module, loaded on first use: a daemon on SQLite never needs it, and loading it costs
 * ~4 MB of heap and more of resident memory (docs/performance.md, session of 2026-12-02 afternoon).
 */
export function loadPg(): typeof pg {
  pgModule ??= createRequire(import.meta.url)('pg') as typeof pg
  return pgModule
}
let pgModule: typeof pg | undefined

/** int8 (bigint, counts) read as JS numbers: every integer spl stores stays below 2^53. */
const pgTypes = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === 20 ? (v: string) => Number(v) : loadPg().types.getTypeParser(oid, format ?? 'text')) as typeof pg.types.getTypeParser,
}

/**
 * A PostgreSQL pool of one connection: writes of one replica are serialised as SQLite's are
 * (every read-modify-write of the packages was written for one writer at a time), and the
 * replicas' writes meet in PostgreSQL's locks (docs/decisions.md 131).
 */
export function openPostgres(url: string, max = 1): OpenDatabase & { kind: 'postgres' } {
  const pool = new (loadPg().Pool)({ connectionString: url, max, connectionTimeoutMillis: 5000, types: pgTypes })
  // An idle connection dropped by the server (a restart) is an 'error' event: without a listener
  // it would end the process; the next query opens a new one.
  pool.on('error', () => {})
  const db = new Kysely<unknown>({
    dialect: new PostgresDialect({ pool: guardedPool(pool, redactUrl(url)) }),
    plugins: [new PostgresSchemaPlugin()],
  })
  return { kind: 'postgres', pool, url, db, close: () => void pool.end().catch(() => {}) }
}

/**
 * The pool as kysely uses it, with a server that is gone (stopped, restarting, unreachable)
 * thrown as STORE_UNAVAILABLE (503, with a fix) instead of pg's socket errors: HTTP answers
 * carry it, pairs show it, and the next query after the server is back opens a new connection.
 */
function guardedPool(pool: pg.Pool, where: string): PostgresPool {
  const guard = (err: unknown): unknown => (isStoreUnavailable(err) ? storeUnavailable(where, err) : err)
  return {
    async connect(): Promise<PostgresPoolClient> {
      let client: pg.PoolClient
      try {
        client = await pool.connect()
      } catch (err) {
        throw guard(err)
      }
      return {
        query: ((text: unknown, params?: unknown) => {
          if (typeof text !== 'string') return client.query(text as never)
          return client.query(text, params as unknown[]).catch((err: unknown) => {
            throw guard(err)
          })
        }) as unknown as PostgresPoolClient['query'],
        // A connection that failed is dropped from the pool by pg itself (it is no longer queryable).
        release: (destroy?: boolean) => client.release(destroy),
      }
    },
    end: () => pool.end(),
  }
}

/** The URL without its password, for messages. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z]+:\/\/[^:/@]*:)[^@]*@/i, '$1***@')
}

const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', '57P03'])

/** Whether `err` says the PostgreSQL server is gone (stopped, restarting, unreachable), not that a query is wrong. */
export function isStoreUnavailable(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string' && (UNREACHABLE.has(code) || code === '57P01' || code === '57P02' || code === '08006' || code === '08001'))
      return true
    if (/Connection terminated|connection timeout|Client has encountered a connection error|Connection ended/i.test(e.message)) return true
    if (e instanceof AggregateError && e.errors.some((x) => isStoreUnavailable(x))) return true
  }
  return false
}

/** The house error for a failed connection to `url`. */
export function storeErrorOf(err: unknown, url: string): SplError {
  const where = redactUrl(url)
  const code = (err as { code?: unknown }).code
  if (code === '28P01' || code === '28000') {
    return new SplError('STORE_AUTH_FAILED', `PostgreSQL refused the login for ${where}: ${(err as Error).message}.`, {
      status: 503,
      fix: 'check the user and password in [storage] url (or --database)',
    })
  }
  if (code === '3D000') {
    return new SplError('STORE_NOT_FOUND', `${where}: ${(err as Error).message}.`, {
      status: 503,
      fix: 'create it (createdb, or CREATE DATABASE …) or fix the name in [storage] url',
    })
  }
  if (err instanceof TypeError || code === 'ERR_INVALID_URL') {
    return new SplError('CONFIG_INVALID', `[storage] url is not a PostgreSQL URL: ${(err as Error).message}.`, {
      status: 500,
      fix: 'write it as postgres://user:password@host:5432/database',
    })
  }
  if (isStoreUnavailable(err)) {
    return new SplError('STORE_UNAVAILABLE', `the database (PostgreSQL at ${where}) cannot be reached: ${(err as Error).message}.`, {
      status: 503,
      fix: 'start PostgreSQL (or fix host and port in [storage] url), then spl serve again',
    })
  }
  return new SplError('STORE_UNAVAILABLE', `PostgreSQL at ${where} failed: ${(err as Error)?.message ?? String(err)}.`, {
    status: 503,
    fix: 'check [storage] url and the PostgreSQL server log',
  })
}

/** STORE_UNAVAILABLE: the database cannot be reached (503). */
export function storeUnavailable(where: string, cause?: unknown): SplError {
  return new SplError('STORE_UNAVAILABLE', `the database (PostgreSQL at ${where}) cannot be reached.`, {
    status: 503,
    fix: 'start PostgreSQL or check [storage] url; spl resumes by itself once it answers',
    ...(cause === undefined ? {} : { cause }),
  })
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
