import { createHash } from 'node:crypto'
import { Keypair } from '@spl/identity'
import { describe, expect, it } from 'vitest'
import { prng } from '../../../test-utils/prng.js'
import { inlineChecker, threadPoolChecker } from './checker.js'
import { signRecord, verifyRecordSignature, verifyRecordSignatureAsync, verifyRecordSignaturesAsync } from './sign.js'

type Item = { actor: string; canonical: string; sig: string }

/** 200 items, half valid and half forged in assorted ways, shuffled; with the truth for each. */
function mixedBatch(): { items: Item[]; truth: boolean[] } {
  const rand = prng(2024)
  const keys = Array.from({ length: 4 }, (_, k) => Keypair.fromSeed(Uint8Array.from({ length: 32 }, (_, i) => k * 32 + i)))
  const rows: { item: Item; valid: boolean }[] = []
  for (let i = 0; i < 200; i++) {
    const kp = keys[i % keys.length]!
    const other = keys[(i + 1) % keys.length]!
    const s = signRecord(kp, {
      parents: [],
      thread: 'th_verify',
      actor: kp.did,
      act: 'DO',
      body: { i, text: `record ${i} é😀` },
      clock: i,
      data_type: 'SCALAR',
    })
    const item = { actor: kp.did, canonical: s.canonical, sig: s.sig }
    if (i % 2 === 0) {
      rows.push({ item, valid: true })
      continue
    }
    const sigBytes = Buffer.from(s.sig, 'base64url')
    switch (i % 10) {
      case 1: {
        sigBytes[Math.floor(rand() * 64)]! ^= 1 << Math.floor(rand() * 8)
        rows.push({ item: { ...item, sig: sigBytes.toString('base64url') }, valid: false })
        break
      }
      case 3:
        rows.push({ item: { ...item, actor: other.did }, valid: false })
        break
      case 5:
        rows.push({
          item: { ...item, canonical: item.canonical.replace('"clock":', '"clock":1') },
          valid: false,
        })
        break
      case 7:
        rows.push({ item: { ...item, actor: 'did:web:example.com' }, valid: false })
        break
      default:
        rows.push({
          item: { ...item, sig: `${item.sig.slice(0, 85)}${item.sig[85] === 'A' ? 'B' : 'A'}` },
          valid: false,
        })
    }
  }
  for (let i = rows.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1))
    ;[rows[i], rows[j]] = [rows[j]!, rows[i]!]
  }
  return { items: rows.map((r) => r.item), truth: rows.map((r) => r.valid) }
}

/** Envelopes as a peer serves them, built from the mixed batch, plus a stub and a broken one. */
function envelopesOf(items: Item[]): unknown[] {
  const out: unknown[] = items.map((item) => {
    const record = JSON.parse(item.canonical)
    // The id is the hash of what is served, so a forged item fails at the signature, not the hash.
    return { id: createHash('sha256').update(item.canonical).digest('hex'), record: { ...record, actor: item.actor }, sig: item.sig }
  })
  out.push({ id: 'a'.repeat(64), record: JSON.parse(items[0]!.canonical), redacted: true })
  out.push({ id: 'nope', record: {}, sig: 'x' })
  return out
}

describe('envelope checkers', () => {
  const { items, truth } = mixedBatch()

  it('the batch is 100 valid and 100 forged', () => {
    expect(items).toHaveLength(200)
    expect(truth.filter(Boolean)).toHaveLength(100)
  })

  it('verifyRecordSignature and its threadpool twin give the truth', async () => {
    expect(items.map((i) => verifyRecordSignature(i.actor, i.canonical, i.sig))).toEqual(truth)
    expect(await Promise.all(items.map((i) => verifyRecordSignatureAsync(i.actor, i.canonical, i.sig)))).toEqual(truth)
    // The batch form (one buffer for all the bytes, non-ASCII bodies among them) gives the same.
    expect(await Promise.all(verifyRecordSignaturesAsync(items))).toEqual(truth)
    expect(await Promise.all(verifyRecordSignaturesAsync(items.slice(5, 6)))).toEqual(truth.slice(5, 6))
    expect(verifyRecordSignaturesAsync([])).toEqual([])
  })

  it('threadPoolChecker gives exactly what inlineChecker gives, in order', async () => {
    const envelopes = envelopesOf(items)
    const inline = await inlineChecker.checkMany(envelopes, 'th_verify')
    const codes = inline.map((c) => (c.ok ? 'ok' : c.code))
    // The forged signatures are SIGNATURE_INVALID, the records whose actor or fields changed fail
    // earlier; the stub passes unverified and the broken envelope is INVALID_RECORD.
    expect(codes.filter((c) => c === 'ok')).toHaveLength(101)
    expect(codes.at(-1)).toBe('INVALID_RECORD')
    expect(codes).toContain('SIGNATURE_INVALID')
    expect(await threadPoolChecker.checkMany(envelopes, 'th_verify')).toEqual(inline)
    // Concurrent batches of odd sizes each come back whole and in order.
    const slices = [envelopes.slice(0, 7), envelopes.slice(7, 120), envelopes.slice(120), envelopes, envelopes.slice(3, 4)]
    const results = await Promise.all(slices.map((s) => threadPoolChecker.checkMany(s, 'th_verify')))
    results.forEach((r, k) => {
      const start = envelopes.indexOf(slices[k]![0]!)
      expect(r).toEqual(inline.slice(start, start + slices[k]!.length))
    })
    expect(await threadPoolChecker.checkMany([], null)).toEqual([])
  })

  it('a record whose signature is valid for its own fields but not its actor is SIGNATURE_INVALID', async () => {
    const [a, b] = [Keypair.generate(), Keypair.generate()]
    const s = signRecord(a, { parents: [], thread: 'th_x', actor: a.did, act: 'DO', body: {}, clock: 0, data_type: 'SCALAR' })
    const forged = signRecord(b, { ...s.record, actor: b.did })
    const envelope = { id: s.id, record: s.record, sig: forged.sig }
    for (const v of [inlineChecker, threadPoolChecker]) {
      const [checked] = await v.checkMany([envelope], 'th_x')
      expect(checked).toMatchObject({ ok: false, code: 'SIGNATURE_INVALID', id: s.id })
    }
  })
})
