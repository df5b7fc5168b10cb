import { SEQ_LOCK_KEY } from '@spl/records'
import type Database from 'better-sqlite3'
import type { Kysely } from 'kysely'
import { pages, quoteId, type SourceTable } from './source.js'
import { countTarget, query, targetMaxSeq } from './target.js'

/** The table copied by appending (rows are only ever inserted, at a higher seq): a rerun resumes above its highest seq. */
export const RECORDS_TABLE = 'spl_records'

/** Rows per INSERT; fewer for wide tables (PostgreSQL takes at most 65,535 parameters). */
export const BATCH_ROWS = 2_000

/** Told as rows reach the target. */
export type CopyProgress = (table: string, done: number, total: number) => void

/** What copying one table did. */
export interface TableCopy {
  /** Rows written by this run. */
  copied: number
  /** For the record table: the seq this run started above (0: from the beginning). */
  resumedAfter?: number
}

/** One table to copy: from the source, to the target, with the source's row count for progress. */
export interface CopyJob {
  sqlite: Database.Database
  db: Kysely<unknown>
  table: SourceTable
  total: number
  progress: CopyProgress
}

function insertText(table: SourceTable, rows: number, conflict: string): string {
  const n = table.columns.length
  const values: string[] = []
  for (let r = 0; r < rows; r++) {
    const ps: string[] = []
    for (let c = 1; c <= n; c++) ps.push(`$${r * n + c}`)
    values.push(`(${ps.join(', ')})`)
  }
  return `insert into ${quoteId(table.name)} (${table.columns.map(quoteId).join(', ')}) values ${values.join(', ')} ${conflict}`
}

function batchSize(table: SourceTable): number {
  return Math.max(1, Math.min(BATCH_ROWS, Math.floor(60_000 / table.columns.length)))
}

/**
 * Copies spl_records in seq order, each batch in its own transaction (a kill loses at most the
 * batch under way), starting above the highest seq already on the target. Rows keep their seq,
 * so every cursor a peer holds still points at the same records. Each batch takes the store's
 * commit-order lock, as every writer of spl_records on PostgreSQL does (decision 130).
 */
export async function copyRecords({ sqlite, db, table, total, progress }: CopyJob): Promise<TableCopy> {
  const after = await targetMaxSeq(db)
  let done = await countTarget(db, table.name)
  let copied = 0
  progress(table.name, done, total)
  for (const page of pages(sqlite, table, batchSize(table), after)) {
    const text = insertText(table, page.length, 'on conflict do nothing')
    await db.transaction().execute(async (trx) => {
      await query(trx, 'select pg_advisory_xact_lock($1)', [SEQ_LOCK_KEY])
      await query(trx, text, page.flat())
    })
    copied += page.length
    done += page.length
    progress(table.name, done, total)
  }
  return { copied, resumedAfter: after }
}

/**
 * Makes `table` on the target equal to the source in one transaction: its rows are deleted and
 * the source's inserted. Every table but the records is small next to them (pairs, links,
 * registrations, used proof ids…) and its rows change in place (a pair's cursor), so a rerun
 * copies it again whole instead of trusting what an interrupted run left there.
 * spl_meta carries the store's epoch: the target takes the source's.
 */
export async function copyWhole({ sqlite, db, table, total, progress }: CopyJob): Promise<TableCopy> {
  let copied = 0
  progress(table.name, 0, total)
  await db.transaction().execute(async (trx) => {
    await query(trx, `delete from ${quoteId(table.name)}`)
    for (const page of pages(sqlite, table, batchSize(table))) {
      await query(trx, insertText(table, page.length, ''), page.flat())
      copied += page.length
      progress(table.name, copied, total)
    }
  })
  return { copied }
}
