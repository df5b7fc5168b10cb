import { publicKeyOf } from '@spl/identity'
import { CanonicalFormError, canonicalRecord, sha256Hex } from './canonical.js'
import { envelopeSchema, namespaceOf, REDACTED_BODY, type RecordFields, recordSchema, SIG_RE } from './schema.js'
import { type EnvelopeShape, envelopeShape } from './shape.js'
import { verifyRecordSignature, verifyRecordSignatureAsync } from './sign.js'

/** Why an incoming record was refused, in the order the checks run (SPEC 2.4). */
export const REJECTION_CODES = [
  'INVALID_RECORD',
  'THREAD_MISMATCH',
  'HASH_MISMATCH',
  'UNVERIFIABLE_ACTOR',
  'SIGNATURE_INVALID',
  'NAMESPACE_REJECTED',
  'CLOCK_CONFLICT',
] as const
export type RejectionCode = (typeof REJECTION_CODES)[number]

export interface Rejection {
  ok: false
  code: RejectionCode
  message: string
  /** The claimed id, when the envelope had one. */
  id: string | null
}

/** A record that passed the structural checks; its signature is still to be verified. */
export interface Candidate {
  ok: true
  id: string
  record: RecordFields
  canonical: string
  sig: string | null
  namespace: string
  redacted: boolean
  storedAt: number | null
}

/** The largest record by default: 1 MiB of canonical UTF-8 (SPEC 2.4a, `[records] max_bytes`). */
export const DEFAULT_MAX_RECORD_BYTES = 1024 * 1024

/** The UTF-8 length of `text` when it is over `max`, else null (no count for what surely fits). */
export function utf8Over(text: string, max: number): number | null {
  // A UTF-16 unit is 1 to 3 UTF-8 bytes.
  if (text.length * 3 <= max) return null
  const bytes = Buffer.byteLength(text, 'utf8')
  return bytes > max ? bytes : null
}

function reject(code: RejectionCode, message: string, id: string | null): Rejection {
  return { ok: false, code, message, id }
}

function firstIssue(error: { issues: { path: PropertyKey[]; message: string }[] }): string {
  const issue = error.issues[0]
  if (!issue) return 'invalid'
  const path = issue.path.map(String).join('.')
  return path ? `${path}: ${issue.message}` : issue.message
}

/** The envelope's fields by its schemas: without zod when they surely pass (shape.ts), else zod's verdict. */
function shapeOf(raw: unknown): EnvelopeShape | Rejection {
  const fast = envelopeShape(raw)
  if (fast !== null) return fast
  const env = envelopeSchema.safeParse(raw)
  if (!env.success) return reject('INVALID_RECORD', `envelope ${firstIssue(env.error)}`, null)
  const parsed = recordSchema.safeParse(env.data.record)
  if (!parsed.success) return reject('INVALID_RECORD', `record ${firstIssue(parsed.error)}`, env.data.id)
  const { id, sig, stored_at, redacted } = env.data
  return { id, record: parsed.data as RecordFields, sig, stored_at, redacted }
}

/**
 * Runs the checks that need no key and no store, in SPEC 2.4 order: schema, thread, hash,
 * actor. A `redacted` envelope skips the hash check (it cannot pass it). Never throws.
 */
export function precheckEnvelope(
  raw: unknown,
  expectedThread: string | null,
  maxRecordBytes: number = DEFAULT_MAX_RECORD_BYTES,
): Candidate | Rejection {
  const env = shapeOf(raw)
  if ('ok' in env) return env
  const { id, sig, redacted = false, stored_at } = env
  // A stub carries exactly {"redacted": true}: whatever body a peer sent with it is dropped, so
  // an unverifiable envelope can never put words in an actor's mouth.
  const record = redacted ? { ...env.record, body: { ...REDACTED_BODY } } : env.record
  if (!redacted && (typeof sig !== 'string' || !SIG_RE.test(sig))) {
    return reject('INVALID_RECORD', 'sig must be 86 base64url characters', id)
  }
  let canonical: string
  try {
    canonical = canonicalRecord(record)
  } catch (err) {
    const why = err instanceof CanonicalFormError ? err.message : 'not canonicalizable'
    return reject('INVALID_RECORD', `record has no canonical form: ${why}`, id)
  }
  const size = utf8Over(canonical, maxRecordBytes)
  if (size !== null) {
    return reject(
      'INVALID_RECORD',
      `record is ${size} bytes of canonical UTF-8, over the ${maxRecordBytes}-byte limit (records.max_bytes)`,
      id,
    )
  }
  if (expectedThread !== null && record.thread !== expectedThread) {
    return reject('THREAD_MISMATCH', `record is in ${record.thread}, the pair is for ${expectedThread}`, id)
  }
  if (!redacted && sha256Hex(canonical) !== id) {
    return reject('HASH_MISMATCH', 'the record fields do not hash to its id', id)
  }
  if (publicKeyOf(record.actor) === null) {
    return reject('UNVERIFIABLE_ACTOR', `actor ${record.actor.slice(0, 80)} is not a did:key`, id)
  }
  return {
    ok: true,
    id,
    record,
    canonical,
    sig: redacted ? null : (sig ?? null),
    namespace: redacted ? 'default' : namespaceOf(record),
    redacted,
    storedAt: stored_at ?? null,
  }
}

/** The outcome of every check that needs no store: a verified (or redacted) candidate, or why not. */
export type Checked = Candidate | Rejection

const SIGNATURE_INVALID = 'the signature does not verify against the actor key'

/**
 * precheckEnvelope, then the signature (SPEC 2.4 up to SIGNATURE_INVALID). A redacted stub
 * has no signature to check. Never throws.
 */
export function checkEnvelope(raw: unknown, expectedThread: string | null, maxRecordBytes?: number): Checked {
  const c = precheckEnvelope(raw, expectedThread, maxRecordBytes)
  if (!c.ok || c.redacted) return c
  if (!verifyRecordSignature(c.record.actor, c.canonical, c.sig!)) {
    return reject('SIGNATURE_INVALID', SIGNATURE_INVALID, c.id)
  }
  return c
}

/** A prechecked candidate once its signature is known to verify (`ok`) or not. */
export function signatureVerdict(c: Candidate, ok: boolean): Checked {
  return ok ? c : reject('SIGNATURE_INVALID', SIGNATURE_INVALID, c.id)
}

/** checkEnvelope with the signature verified on node:crypto's threadpool. Never rejects. */
export function checkEnvelopeAsync(raw: unknown, expectedThread: string | null, maxRecordBytes?: number): Promise<Checked> {
  const c = precheckEnvelope(raw, expectedThread, maxRecordBytes)
  if (!c.ok || c.redacted) return Promise.resolve(c)
  return verifyRecordSignatureAsync(c.record.actor, c.canonical, c.sig!).then((ok) => signatureVerdict(c, ok))
}

/** Runs every check of checkEnvelope (schema, canonical form, hash, signature) over many records at once. */
export interface EnvelopeChecker {
  /** checkEnvelope on each raw envelope, in order. */
  checkMany(envelopes: readonly unknown[], expectedThread: string | null): Promise<Checked[]>
}
