import { DirectoryStore } from '@spl/discovery'
import { FederationStore } from '@spl/federation'
import { Keypair, SplError } from '@spl/identity'
import { RecordStore } from '@spl/records'
import { FeedReaders, KyselyReplayStore, KyselySyncStore, Mailboxes, RelayReceiver, RelayRoutes } from '@spl/sync-engine'
import { CompiledQuery, type Kysely } from 'kysely'
import { quoteId, type SourceTable } from './source.js'

/** Runs one raw statement with positional parameters ($1…) on `db` and returns its rows. */
export async function query<R = Record<string, unknown>>(db: Kysely<unknown>, text: string, params: readonly unknown[] = []): Promise<R[]> {
  return (await db.executeQuery<R>(CompiledQuery.raw(text, [...params]))).rows
}

/**
 * Brings every package's tables up to date on the target, the way the daemon's start does: by
 * opening each store (each runs its own migrations). The directory and the relay mailboxes are
 * migrated even when this home does not turn them on, so their rows can be carried too.
 * The stores are only opened: nothing is started, nothing is sent.
 */
export async function migrateTarget(db: Kysely<unknown>): Promise<void> {
  const store = await RecordStore.open(db)
  await KyselySyncStore.open(db, store)
  await KyselyReplayStore.open(db)
  await FederationStore.open(db)
  await DirectoryStore.open(db)
  await new FeedReaders().persistIn(db)
  await RelayRoutes.open(db)
  await RelayReceiver.open(db, {
    keypair: Keypair.generate(),
    deliver: async () => ({ status: 'unsolicited' as const }),
    pollIntervalMs: 60_000,
  })
  await Mailboxes.open(db)
}

/** The columns of every table of the target's schema, with their type (udt name: int8, text…). */
export async function targetColumns(db: Kysely<unknown>): Promise<Map<string, Map<string, string>>> {
  const rows = await query<{ table_name: string; column_name: string; udt_name: string }>(
    db,
    'select table_name, column_name, udt_name from information_schema.columns where table_schema = current_schema()',
  )
  const out = new Map<string, Map<string, string>>()
  for (const r of rows) {
    let cols = out.get(r.table_name)
    if (!cols) out.set(r.table_name, (cols = new Map()))
    cols.set(r.column_name, r.udt_name)
  }
  return out
}

/**
 * Refuses a target that cannot take the source as it is: a table or a column the source has
 * and the target lacks (the source was made by another spl version than this one), or
 * migrations applied on one side only. Returns the target's columns and their types.
 */
export async function checkSchema(
  db: Kysely<unknown>,
  tables: readonly SourceTable[],
  sourceMigrations: ReadonlyMap<string, readonly string[]>,
): Promise<Map<string, Map<string, string>>> {
  const columns = await targetColumns(db)
  for (const t of tables) {
    const cols = columns.get(t.name)
    const missing = cols ? t.columns.filter((c) => !cols.has(c)) : []
    if (!cols || missing.length > 0) {
      const what = cols ? `the column(s) ${missing.join(', ')} of ${t.name}` : `the table ${t.name}`
      throw new SplError('MIGRATE_SCHEMA_MISMATCH', `the target database lacks ${what}, which the home's spl.db has.`, {
        status: 409,
        fix: 'run spl storage migrate with the spl version that last ran this home (spl version), or upgrade spl first',
      })
    }
  }
  for (const [table, names] of sourceMigrations) {
    if (!columns.has(table)) continue // a package this spl does not have: its tables were checked above
    const there = new Set((await query<{ name: string }>(db, `select name from ${quoteId(table)}`)).map((r) => r.name))
    const onlySource = names.filter((n) => !there.has(n))
    const onlyTarget = [...there].filter((n) => !names.includes(n))
    if (onlySource.length > 0) {
      throw new SplError(
        'MIGRATE_SCHEMA_MISMATCH',
        `the home's spl.db has migration(s) ${onlySource.join(', ')} that this spl does not know.`,
        {
          status: 409,
          fix: 'upgrade spl to the version that last ran this home, then migrate again',
        },
      )
    }
    if (onlyTarget.length > 0) {
      throw new SplError(
        'MIGRATE_SOURCE_OUTDATED',
        `the home's spl.db lacks migration(s) ${onlyTarget.join(', ')}: an older spl last ran it.`,
        { status: 409, fix: 'start and stop the daemon once on this home (spl serve --daemon, then spl serve --stop), then migrate again' },
      )
    }
  }
  return columns
}

/** The store's epoch on the target (RecordStore.open made one if the database was empty). */
export async function targetEpoch(db: Kysely<unknown>): Promise<string | undefined> {
  const rows = await query<{ value: string }>(db, "select value from spl_meta where key = 'epoch'")
  return rows[0]?.value
}

/** Rows of `table` on the target. */
export async function countTarget(db: Kysely<unknown>, table: string): Promise<number> {
  const rows = await query<{ n: number }>(db, `select count(*)::bigint as n from ${quoteId(table)}`)
  return Number(rows[0]?.n ?? 0)
}

/** The highest seq of spl_records on the target (0 when empty): a rerun copies only what lies above. */
export async function targetMaxSeq(db: Kysely<unknown>): Promise<number> {
  const rows = await query<{ m: number | null }>(db, 'select max(seq) as m from spl_records')
  return Number(rows[0]?.m ?? 0)
}

/**
 * Moves every sequence of `table` (its bigserial columns) to at least `floor` and past the
 * highest value stored, never backwards: a row inserted after the migration takes a value no
 * row of the source had, as AUTOINCREMENT would have given it.
 */
export async function advanceSequences(db: Kysely<unknown>, table: string, floor: number): Promise<void> {
  const serials = await query<{ column_name: string; seq: string | null }>(
    db,
    `select column_name, pg_get_serial_sequence(quote_ident($1), column_name) as seq
       from information_schema.columns
      where table_schema = current_schema() and table_name = $1 and column_default like 'nextval(%'`,
    [table],
  )
  for (const s of serials) {
    if (s.seq === null) continue
    const rows = await query<{ m: number | null }>(db, `select max(${quoteId(s.column_name)}) as m from ${quoteId(table)}`)
    const target = Math.max(floor, Number(rows[0]?.m ?? 0))
    if (target < 1) continue
    await query(db, 'select setval($1::regclass, greatest($2::bigint, coalesce(pg_sequence_last_value($1::regclass), 0)))', [s.seq, target])
  }
}

/** The database's collation: docs/postgres.md asks for C (text orders by bytes, as in SQLite). */
export async function targetCollation(db: Kysely<unknown>): Promise<string> {
  const rows = await query<{ c: string }>(db, 'select datcollate as c from pg_database where datname = current_database()')
  return rows[0]?.c ?? ''
}
