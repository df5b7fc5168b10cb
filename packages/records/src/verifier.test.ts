import { Keypair } from '@spl/identity'
import { describe, expect, it } from 'vitest'
import { prng } from '../../../test-utils/prng.js'
import { signRecord } from './sign.js'
import { createWorkerVerifier, inlineVerifier } from './verifier.js'

// The worker runs dist/verify-worker.js: build the package first (pnpm --filter @spl/records build).

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

describe('signature verifiers', () => {
  const { items, truth } = mixedBatch()

  it('the batch is 100 valid and 100 forged', () => {
    expect(items).toHaveLength(200)
    expect(truth.filter(Boolean)).toHaveLength(100)
  })

  it('inlineVerifier gives the truth', async () => {
    expect(await inlineVerifier.verifyMany(items)).toEqual(truth)
    expect(await inlineVerifier.verifyMany([])).toEqual([])
    await inlineVerifier.close()
  })

  it('createWorkerVerifier gives exactly what inlineVerifier gives, in order', async () => {
    const workers = createWorkerVerifier({ threads: 2, inlineBelow: 1 })
    try {
      const inline = await inlineVerifier.verifyMany(items)
      expect(await workers.verifyMany(items)).toEqual(inline)
      // Concurrent batches of odd sizes queue up and each comes back whole and in order.
      const slices = [items.slice(0, 7), items.slice(7, 120), items.slice(120), items, items.slice(3, 4)]
      const results = await Promise.all(slices.map((s) => workers.verifyMany(s)))
      results.forEach((r, k) => {
        const start = items.indexOf(slices[k]![0]!)
        expect(r).toEqual(truth.slice(start, start + slices[k]!.length))
      })
      expect(await workers.verifyMany([])).toEqual([])
    } finally {
      await workers.close()
    }
  })

  it('small batches below inlineBelow are verified without the workers', async () => {
    const workers = createWorkerVerifier({ threads: 1 })
    try {
      expect(await workers.verifyMany(items.slice(0, 10))).toEqual(truth.slice(0, 10))
      expect(await workers.verifyMany(items.slice(0, 40))).toEqual(truth.slice(0, 40))
    } finally {
      await workers.close()
    }
  })

  it('close() ends the workers and later calls are refused', async () => {
    const workers = createWorkerVerifier({ threads: 2, inlineBelow: 1 })
    expect(await workers.verifyMany(items.slice(0, 50))).toEqual(truth.slice(0, 50))
    await expect(workers.close()).resolves.toBeUndefined()
    await expect(workers.verifyMany(items)).rejects.toThrow('verifier is closed')
  })

  it('close() settles a batch that is still in the workers', async () => {
    const workers = createWorkerVerifier({ threads: 2, inlineBelow: 1 })
    const big = Array.from({ length: 20 }, () => items).flat()
    // verifyMany hands the chunks to the workers before it first yields, so they are in flight here.
    const settled = expect(workers.verifyMany(big)).rejects.toThrow('verifier is closed')
    await workers.close()
    await settled
  })
})
