import { SEQ_LOCK_KEY } from '@spl/records'
import type Database from 'better-sqlite3'
import type { Kysely } from 'kysely'
import { pages, quoteId, type SourceTable } from './source.js'
import { countTarget, query, targetMaxSeq } from './target.js'

/** The table copied by appending (rows are only ever inserted, at a higher seq): a rerun resumes above its highest seq. */
export const RECORDS_TABLE = 'spl_records'

/** Rows per INSERT (and per transaction of the record table). */
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
  /** The target's type of each column (udt names: int8, text…), for the casts of the arrays. */
  types: readonly string[]
}

/**
 * One INSERT of a page as one array per column (`unnest($1::int8[], $2::text[], …)`): a handful
 * of parameters instead of one per value, which PostgreSQL parses and plans in a fraction of the
 * time of a 26,000-parameter VALUES list.
 */
async function insertPage(db: Kysely<unknown>, job: CopyJob, page: unknown[][], conflict: string): Promise<void> {
  const { table, types } = job
  const arrays = table.columns.map((_, c) => page.map((row) => row[c]))
  const casts = types.map((t, c) => `$${c + 1}::${t}[]`).join(', ')
  const cols = table.columns.map(quoteId).join(', ')
  await query(db, `insert into ${quoteId(table.name)} (${cols}) select * from unnest(${casts}) ${conflict}`, arrays)
}

/**
 * Copies spl_records in seq order, each batch in its own transaction (a kill loses at most the
 * batch under way), starting above the highest seq already on the target. Rows keep their seq,
 * so every cursor a peer holds still points at the same records. Each batch takes the store's
 * commit-order lock, as every writer of spl_records on PostgreSQL does (decision 130).
 */
export async function copyRecords(job: CopyJob): Promise<TableCopy> {
  const { sqlite, db, table, total, progress } = job
  const after = await targetMaxSeq(db)
  let done = await countTarget(db, table.name)
  let copied = 0
  progress(table.name, done, total)
  for (const page of pages(sqlite, table, BATCH_ROWS, { after })) {
    await db.transaction().execute(async (trx) => {
      await query(trx, 'select pg_advisory_xact_lock($1)', [SEQ_LOCK_KEY])
      await insertPage(trx, job, page, 'on conflict do nothing')
    })
    copied += page.length
    done += page.length
    progress(table.name, done, total)
  }
  return { copied, resumedAfter: after }
}

/**
 * Copies the records with `from <= seq <= to` again, replacing what the target holds in that
 * range (a chunk the verification found different: the home changed between an interrupted run
 * and this one, e.g. a stub replaced by its full record at a higher seq).
 */
export async function recopyRecords(job: CopyJob, from: number, to: number): Promise<number> {
  let copied = 0
  await job.db.transaction().execute(async (trx) => {
    await query(trx, 'select pg_advisory_xact_lock($1)', [SEQ_LOCK_KEY])
    await query(trx, `delete from ${quoteId(job.table.name)} where seq between $1 and $2`, [from, to])
    for (const page of pages(job.sqlite, job.table, BATCH_ROWS, { after: from - 1, upTo: to })) {
      await insertPage(trx, job, page, '')
      copied += page.length
    }
  })
  return copied
}

/**
 * Makes `table` on the target equal to the source in one transaction: its rows are deleted and
 * the source's inserted. Every table but the records is small next to them (pairs, links,
 * registrations, used proof ids…) and its rows change in place (a pair's cursor), so a rerun
 * copies it again whole instead of trusting what an interrupted run left there.
 * spl_meta carries the store's epoch: the target takes the source's.
 */
export async function copyWhole(job: CopyJob): Promise<TableCopy> {
  const { sqlite, db, table, total, progress } = job
  let copied = 0
  progress(table.name, 0, total)
  await db.transaction().execute(async (trx) => {
    await query(trx, `delete from ${quoteId(table.name)}`)
    for (const page of pages(sqlite, table, BATCH_ROWS)) {
      await insertPage(trx, job, page, '')
      copied += page.length
      progress(table.name, copied, total)
    }
  })
  return { copied }
}
