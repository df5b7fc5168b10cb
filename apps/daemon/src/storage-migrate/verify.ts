import { createHash } from 'node:crypto'
import type Database from 'better-sqlite3'
import type { Kysely } from 'kysely'
import { countRows, pages, quoteId, type SourceTable } from './source.js'
import { countTarget, query } from './target.js'

/** Records are compared in chunks of this many rows (one hash per chunk from each side). */
export const ID_CHUNK = 10_000

/** The verification of one table. */
export interface TableCheck {
  table: string
  source: number
  target: number
  /** Counts equal and the same rows (records: chunk by chunk in seq order, so the same ids at the same seqs). */
  verified: boolean
  /** For the record table: seq ranges whose rows differ. */
  mismatched?: { from_seq: number; to_seq: number }[]
}

/** How a value is written for hashing on both sides: text as is, integers in decimal, null as \N. */
const NULL_TEXT = '\\N'
const FIELD_SEP = '\x1f'

/**
 * spl_records: equal counts, and in each chunk of ID_CHUNK rows (by the source's seq) the md5 of
 * its rows equal on both sides: every column, so the ids are at the same seqs (cursors stay
 * valid) and the records, signatures and origins arrived intact. The target hashes its chunk
 * itself, so only 32 bytes per chunk cross the wire.
 */
export async function verifyRecords(sqlite: Database.Database, db: Kysely<unknown>, table: SourceTable): Promise<TableCheck> {
  const source = countRows(sqlite, table.name)
  const target = await countTarget(db, table.name)
  const mismatched: { from_seq: number; to_seq: number }[] = []
  const seqAt = table.columns.indexOf('seq')
  const line = table.columns.map((c) => `coalesce(${quoteId(c)}::text, '${NULL_TEXT}')`).join(", E'\\x1f', ")
  const text = `select count(*)::bigint as n, md5(string_agg(concat(${line}), E'\\n' order by seq)) as h
                  from ${quoteId(table.name)} where seq between $1 and $2`
  for (const chunk of pages(sqlite, table, ID_CHUNK, { after: -1 })) {
    const from = chunk[0]![seqAt] as number
    const to = chunk[chunk.length - 1]![seqAt] as number
    const mine = createHash('md5')
      .update(chunk.map((r) => r.map((v) => (v === null ? NULL_TEXT : String(v))).join(FIELD_SEP)).join('\n'))
      .digest('hex')
    const rows = await query<{ n: number; h: string | null }>(db, text, [from, to])
    if (Number(rows[0]?.n) !== chunk.length || rows[0]?.h !== mine) mismatched.push({ from_seq: from, to_seq: to })
  }
  return { table: table.name, source, target, verified: source === target && mismatched.length === 0, mismatched }
}

/** The digest of a set of rows: each row's JSON hashed, the hashes sorted (no order needed on either side). */
function setDigest(rows: Iterable<readonly unknown[]>): string {
  const hashes: string[] = []
  for (const r of rows) hashes.push(createHash('sha256').update(JSON.stringify(r)).digest('hex'))
  hashes.sort()
  return createHash('sha256').update(hashes.join('\n')).digest('hex')
}

/**
 * Any other table: equal counts and equal rows, every column compared (a pair's cursor, a
 * grant's state). Integers arrive as numbers from both drivers, text as strings.
 */
export async function verifyWhole(sqlite: Database.Database, db: Kysely<unknown>, table: SourceTable): Promise<TableCheck> {
  const src: unknown[][] = []
  for (const page of pages(sqlite, table, ID_CHUNK)) src.push(...page)
  const cols = table.columns.map(quoteId).join(', ')
  const res = await query(db, `select ${cols} from ${quoteId(table.name)}`)
  const tgt = res.map((row) => table.columns.map((c) => row[c] ?? null))
  const same = src.length === tgt.length && setDigest(src) === setDigest(tgt)
  return { table: table.name, source: src.length, target: tgt.length, verified: same }
}
