import { type Keypair, verifySignature, verifySignatureAsync } from '@spl/identity'
import { canonicalRecord, sha256Hex } from './canonical.js'
import { type Envelope, type RecordFields, SIG_RE } from './schema.js'

/** A signed record with its canonical form (what the id and signature cover). */
export interface SignedRecord {
  id: string
  record: RecordFields
  sig: string
  canonical: string
}

/** Canonicalizes, hashes and signs `record` with `keypair`; the actor must be the keypair's DID. */
export function signRecord(keypair: Keypair, record: RecordFields): SignedRecord {
  if (record.actor !== keypair.did) throw new Error('a record is signed by its actor')
  const canonical = canonicalRecord(record)
  const sig = Buffer.from(keypair.sign(Buffer.from(canonical, 'utf8'))).toString('base64url')
  return { id: sha256Hex(canonical), record, sig, canonical }
}

/** True when `sig` is exactly 64 bytes in base64url, in the one spelling that has. */
function wellFormedSig(sig: string): boolean {
  // 86 characters carry 516 bits: the last one must leave its 4 spare bits zero (A, Q, g or w),
  // or two strings would decode to the same signature.
  return SIG_RE.test(sig) && 'AQgw'.includes(sig[85]!)
}

/** The 64 signature bytes of a base64url `sig`, or null when it is not exactly that. */
function signatureBytes(sig: string): Buffer | null {
  return wellFormedSig(sig) ? Buffer.from(sig, 'base64url') : null
}

/** True when `sig` (base64url) is the actor's signature over `canonical`. */
export function verifyRecordSignature(actor: string, canonical: string, sig: string): boolean {
  const bytes = signatureBytes(sig)
  return bytes !== null && verifySignature(actor, Buffer.from(canonical, 'utf8'), bytes)
}

/** verifyRecordSignature with the Ed25519 work on node:crypto's threadpool. */
export function verifyRecordSignatureAsync(actor: string, canonical: string, sig: string): Promise<boolean> {
  const bytes = signatureBytes(sig)
  return bytes === null ? Promise.resolve(false) : verifySignatureAsync(actor, Buffer.from(canonical, 'utf8'), bytes)
}

/** What verifyRecordSignaturesAsync checks of one record. */
export interface SignatureCheck {
  actor: string
  canonical: string
  sig: string
}

/**
 * verifyRecordSignatureAsync for many records at once, each answer in the order given. Their
 * canonical bytes and signatures are written into one buffer, which the verifications read
 * through views (node:crypto copies what it needs when a job is queued): one allocation per batch
 * instead of two small pooled buffers per record, which lived on until the next full collection
 * and left ~10 MB of the process's heap fragmented during a catch-up (docs/performance.md).
 */
export function verifyRecordSignaturesAsync(items: readonly SignatureCheck[]): Promise<boolean>[] {
  let total = 0
  const lengths = items.map((it) => {
    const n = Buffer.byteLength(it.canonical, 'utf8')
    total += n
    return n
  })
  // The signatures first, then the canonical bytes, in one allocation (not from Buffer's pool).
  const bytes = Buffer.allocUnsafeSlow(64 * items.length + total)
  let offset = 64 * items.length
  return items.map((it, i) => {
    const message = bytes.subarray(offset, offset + lengths[i]!)
    offset += message.write(it.canonical, 'utf8')
    if (!wellFormedSig(it.sig)) return Promise.resolve(false)
    const signature = bytes.subarray(64 * i, 64 * i + 64)
    signature.write(it.sig, 'base64url')
    return verifySignatureAsync(it.actor, message, signature)
  })
}

/** An envelope as served: id, record, sig and the time the source stored it. */
export function toEnvelope(signed: SignedRecord, storedAt: number): Envelope {
  return { id: signed.id, record: signed.record, sig: signed.sig, stored_at: storedAt }
}
