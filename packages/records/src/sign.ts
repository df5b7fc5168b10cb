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

/** The 64 signature bytes of a base64url `sig`, or null when it is not exactly that. */
function signatureBytes(sig: string): Buffer | null {
  // 86 characters carry 516 bits: the last one must leave its 4 spare bits zero (A, Q, g or w),
  // or two strings would decode to the same signature.
  if (!SIG_RE.test(sig) || !'AQgw'.includes(sig[85]!)) return null
  return Buffer.from(sig, 'base64url')
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

/** An envelope as served: id, record, sig and the time the source stored it. */
export function toEnvelope(signed: SignedRecord, storedAt: number): Envelope {
  return { id: signed.id, record: signed.record, sig: signed.sig, stored_at: storedAt }
}
