import crypto from 'node:crypto'
import { Keypair } from '@spl/identity'
import { describe, expect, it } from 'vitest'
import { prng as seeded } from '../../../test-utils/prng.js'
import { backoffMs, newPair, type Pair, PairAmbiguousError, PairNotFoundError, pairIdFor, pairInputSchema, resolvePairRef } from './pair.js'

describe('backoffMs', () => {
  it('is 1 s, doubling, with random = 0.5 (no jitter)', () => {
    const half = () => 0.5
    expect([1, 2, 3, 4, 5, 6, 7, 8, 9].map((n) => backoffMs(n, half))).toEqual([
      1000, 2000, 4000, 8000, 16_000, 32_000, 64_000, 128_000, 256_000,
    ])
  })

  it('stays within ±20 % of 1 s · 2^(attempt−1), capped at 300 s, over many seeded randoms', () => {
    const random = seeded(42)
    for (let attempt = 1; attempt <= 20; attempt++) {
      const base = Math.min(300_000, 1000 * 2 ** (attempt - 1))
      const values: number[] = []
      for (let i = 0; i < 2000; i++) values.push(backoffMs(attempt, random))
      const min = Math.min(...values)
      const max = Math.max(...values)
      expect(min, `attempt ${attempt}`).toBeGreaterThanOrEqual(Math.floor(base * 0.8))
      expect(max, `attempt ${attempt}`).toBeLessThanOrEqual(Math.min(300_000, Math.ceil(base * 1.2)))
      // The jitter is real: both ends of the band are reached.
      expect(min, `attempt ${attempt}`).toBeLessThan(base * 0.82)
      if (base * 1.2 < 300_000) expect(max, `attempt ${attempt}`).toBeGreaterThan(base * 1.18)
      expect(values.every(Number.isInteger)).toBe(true)
    }
  })

  it('never exceeds 5 minutes, however many failures', () => {
    for (const attempt of [10, 11, 30, 1000, Number.MAX_SAFE_INTEGER]) {
      expect(backoffMs(attempt, () => 0.999999)).toBeLessThanOrEqual(300_000)
      expect(backoffMs(attempt, () => 0)).toBeGreaterThanOrEqual(240_000)
    }
    expect(backoffMs(9, () => 0.999999)).toBe(300_000) // 256 s + 20 % is over the cap
  })

  it('has its band edges at random = 0 and random → 1', () => {
    expect(backoffMs(1, () => 0)).toBe(800)
    expect(backoffMs(1, () => 0.999999)).toBe(1200)
    expect(backoffMs(4, () => 0)).toBe(6400)
    expect(backoffMs(4, () => 0.999999)).toBe(9600)
  })

  it('uses Math.random by default, inside the band', () => {
    for (let i = 0; i < 200; i++) {
      const v = backoffMs(3)
      expect(v).toBeGreaterThanOrEqual(3200)
      expect(v).toBeLessThanOrEqual(4800)
    }
  })
})

describe('pairIdFor', () => {
  it('is the first 16 hex of sha256(local \\n peer \\n thread)', () => {
    expect(pairIdFor('did:key:z6MkLocal', 'did:key:z6MkPeer', 'th_demo')).toBe('398618ccb42e42b7')
    const a = Keypair.fromSeed(new Uint8Array(32).fill(1)).did
    const b = Keypair.fromSeed(new Uint8Array(32).fill(2)).did
    const expected = crypto.createHash('sha256').update(`${a}\n${b}\nth_x`).digest('hex').slice(0, 16)
    expect(pairIdFor(a, b, 'th_x')).toBe(expected)
    expect(pairIdFor(a, b, 'th_x')).toMatch(/^[0-9a-f]{16}$/)
  })

  it('depends on direction and thread', () => {
    const ids = new Set([
      pairIdFor('did:key:z6MkA', 'did:key:z6MkB', 'th_1'),
      pairIdFor('did:key:z6MkB', 'did:key:z6MkA', 'th_1'),
      pairIdFor('did:key:z6MkA', 'did:key:z6MkB', 'th_2'),
    ])
    expect(ids.size).toBe(3)
  })
})

function pair(id: string): Pair {
  return { ...newPair(id, 'did:key:z6MkPeer', 'http://127.0.0.1:1', 'th_x', 0), state: 'running' }
}

describe('resolvePairRef', () => {
  const pairs = [pair('abcd000000000001'), pair('abcd000000000002'), pair('abce000000000003'), pair('0123456789abcdef')]

  it('finds an exact id', () => {
    expect(resolvePairRef(pairs, 'abcd000000000002').pair_id).toBe('abcd000000000002')
    expect(resolvePairRef(pairs, '0123456789abcdef').pair_id).toBe('0123456789abcdef')
  })

  it('finds a unique prefix of 4 or more characters', () => {
    expect(resolvePairRef(pairs, 'abce').pair_id).toBe('abce000000000003')
    expect(resolvePairRef(pairs, '0123').pair_id).toBe('0123456789abcdef')
    expect(resolvePairRef(pairs, 'abce00').pair_id).toBe('abce000000000003')
    expect(resolvePairRef(pairs, '0123456789abcde').pair_id).toBe('0123456789abcdef')
  })

  it('refuses an ambiguous prefix, saying how many pairs match', () => {
    const err = catchErr(() => resolvePairRef(pairs, 'abcd'))
    expect(err).toBeInstanceOf(PairAmbiguousError)
    expect(err).toMatchObject({ code: 'PAIR_AMBIGUOUS', status: 400 })
    expect(err.message).toContain('matches 2 pairs')
  })

  it('refuses a prefix shorter than 4 characters even when it is unique', () => {
    for (const ref of ['0', '01', '012']) {
      const err = catchErr(() => resolvePairRef(pairs, ref))
      expect(err).toBeInstanceOf(PairAmbiguousError)
      expect(err.message).toContain('too short')
    }
  })

  it('answers PAIR_NOT_FOUND for an unknown id or prefix, or something that is not hex', () => {
    for (const ref of ['ffff', 'abcf00', 'ABCD', 'zzzz', '', 'abcd0000000000019', 'abcd-000']) {
      const err = catchErr(() => resolvePairRef(pairs, ref))
      expect(err, ref).toBeInstanceOf(PairNotFoundError)
      expect(err).toMatchObject({ code: 'PAIR_NOT_FOUND', status: 404 })
    }
  })
})

describe('pairInputSchema', () => {
  const did = Keypair.fromSeed(new Uint8Array(32).fill(3)).did

  it('accepts a did:key, an http(s) URL and a thread id', () => {
    const parsed = pairInputSchema.parse({ peer_did: did, peer_url: 'http://10.0.0.5:9100', thread_id: 'th_demo', mode: 'poll' })
    expect(parsed.mode).toBe('poll')
  })

  it('rejects other DIDs, URLs, thread ids, and unknown fields', () => {
    const ok = { peer_did: did, peer_url: 'http://10.0.0.5:9100', thread_id: 'th_demo' }
    expect(pairInputSchema.safeParse({ ...ok, peer_did: 'did:web:example.com' }).success).toBe(false)
    expect(pairInputSchema.safeParse({ ...ok, peer_url: 'ftp://example.com' }).success).toBe(false)
    expect(pairInputSchema.safeParse({ ...ok, thread_id: 'demo' }).success).toBe(false)
    expect(pairInputSchema.safeParse({ ...ok, poll_interval_ms: 10 }).success).toBe(false)
    expect(pairInputSchema.safeParse({ ...ok, extra: 1 }).success).toBe(false)
  })
})

function catchErr(fn: () => unknown): Error {
  try {
    fn()
  } catch (err) {
    return err as Error
  }
  throw new Error('expected a throw')
}
