import { Keypair } from '@spl/identity'
import { nobleBackend } from '@spl/identity/noble'
import { describe, expect, it } from 'vitest'
import { canonicalRecord, recordIdOf } from './canonical.js'
import type { RecordFields } from './schema.js'
import { signRecord, toEnvelope, verifyRecordSignature } from './sign.js'

const alice = Keypair.fromSeed(Uint8Array.from({ length: 32 }, (_, i) => i))
const bob = Keypair.fromSeed(Uint8Array.from({ length: 32 }, (_, i) => 0x20 + i))
const record: RecordFields = {
  parents: [],
  thread: 'th_demo',
  actor: alice.did,
  act: 'KNOW',
  body: { text: 'é 😀' },
  clock: 4,
  data_type: 'SCALAR',
}

describe('signRecord', () => {
  it('signs the canonical form and ids it', () => {
    const s = signRecord(alice, record)
    expect(s.canonical).toBe(canonicalRecord(record))
    expect(s.id).toBe(recordIdOf(record))
    expect(s.sig).toMatch(/^[A-Za-z0-9_-]{86}$/)
    expect(s.record).toBe(record)
    expect(Buffer.from(alice.sign(Buffer.from(s.canonical, 'utf8'))).toString('base64url')).toBe(s.sig)
    // Ed25519 is deterministic: the same record always gets the same signature, on either backend.
    expect(signRecord(Keypair.fromSeed(alice.exportSeed(), nobleBackend), record).sig).toBe(s.sig)
  })

  it('refuses to sign a record whose actor is someone else', () => {
    expect(() => signRecord(bob, record)).toThrow(/signed by its actor/)
  })

  it('toEnvelope carries id, record, sig and stored_at', () => {
    const s = signRecord(alice, record)
    expect(toEnvelope(s, 99)).toEqual({ id: s.id, record, sig: s.sig, stored_at: 99 })
  })
})

describe('verifyRecordSignature', () => {
  const s = signRecord(alice, record)

  it('accepts the actor signature and nothing else', () => {
    expect(verifyRecordSignature(alice.did, s.canonical, s.sig)).toBe(true)
    expect(verifyRecordSignature(bob.did, s.canonical, s.sig)).toBe(false)
    expect(verifyRecordSignature(alice.did, `${s.canonical} `, s.sig)).toBe(false)
    expect(verifyRecordSignature(alice.did, s.canonical.replace('é', 'e\u0301'), s.sig)).toBe(false)
    expect(verifyRecordSignature('did:web:example.com', s.canonical, s.sig)).toBe(false)
  })

  it('accepts only canonical unpadded base64url of exactly 64 bytes', () => {
    const bytes = Buffer.from(s.sig, 'base64url')
    expect(verifyRecordSignature(alice.did, s.canonical, `${s.sig}==`)).toBe(false)
    expect(verifyRecordSignature(alice.did, s.canonical, s.sig.slice(0, 85))).toBe(false)
    expect(verifyRecordSignature(alice.did, s.canonical, bytes.toString('base64'))).toBe(bytes.toString('base64') === `${s.sig}==`)
    expect(verifyRecordSignature(alice.did, s.canonical, bytes.toString('hex'))).toBe(false)
    expect(verifyRecordSignature(alice.did, s.canonical, '')).toBe(false)
    // Spare low bits set: decodes to the same bytes, but is not the canonical text.
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
    const last = alphabet[alphabet.indexOf(s.sig[85]!) ^ 0b11]!
    const sloppy = s.sig.slice(0, 85) + last
    expect(Buffer.from(sloppy, 'base64url')).toEqual(bytes)
    expect(verifyRecordSignature(alice.did, s.canonical, sloppy)).toBe(false)
  })
})
