import { existsSync } from 'node:fs'
import { SplError } from '@spl/identity'
import { homePaths, NotInitializedError } from '../config.js'
import { openStorage, redactUrl } from '../db.js'
import { acquireLock } from '../lifecycle.js'
import { loadConfig } from '../load.js'
import { type CopyProgress, copyRecords, copyWhole, RECORDS_TABLE, recopyRecords } from './copy.js'
import { autoincrementMark, countRows, openSource, type SourceTable, sourceEpoch, sourceMigrations, sourceTables } from './source.js'
import { advanceSequences, checkSchema, countTarget, migrateTarget, targetCollation, targetEpoch } from './target.js'
import { type TableCheck, verifyRecords, verifyWhole } from './verify.js'

export type { CopyProgress } from './copy.js'
export type { TableCheck } from './verify.js'

/** What `spl storage migrate` reports (its `--json`). */
export interface StorageMigrateReport {
  object: 'storage_migration'
  home: string
  source: string
  /** The target URL without its password. */
  target: string
  /** The store's epoch, the same on both sides afterwards: peers' cursors stay valid. */
  epoch: string | null
  /** Per table: rows in the source, rows written by this run, rows in the target, verified. */
  tables: (TableCheck & { copied: number })[]
  /**
   * Records: in the source, written by this run, the seq this run resumed above, and the seq
   * ranges found different and copied again.
   */
  records: { total: number; copied: number; resumed_after_seq: number; recopied: { from_seq: number; to_seq: number }[] }
  verified: boolean
  /** The target's collation; anything but C orders text otherwise than SQLite does (docs/postgres.md). */
  collation: string
  /** Whether the home's config already names this database in `[storage] url`. */
  config_points_here: boolean
  elapsed_ms: number
}

export interface StorageMigrateOptions {
  /** The postgres:// URL of the target database. */
  to: string
  onProgress?: CopyProgress
}

/**
 * Copies the home's SQLite store (spl.db) into the PostgreSQL database at `to` (docs/postgres.md):
 * every package's tables are migrated on the target first, then every table of the source is
 * copied (records keep their seq and the store its epoch, so pairs' and peers' cursors stay
 * valid), the sequences are moved past the copied values, and every table is verified by counts
 * and content (records by their ids at their seqs). Safe to run again after it stopped anywhere:
 * records resume above the highest seq already copied, the other tables are copied whole again.
 * Holds the home's lock: the daemon must be stopped, and cannot start meanwhile.
 */
export async function migrateStorage(home: string, options: StorageMigrateOptions): Promise<StorageMigrateReport> {
  const t0 = performance.now()
  // An empty URL would make openStorage open the home's own spl.db: the source, as the target.
  if (!/^postgres(ql)?:\/\/./.test(options.to)) {
    throw new SplError('USAGE', `the target '${redactUrl(options.to)}' is not a postgres:// URL.`, {
      fix: 'give it as postgres://user:password@host:5432/database',
    })
  }
  const paths = homePaths(home)
  if (!existsSync(paths.config)) throw new NotInitializedError(home)
  const cfg = loadConfig(home)
  const progress = options.onProgress ?? (() => {})
  const release = acquireLock(paths.runDir, home)
  try {
    const sqlite = openSource(paths.db)
    try {
      const database = await openStorage(options.to, paths.db).catch((err: unknown) => {
        throw withMigrateFix(err)
      })
      try {
        const db = database.db
        const tables = sourceTables(sqlite)
        await migrateTarget(db)
        const columns = await checkSchema(db, tables, sourceMigrations(sqlite))
        const epoch = sourceEpoch(sqlite, tables) ?? null
        await refuseOtherInstance(db, tables, epoch, options.to)

        // Sequences first too: a row written by anyone meanwhile could not take a copied seq.
        for (const t of tables) await advanceSequences(db, t.name, autoincrementMark(sqlite, t.name))
        const jobs = tables.map((t) => ({
          sqlite,
          db,
          table: t,
          total: countRows(sqlite, t.name),
          progress,
          types: t.columns.map((c) => columns.get(t.name)!.get(c)!),
        }))
        const copied = new Map<string, number>()
        let records: StorageMigrateReport['records'] = { total: 0, copied: 0, resumed_after_seq: 0, recopied: [] }
        // spl_meta first: once anything else is there, the target carries this store's epoch.
        for (const job of ordered(jobs)) {
          if (job.table.name === RECORDS_TABLE) {
            const r = await copyRecords(job)
            records = { total: job.total, copied: r.copied, resumed_after_seq: r.resumedAfter ?? 0, recopied: [] }
            copied.set(job.table.name, r.copied)
          } else copied.set(job.table.name, (await copyWhole(job)).copied)
        }
        for (const t of tables) await advanceSequences(db, t.name, autoincrementMark(sqlite, t.name))

        const checks: StorageMigrateReport['tables'] = []
        for (const job of jobs) {
          const t = job.table
          if (t.name !== RECORDS_TABLE) {
            checks.push({ ...(await verifyWhole(sqlite, db, t)), copied: copied.get(t.name) ?? 0 })
            continue
          }
          let check = await verifyRecords(sqlite, db, t)
          // A chunk that differs is copied again once (the home changed since an interrupted run).
          for (const m of check.mismatched ?? []) {
            records.copied += await recopyRecords(job, m.from_seq, m.to_seq)
            records.recopied.push(m)
          }
          if (records.recopied.length > 0) check = await verifyRecords(sqlite, db, t)
          checks.push({ ...check, copied: records.copied })
        }
        return {
          object: 'storage_migration',
          home,
          source: paths.db,
          target: redactUrl(options.to),
          epoch,
          tables: checks,
          records,
          verified: checks.every((c) => c.verified),
          collation: await targetCollation(db),
          config_points_here: cfg.storage.url === options.to,
          elapsed_ms: Math.round(performance.now() - t0),
        }
      } finally {
        await database.db.destroy()
      }
    } finally {
      sqlite.close()
    }
  } finally {
    release()
  }
}

/** spl_meta, then the records, then the rest by name. */
function ordered<T extends { table: SourceTable }>(jobs: readonly T[]): T[] {
  const rank = (n: string) => (n === 'spl_meta' ? 0 : n === RECORDS_TABLE ? 1 : 2)
  return [...jobs].sort((a, b) => rank(a.table.name) - rank(b.table.name) || a.table.name.localeCompare(b.table.name))
}

/**
 * A target whose store has another epoch and holds rows already is another instance's (or a
 * store that ran since): copying into it would mix two stores under one epoch.
 */
async function refuseOtherInstance(
  db: Parameters<typeof targetEpoch>[0],
  tables: readonly SourceTable[],
  epoch: string | null,
  url: string,
): Promise<void> {
  const there = await targetEpoch(db)
  if (epoch === null || there === undefined || there === epoch) return
  for (const t of tables) {
    if (t.name === 'spl_meta') continue
    if ((await countTarget(db, t.name)) === 0) continue
    throw new SplError(
      'MIGRATE_TARGET_IN_USE',
      `${redactUrl(url)} already holds another store (epoch ${there}, rows in ${t.name}); this home's store is epoch ${epoch}.`,
      {
        status: 409,
        fix: 'migrate into an empty database (createdb --template template0 --lc-collate C --lc-ctype C <name>), or drop this one if it holds nothing you need',
      },
    )
  }
}

/** The fixes of the start's connection errors, told for `--to` instead of `[storage] url`. */
const FIXES: Record<string, string> = {
  STORE_AUTH_FAILED: 'check the user and password in --to (or give the password as PGPASSWORD)',
  STORE_NOT_FOUND: 'create it: createdb --template template0 --encoding UTF8 --lc-collate C --lc-ctype C <name>',
  STORE_UNAVAILABLE: 'start PostgreSQL (or fix host and port in --to), then run spl storage migrate again',
}

function withMigrateFix(err: unknown): unknown {
  if (!(err instanceof SplError) || FIXES[err.code] === undefined) return err
  return new SplError(err.code, err.message, { status: err.status, fix: FIXES[err.code]!, cause: err })
}
