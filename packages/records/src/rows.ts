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
