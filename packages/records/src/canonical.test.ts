import crypto from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { prng } from '../../../test-utils/prng.js'
import { CanonicalFormError, canonicalJson, canonicalRecord, recordIdOf, sha256Hex } from './canonical.js'
import type { RecordFields } from './schema.js'

/** json-canonicalize 2.0.1 ships only src/*.ts (no build output): load that source through vitest. */
async function loadJcs(): Promise<(value: unknown) => string> {
  const specifier: string = 'json-canonicalize/src/index.ts'
  const mod = (await import(specifier)) as { canonicalize: (value: unknown) => string }
  return mod.canonicalize
}
const jcs = await loadJcs()

type Json = null | boolean | number | string | Json[] | { [k: string]: Json }

/** Random JSON: every number class JCS treats specially and strings across all of Unicode (no lone surrogates). */
function generator(seed: number) {
  const rand = prng(seed)
  const int = (n: number) => Math.floor(rand() * n)
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!
  const specialNumbers = [
    0,
    -0,
    1,
    -1,
    0.1,
    0.5,
    1e21,
    1e20,
    1e-6,
    1e-7,
    1e-323,
    5e-324,
    2 ** 53,
    2 ** 53 - 1,
    -(2 ** 53),
    2 ** 64,
    Number.MAX_VALUE,
    -Number.MAX_VALUE,
    Number.MIN_VALUE,
    123456789.12345678,
    0.1 + 0.2,
    1 / 3,
    100,
    1e300,
  ]
  const specialChars = [
    '"',
    '\\',
    '/',
    '\b',
    '\f',
    '\n',
    '\r',
    '\t',
    '\u0000',
    '\u001f',
    '\u007f',
    '\u0080',
    '\u2028',
    '\u2029',
    '\u20ac',
    '\ufb01',
    '\ufb33',
    '\ufeff',
    '\uffff',
    '\ud83d\ude00',
    '\ud800\udc00',
    '\udbff\udfff',
    'e\u0301',
  ]
  function number(): number {
    switch (int(5)) {
      case 0:
        return pick(specialNumbers)
      case 1:
        return int(2_000_001) - 1_000_000
      case 2:
        return (rand() - 0.5) * 10 ** (int(40) - 20)
      case 3: {
        // Any finite double, from random bits.
        const view = new DataView(new ArrayBuffer(8))
        for (;;) {
          view.setUint32(0, int(2 ** 32))
          view.setUint32(4, int(2 ** 32))
          const n = view.getFloat64(0)
          if (Number.isFinite(n)) return n
        }
      }
      default:
        return Number((rand() * 1000).toFixed(int(6)))
    }
  }
  function char(): string {
    switch (int(6)) {
      case 0:
        return pick(specialChars)
      case 1:
        return String.fromCharCode(0x20 + int(0x5f))
      case 2: {
        // Any BMP code point except a surrogate.
        const c = int(0xf800)
        return String.fromCharCode(c < 0xd800 ? c : c + 0x800)
      }
      case 3:
        return String.fromCodePoint(0x10000 + int(0x100000))
      case 4:
        return String.fromCharCode(int(0x20))
      default:
        return 'abcxyzABC019_-'[int(14)]!
    }
  }
  const string = (max: number) => Array.from({ length: int(max) }, char).join('')
  function value(depth: number): Json {
    const kind = depth >= 4 ? int(4) : int(6)
    switch (kind) {
      case 0:
        return pick([null, true, false])
      case 1:
        return number()
      case 2:
      case 3:
        return string(12)
      case 4:
        return Array.from({ length: int(6) }, () => value(depth + 1))
      default: {
        const o: { [k: string]: Json } = {}
        for (let i = int(7); i > 0; i--) o[string(5)] = value(depth + 1)
        return o
      }
    }
  }
  return { value, string, number, rand }
}

/** The same object with keys inserted in another order, recursively. */
function reordered(v: Json, rand: () => number): Json {
  if (Array.isArray(v)) return v.map((x) => reordered(x, rand))
  if (v === null || typeof v !== 'object') return v
  const keys = Object.keys(v)
  for (let i = keys.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1))
    ;[keys[i], keys[j]] = [keys[j]!, keys[i]!]
  }
  const o: { [k: string]: Json } = {}
  for (const k of keys) o[k] = reordered(v[k]!, rand)
  return o
}

const withoutNegativeZero = (v: Json): Json =>
  Array.isArray(v)
    ? v.map(withoutNegativeZero)
    : v !== null && typeof v === 'object'
      ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, withoutNegativeZero(x)]))
      : Object.is(v, -0)
        ? 0
        : v

describe('canonicalJson against an independent RFC 8785 implementation', () => {
  it('agrees with json-canonicalize on 400 seeded random JSON values', () => {
    const g = generator(8785)
    let objects = 0
    let nonBmp = 0
    for (let i = 0; i < 400; i++) {
      const v = g.value(0)
      const ours = canonicalJson(v)
      expect(ours).toBe(jcs(v))
      // Parsing the canonical text gives the value back (-0 becomes 0) and re-canonicalizes to itself.
      expect(JSON.parse(ours)).toEqual(withoutNegativeZero(v))
      expect(canonicalJson(JSON.parse(ours))).toBe(ours)
      // Key insertion order never matters.
      expect(canonicalJson(reordered(v, g.rand))).toBe(ours)
      if (v !== null && typeof v === 'object' && !Array.isArray(v)) objects++
      if (/[\ud800-\udbff]/.test(ours)) nonBmp++
    }
    // The generator really produced the interesting shapes.
    expect(objects).toBeGreaterThan(50)
    expect(nonBmp).toBeGreaterThan(20)
  })

  it('agrees on 2000 random numbers and 2000 random strings', () => {
    const g = generator(1)
    for (let i = 0; i < 2000; i++) {
      const n = g.number()
      expect(canonicalJson(n)).toBe(jcs(n))
      expect(canonicalJson(n)).toBe(Object.is(n, -0) ? '0' : String(n))
      const s = g.string(20)
      expect(canonicalJson(s)).toBe(jcs(s))
      expect(JSON.parse(canonicalJson(s))).toBe(s)
    }
  })

  it('sorts keys by UTF-16 code units, not by code points', () => {
    // U+1F600 is D83D DE00 in UTF-16: before U+FB01 by code unit, after it by code point.
    const v = { '\ufb01': 1, '\ud83d\ude00': 2, '\u20ac': 3, '\uffff': 4, a: 5, B: 6 }
    const expected = '{"B":6,"a":5,"\u20ac":3,"\ud83d\ude00":2,"\ufb01":1,"\uffff":4}'
    expect(canonicalJson(v)).toBe(expected)
    expect(jcs(v)).toBe(expected)
  })
})

describe('canonicalJson rejects what JSON cannot carry', () => {
  it.each([
    ['a lone high surrogate', 'a\ud800'],
    ['a lone low surrogate', '\udc00b'],
    ['a reversed pair', '\ude00\ud83d'],
    ['a high surrogate at the end', 'ok\ud83d'],
  ])('%s, as a value or as a key, at any depth', (_n, s) => {
    expect(() => canonicalJson(s)).toThrow(CanonicalFormError)
    expect(() => canonicalJson({ k: s })).toThrow(CanonicalFormError)
    expect(() => canonicalJson({ [s]: 1 })).toThrow(CanonicalFormError)
    expect(() => canonicalJson([[{ deep: [s] }]])).toThrow(CanonicalFormError)
  })

  it('cycles and values with no JSON form', () => {
    const cyclic: Record<string, unknown> = { a: 1 }
    cyclic['self'] = cyclic
    expect(() => canonicalJson(cyclic)).toThrow(CanonicalFormError)
    expect(() => canonicalJson(undefined)).toThrow(CanonicalFormError)
    expect(() => canonicalJson(() => 1)).toThrow(CanonicalFormError)
    expect(() => canonicalJson(10n)).toThrow(CanonicalFormError)
  })

  it('a shared (non-cyclic) sub-object is fine', () => {
    const shared = { x: 1 }
    expect(canonicalJson({ a: shared, b: [shared] })).toBe('{"a":{"x":1},"b":[{"x":1}]}')
  })
})

describe('canonicalRecord / recordIdOf', () => {
  const record = demoRecord()

  it('covers exactly the seven hashed fields', () => {
    const c = canonicalRecord(record)
    expect(c).toBe(
      '{"act":"INTEND","actor":"did:key:z6MkehRgf7yJbgaGfYsdoAsKdBPE3dj2CYhowQdcjqSJgvVd","body":{"text":"hi"},' +
        '"clock":0,"data_type":"SCALAR","parents":[],"thread":"th_demo"}',
    )
    // judged_by and anything extra are not hashed.
    const extra = { ...record, judged_by: 'a'.repeat(64), stored_at: 5, sig: 'x' } as RecordFields
    expect(canonicalRecord(extra)).toBe(c)
    // Every hashed field changes the id.
    const id = recordIdOf(record)
    const variants: Partial<RecordFields>[] = [
      { parents: ['a'.repeat(64)] },
      { thread: 'th_demo2' },
      { actor: 'did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp' },
      { act: 'DO' },
      { body: { text: 'hi ' } },
      { clock: 1 },
      { data_type: 'VOID' },
    ]
    const ids = variants.map((v) => recordIdOf({ ...record, ...v }))
    expect(new Set([id, ...ids]).size).toBe(8)
  })

  it('id is the lowercase hex SHA-256 of the UTF-8 canonical bytes', () => {
    const withUnicode = { ...record, body: { text: 'é😀' } }
    const c = canonicalRecord(withUnicode)
    const expected = crypto.createHash('sha256').update(Buffer.from(c, 'utf8')).digest('hex')
    expect(recordIdOf(withUnicode)).toBe(expected)
    expect(sha256Hex('')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855')
    expect(sha256Hex('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')
  })
})

describe('canonicalRecord, written without sorting, is canonicalJson of the seven fields', () => {
  it('on 400 seeded random records, fields left out or of any JSON type included', () => {
    const g = generator(22)
    const fields = ['parents', 'thread', 'actor', 'act', 'body', 'clock', 'data_type'] as const
    for (let i = 0; i < 400; i++) {
      const r: Record<string, unknown> = { judged_by: g.string(3) }
      for (const f of fields) if (g.rand() < 0.9) r[f] = g.value(1)
      const seven = Object.fromEntries(fields.map((f) => [f, r[f]]))
      let want: string | Error
      try {
        want = canonicalJson(seven)
      } catch (err) {
        want = err as Error
      }
      if (want instanceof Error) expect(() => canonicalRecord(r as RecordFields)).toThrow(CanonicalFormError)
      else expect(canonicalRecord(r as RecordFields)).toBe(want)
    }
    expect(() => canonicalRecord({ ...demoRecord(), body: { s: 'a\ud800' } })).toThrow(CanonicalFormError)
  })
})

function demoRecord(): RecordFields {
  return {
    parents: [],
    thread: 'th_demo',
    actor: 'did:key:z6MkehRgf7yJbgaGfYsdoAsKdBPE3dj2CYhowQdcjqSJgvVd',
    act: 'INTEND',
    body: { text: 'hi' },
    clock: 0,
    data_type: 'SCALAR',
  }
}
