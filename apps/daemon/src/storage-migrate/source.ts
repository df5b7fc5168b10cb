import { existsSync } from 'node:fs'
import { SplError } from '@spl/identity'
import Database from 'better-sqlite3'

/** A table of the home's spl.db that the migration copies: its columns in declared order. */
export interface SourceTable {
  name: string
  columns: string[]
}

/** Bookkeeping of kysely's Migrator and SQLite's own tables: never copied. */
const SKIPPED = /^sqlite_|_migrations$|_migrations_lock$/

/** Opens the home's spl.db read-only (the migration never writes the source). */
export function openSource(file: string): Database.Database {
  if (!existsSync(file)) {
    throw new SplError('SOURCE_NOT_FOUND', `${file} does not exist: this home holds no SQLite store to migrate.`, {
      status: 400,
      fix: 'run spl storage migrate on the home whose spl.db you want to move (SYNCROPEL_HOME or --home)',
    })
  }
  const sqlite = new Database(file, { readonly: true, fileMustExist: true })
  sqlite.pragma('busy_timeout = 5000')
  return sqlite
}

/** Every table of the packages (sqlite_master less the migrator's and SQLite's own), by name. */
export function sourceTables(sqlite: Database.Database): SourceTable[] {
  const names = sqlite.prepare("select name from sqlite_master where type = 'table' order by name").pluck().all() as string[]
  return names
    .filter((name) => !SKIPPED.test(name))
    .map((name) => ({
      name,
      columns: (sqlite.pragma(`table_info(${quoteId(name)})`) as { name: string }[]).map((c) => c.name),
    }))
}

/** The applied migrations of each package (`spl_<name>_migrations` → migration names). */
export function sourceMigrations(sqlite: Database.Database): Map<string, string[]> {
  const tables = sqlite
    .prepare("select name from sqlite_master where type = 'table' and name like 'spl\\_%\\_migrations' escape '\\'")
    .pluck()
    .all() as string[]
  const out = new Map<string, string[]>()
  for (const t of tables)
    out.set(
      t,
      sqlite
        .prepare(`select name from ${quoteId(t)} order by name`)
        .pluck()
        .all() as string[],
    )
  return out
}

/** The highest value AUTOINCREMENT ever handed out for `table` (0 when none): kept above, also for deleted rows. */
export function autoincrementMark(sqlite: Database.Database, table: string): number {
  const has = sqlite.prepare("select 1 from sqlite_master where type = 'table' and name = 'sqlite_sequence'").get()
  if (!has) return 0
  const v = sqlite.prepare('select seq from sqlite_sequence where name = ?').pluck().get(table)
  return typeof v === 'number' ? v : 0
}

/** Rows of `table`. */
export function countRows(sqlite: Database.Database, table: string): number {
  return sqlite
    .prepare(`select count(*) from ${quoteId(table)}`)
    .pluck()
    .get() as number
}

/** The store's epoch (spl_meta), or undefined for a store that never had one. */
export function sourceEpoch(sqlite: Database.Database, tables: readonly SourceTable[]): string | undefined {
  if (!tables.some((t) => t.name === 'spl_meta')) return undefined
  const v = sqlite.prepare("select value from spl_meta where key = 'epoch'").pluck().get()
  return typeof v === 'string' ? v : undefined
}

/**
 * The rows of `table` as arrays in column order, in pages of `size`: all of them, or for the
 * record table those with `after < seq <= upTo` in seq order. The source is not written
 * meanwhile (the home's lock is held), so one statement streams it.
 */
export function* pages(
  sqlite: Database.Database,
  table: SourceTable,
  size: number,
  seqs?: { after: number; upTo?: number },
): Generator<unknown[][], void, undefined> {
  const cols = table.columns.map(quoteId).join(', ')
  const stmt =
    seqs === undefined
      ? sqlite.prepare(`select ${cols} from ${quoteId(table.name)}`)
      : sqlite.prepare(`select ${cols} from ${quoteId(table.name)} where seq > ? and seq <= ? order by seq`)
  const rows = seqs === undefined ? stmt.raw(true).iterate() : stmt.raw(true).iterate(seqs.after, seqs.upTo ?? Number.MAX_SAFE_INTEGER)
  let page: unknown[][] = []
  for (const row of rows as Iterable<unknown[]>) {
    page.push(row)
    if (page.length >= size) {
      yield page
      page = []
    }
  }
  if (page.length > 0) yield page
}

/** An SQL identifier, quoted (both dialects use double quotes). */
export function quoteId(name: string): string {
  return `"${name.replace(/"/g, '""')}"`
}
