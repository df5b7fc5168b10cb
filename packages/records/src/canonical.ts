import crypto from 'node:crypto'
import canonicalize from 'canonicalize'
import type { RecordFields } from './schema.js'

/** A value that cannot be put in canonical form (non-finite number, lone surrogate, cycle…). */
export class CanonicalFormError extends Error {
  override readonly name = 'CanonicalFormError'
}

/** RFC 8785 (JCS) form of any JSON value. Throws CanonicalFormError for what JSON cannot carry. */
export function canonicalJson(value: unknown): string {
  let out: string | undefined
  try {
    out = canonicalize(value)
  } catch (err) {
    throw new CanonicalFormError(err instanceof Error ? err.message : String(err))
  }
  if (out === undefined) throw new CanonicalFormError('the value has no JSON form')
  return out
}

/** The canonical string of a record: JCS of exactly the seven hashed fields (SPEC 2.2). */
export function canonicalRecord(record: RecordFields): string {
  return canonicalJson({
    parents: record.parents,
    thread: record.thread,
    actor: record.actor,
    act: record.act,
    body: record.body,
    clock: record.clock,
    data_type: record.data_type,
  })
}

/** Lowercase hex SHA-256 of the UTF-8 bytes of `canonical`. */
export function sha256Hex(canonical: string): string {
  return crypto.createHash('sha256').update(canonical, 'utf8').digest('hex')
}

/** The record's id: SHA-256 of its canonical form. */
export function recordIdOf(record: RecordFields): string {
  return sha256Hex(canonicalRecord(record))
}
