import type { Candidate } from './ingest.js'
import { idKeyOf } from './migrations.js'
import type { Envelope, RecordFields } from './schema.js'
import type { StoredRow } from './tables.js'

/** The envelope of a stored row, as JSON text. */
export function rowToEnvelopeJson(row: Pick<StoredRow, 'id' | 'record' | 'sig' | 'stored_at' | 'redacted'>): string {
  // The record column already holds JSON: splice it instead of parsing and re-serializing.
  const sig = row.sig === null ? '' : `,"sig":"${row.sig}"`
  const redacted = row.redacted ? ',"redacted":true' : ''
  return `{"id":"${row.id}","record":${row.record}${sig},"stored_at":${row.stored_at}${redacted}}`
}

/** The envelope of a stored row. */
export function rowToEnvelope(row: Pick<StoredRow, 'id' | 'record' | 'sig' | 'stored_at' | 'redacted'>): Envelope {
  const env: Envelope = {
    id: row.id,
    record: JSON.parse(row.record) as RecordFields,
    stored_at: row.stored_at,
  }
  if (row.sig !== null) env.sig = row.sig
  if (row.redacted) env.redacted = true
  return env
}

/**
 * The record as stored: its canonical form (already computed for the id and the signature, so not
 * serialized a second time), with `judged_by`, the one field outside it, added at the end.
 */
function recordText(c: Candidate): string {
  const judged = c.record.judged_by
  return judged === undefined ? c.canonical : `${c.canonical.slice(0, -1)},"judged_by":${JSON.stringify(judged)}}`
}

/** How a batch of candidates is stored: who sent them, and the time they are stored at. */
export interface StoreOptions {
  origin: string | null
  now: number
  /** Keep each candidate's own `stored_at` when it has one (a restore from a bundle), instead of `now`. */
  keepStoredAt?: boolean
}

/** The row a candidate is stored as (seq 0 until inserted). */
export function storedRowOf(c: Candidate, options: StoreOptions): StoredRow {
  return {
    seq: 0,
    id: c.id,
    id_key: idKeyOf(c.id),
    thread: c.record.thread,
    actor: c.record.actor,
    clock: c.record.clock,
    act: c.record.act,
    namespace: c.namespace,
    record: recordText(c),
    sig: c.sig,
    redacted: c.redacted ? 1 : 0,
    stored_at: options.keepStoredAt === true && c.storedAt !== null ? c.storedAt : options.now,
    origin: options.origin,
  }
}
