import crypto from 'node:crypto'
import type { RecordFields } from './schema.js'

/** A value that cannot be put in canonical form (non-finite number, lone surrogate, cycle…). */
export class CanonicalFormError extends Error {
  override readonly name = 'CanonicalFormError'
}

/**
 * A string as RFC 8785 writes it. JSON.stringify escapes exactly what JCS escapes (", \ and the
 * control characters, with the short forms and lowercase \u00xx); JCS refuses lone surrogates,
 * which JSON.stringify would write as escapes.
 */
function quote(s: string): string {
  if (!s.isWellFormed()) throw new CanonicalFormError('a string holds a lone surrogate')
  return JSON.stringify(s)
}

/** True for what JSON.stringify leaves out of an object (and writes as null in an array). */
function skipped(v: unknown): boolean {
  return v === undefined || typeof v === 'function' || typeof v === 'symbol'
}

function write(value: unknown, ancestors: object[]): string {
  switch (typeof value) {
    case 'string':
      return quote(value)
    case 'number':
      // ECMAScript number serialization is the JCS one (-0 is written 0).
      if (!Number.isFinite(value)) throw new CanonicalFormError(`${value} is not a JSON number`)
      return JSON.stringify(value)
    case 'boolean':
      return value ? 'true' : 'false'
    case 'object': {
      if (value === null) return 'null'
      if (ancestors.includes(value)) throw new CanonicalFormError('the value is cyclic')
      const v = value as { toJSON?: () => unknown }
      if (typeof v.toJSON === 'function') {
        ancestors.push(value)
        const out = write(v.toJSON(), ancestors)
        ancestors.pop()
        return out
      }
      ancestors.push(value)
      let out: string
      if (Array.isArray(value)) {
        out = '['
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out += ','
          out += skipped(value[i]) ? 'null' : write(value[i], ancestors)
        }
        out += ']'
      } else {
        const obj = value as Record<string, unknown>
        // Default sort order is by UTF-16 code units, which is what JCS sorts keys by.
        const keys = Object.keys(obj).sort()
        out = '{'
        let first = true
        for (const k of keys) {
          const item = obj[k]
          if (skipped(item)) continue
          if (!first) out += ','
          first = false
          out += `${quote(k)}:${write(item, ancestors)}`
        }
        out += '}'
      }
      ancestors.pop()
      return out
    }
    default:
      throw new CanonicalFormError(`a ${typeof value} has no JSON form`)
  }
}

/** RFC 8785 (JCS) form of any JSON value. Throws CanonicalFormError for what JSON cannot carry. */
export function canonicalJson(value: unknown): string {
  if (skipped(value)) throw new CanonicalFormError('the value has no JSON form')
  try {
    return write(value, [])
  } catch (err) {
    if (err instanceof RangeError) throw new CanonicalFormError('the value is nested too deeply')
    throw err
  }
}

/** The seven hashed fields in JCS order (UTF-16 code units), each with its key already written. */
const HASHED_FIELDS = (['act', 'actor', 'body', 'clock', 'data_type', 'parents', 'thread'] as const).map(
  (k) => [k, `${JSON.stringify(k)}:`] as const,
)

/**
 * The canonical string of a record: JCS of exactly the seven hashed fields (SPEC 2.2). The same
 * string as canonicalJson of an object of those fields, written without building that object or
 * sorting its keys (the order is fixed): this runs for every record a peer sends.
 */
export function canonicalRecord(record: RecordFields): string {
  const ancestors: object[] = []
  let out = '{'
  try {
    for (const [k, key] of HASHED_FIELDS) {
      const v = record[k]
      if (skipped(v)) continue
      out += out.length === 1 ? key : `,${key}`
      out += write(v, ancestors)
    }
  } catch (err) {
    if (err instanceof RangeError) throw new CanonicalFormError('the value is nested too deeply')
    throw err
  }
  return `${out}}`
}

/** Lowercase hex SHA-256 of the UTF-8 bytes of `canonical`. */
export function sha256Hex(canonical: string): string {
  return crypto.hash('sha256', canonical, 'hex')
}

/** The record's id: SHA-256 of its canonical form. */
export function recordIdOf(record: RecordFields): string {
  return sha256Hex(canonicalRecord(record))
}
