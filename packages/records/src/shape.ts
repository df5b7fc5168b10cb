import { ACTS, DATA_TYPES, MAX_CLOCK, RECORD_ID_RE, type RecordFields, THREAD_RE } from './schema.js'

/** The envelope fields precheckEnvelope reads, as envelopeSchema gives them. */
export interface EnvelopeShape {
  id: string
  record: RecordFields
  sig: string | undefined
  stored_at: number | undefined
  redacted: boolean | undefined
}

const RECORD_KEYS = new Set(['parents', 'thread', 'actor', 'act', 'body', 'clock', 'data_type', 'judged_by'])
const ACT_SET: ReadonlySet<unknown> = new Set(ACTS)
const DATA_TYPE_SET: ReadonlySet<unknown> = new Set(DATA_TYPES)

/** A plain object (what JSON.parse makes), so that own keys are all the keys zod's strict check sees. */
function plainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false
  const proto = Object.getPrototypeOf(v)
  return proto === Object.prototype || proto === null
}

const count = (v: unknown, max: number): v is number =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && v <= max && !Object.is(v, -0)

function recordShape(r: unknown): r is RecordFields {
  if (!plainObject(r)) return false
  for (const k in r) if (!RECORD_KEYS.has(k)) return false
  const { parents, thread, actor, act, body, clock, data_type, judged_by } = r
  if (!Array.isArray(parents) || parents.length > 1000) return false
  let prev = ''
  for (const p of parents as unknown[]) {
    // Sorted ascending without duplicates: '' sorts before every id.
    if (typeof p !== 'string' || !RECORD_ID_RE.test(p) || !(prev < p)) return false
    prev = p
  }
  return (
    typeof thread === 'string' &&
    THREAD_RE.test(thread) &&
    typeof actor === 'string' &&
    actor.length >= 8 &&
    actor.length <= 200 &&
    ACT_SET.has(act) &&
    typeof body === 'object' &&
    body !== null &&
    !Array.isArray(body) &&
    count(clock, MAX_CLOCK) &&
    DATA_TYPE_SET.has(data_type) &&
    (judged_by === undefined || judged_by === null || (typeof judged_by === 'string' && RECORD_ID_RE.test(judged_by)))
  )
}

/**
 * envelopeSchema and recordSchema without zod, for what a peer normally sends: the envelope's
 * fields when `raw` is certainly accepted by both schemas (the record is `raw.record` itself, not
 * a copy: the schemas pass every accepted value through unchanged), or null when zod has to decide
 * and word the error. Accepting only a subset of what zod accepts keeps one set of rules; zod's
 * per-field payloads and copies were a third of the precheck's time and much of a catch-up's
 * young garbage.
 */
export function envelopeShape(raw: unknown): EnvelopeShape | null {
  if (!plainObject(raw)) return null
  const { id, record, sig, stored_at, redacted } = raw
  if (typeof id !== 'string' || !RECORD_ID_RE.test(id)) return null
  if (sig !== undefined && typeof sig !== 'string') return null
  if (stored_at !== undefined && !count(stored_at, Number.MAX_SAFE_INTEGER)) return null
  if (redacted !== undefined && typeof redacted !== 'boolean') return null
  if (!recordShape(record)) return null
  return { id, record, sig, stored_at, redacted }
}
