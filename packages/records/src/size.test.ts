import { Keypair } from '@spl/identity'
import { describe, expect, it } from 'vitest'
import { canonicalRecord } from './canonical.js'
import { inlineChecker, inlineCheckerFor } from './checker.js'
import { DEFAULT_MAX_RECORD_BYTES, precheckEnvelope, utf8Over } from './ingest.js'
import type { RecordFields } from './schema.js'
import { signRecord, toEnvelope } from './sign.js'

// SPEC 2.4a: a record's canonical form is at most records.max_bytes (1 MiB) of UTF-8.

const key = Keypair.fromSeed(new Uint8Array(32).fill(9))

function recordOf(text: string): RecordFields {
  return { parents: [], thread: 'th_size', actor: key.did, act: 'KNOW', body: { text }, clock: 0, data_type: 'SCALAR' }
}

/** A signed envelope whose canonical form is exactly `bytes` UTF-8 bytes, padded with `unit`. */
function envelopeOf(bytes: number, unit: string) {
  const frame = Buffer.byteLength(canonicalRecord(recordOf('')), 'utf8')
  const unitBytes = Buffer.byteLength(unit, 'utf8')
  const n = Math.floor((bytes - frame) / unitBytes)
  const text = unit.repeat(n) + 'x'.repeat(bytes - frame - n * unitBytes)
  const signed = signRecord(key, recordOf(text))
  expect(Buffer.byteLength(signed.canonical, 'utf8')).toBe(bytes)
  return JSON.parse(JSON.stringify(toEnvelope(signed, 1))) as unknown
}

describe('record size limit at ingest', () => {
  it('1 MiB of canonical UTF-8 passes; one byte more is INVALID_RECORD naming the limit', async () => {
    const at = envelopeOf(DEFAULT_MAX_RECORD_BYTES, '漢')
    const over = envelopeOf(DEFAULT_MAX_RECORD_BYTES + 1, '漢')
    expect(precheckEnvelope(at, null).ok).toBe(true)
    const r = precheckEnvelope(over, null)
    expect(r).toMatchObject({ ok: false, code: 'INVALID_RECORD' })
    expect(!r.ok && r.message).toContain('records.max_bytes')
    const [a, b] = await inlineChecker.checkMany([at, over], null)
    expect([a!.ok, b!.ok]).toEqual([true, false])
  })

  it('counts bytes, not string length: 400,000 CJK characters are 1.2 MB', () => {
    const text = '漢'.repeat(400_000)
    expect(text.length).toBeLessThan(DEFAULT_MAX_RECORD_BYTES)
    const r = precheckEnvelope(JSON.parse(JSON.stringify(toEnvelope(signRecord(key, recordOf(text)), 1))), null)
    expect(r).toMatchObject({ ok: false, code: 'INVALID_RECORD' })
  })

  it('a configured limit applies', async () => {
    const env = envelopeOf(5000, 'é')
    expect((await inlineCheckerFor(4999).checkMany([env], null))[0]!.ok).toBe(false)
    expect((await inlineCheckerFor(5000).checkMany([env], null))[0]!.ok).toBe(true)
  })

  it('utf8Over counts only when it has to', () => {
    expect(utf8Over('abc', 9)).toBeNull()
    expect(utf8Over('漢漢漢', 9)).toBeNull()
    expect(utf8Over('漢漢漢', 8)).toBe(9)
    expect(utf8Over('abcdefghij', 9)).toBe(10)
  })
})
