import crypto from 'node:crypto'
import { readFileSync } from 'node:fs'
import { Keypair, nodeBackend } from '@spl/identity'
import { nobleBackend } from '@spl/identity/noble'
import { describe, expect, it } from 'vitest'
import { CanonicalFormError, canonicalJson, canonicalRecord, recordIdOf } from './canonical.js'
import { type Candidate, precheckEnvelope, type REJECTION_CODES, type Rejection } from './ingest.js'
import { type RecordFields, recordSchema } from './schema.js'
import { signRecord, verifyRecordSignature } from './sign.js'

/**
 * The independent RFC 8785 implementation. json-canonicalize 2.0.1 is published without its
 * built files (only src/*.ts), so it is loaded from its TypeScript source, which vitest compiles.
 */
async function loadJcs(): Promise<(value: unknown) => string> {
  const specifier: string = 'json-canonicalize/src/index.ts'
  const mod = (await import(specifier)) as { canonicalize: (value: unknown) => string }
  return mod.canonicalize
}
const jcs = await loadJcs()

type Verdict = 'OK' | (typeof REJECTION_CODES)[number]
interface RecordVectors {
  seed_hex: string
  actor: string
  public_key_hex: string
  other_seed_hex: string
  other_actor: string
  records: { name: string; note: string; record: RecordFields; canonical: string; id: string; sig: string }[]
  envelopes: { name: string; expected_thread: string | null; expect: Verdict; envelope: unknown }[]
}
interface JcsVectors {
  cases: { name: string; input: string; canonical: string }[]
  ieee754: { bits: string; canonical: string }[]
  rejected_ieee754: { bits: string; why: string }[]
}
const read = <T>(name: string): T => JSON.parse(readFileSync(new URL(`../test/vectors/${name}`, import.meta.url), 'utf8')) as T
const V = read<RecordVectors>('records.json')
const J = read<JcsVectors>('jcs.json')

const seed = Uint8Array.from(Buffer.from(V.seed_hex, 'hex'))
const utf8 = (s: string) => new Uint8Array(Buffer.from(s, 'utf8'))
const b64url = (u: Uint8Array) => Buffer.from(u).toString('base64url')
const sha256 = (s: string) => crypto.createHash('sha256').update(Buffer.from(s, 'utf8')).digest('hex')
const byName = (name: string) => {
  const v = V.records.find((r) => r.name === name)
  if (!v) throw new Error(`no vector ${name}`)
  return v
}
const hashed = (r: RecordFields) => ({
  parents: r.parents,
  thread: r.thread,
  actor: r.actor,
  act: r.act,
  body: r.body,
  clock: r.clock,
  data_type: r.data_type,
})
const double = (bits: string) => {
  const view = new DataView(new ArrayBuffer(8))
  view.setBigUint64(0, BigInt(`0x${bits}`))
  return view.getFloat64(0)
}

/** The ingest checks up to the signature (SPEC 2.4 order): precheck, then verify. */
function verdict(envelope: unknown, expectedThread: string | null): { code: Verdict; result: Candidate | Rejection } {
  const result = precheckEnvelope(envelope, expectedThread)
  if (!result.ok) return { code: result.code, result }
  if (result.redacted) return { code: 'OK', result }
  const ok = verifyRecordSignature(result.record.actor, result.canonical, result.sig!)
  return { code: ok ? 'OK' : 'SIGNATURE_INVALID', result }
}

describe('record vectors: record → canonical → id → sig', () => {
  it('are for the fixed seed 0x00..0x1f', () => {
    expect(V.seed_hex).toBe(Buffer.from(Uint8Array.from({ length: 32 }, (_, i) => i)).toString('hex'))
    for (const backend of [nodeBackend, nobleBackend]) {
      expect(Keypair.fromSeed(seed, backend).did).toBe(V.actor)
      expect(Buffer.from(backend.publicKeyFromSeed(seed)).toString('hex')).toBe(V.public_key_hex)
    }
    expect(V.records.length).toBeGreaterThanOrEqual(10)
  })

  it.each(V.records)('$name: every field recomputes', ({ record, canonical, id, sig }) => {
    expect(recordSchema.safeParse(record).success).toBe(true)
    // canonical: the code under test and an independent RFC 8785 implementation agree with the file.
    expect(canonicalRecord(record)).toBe(canonical)
    expect(jcs(hashed(record))).toBe(canonical)
    expect(canonical).not.toContain('judged_by')
    // id: SHA-256 of the UTF-8 canonical bytes, lowercase hex, no prefix.
    expect(id).toMatch(/^[0-9a-f]{64}$/)
    expect(sha256(canonical)).toBe(id)
    expect(recordIdOf(record)).toBe(id)
    // sig: Ed25519 over the same bytes, base64url without padding; both backends, byte for byte.
    expect(sig).toMatch(/^[A-Za-z0-9_-]{86}$/)
    expect(b64url(nodeBackend.sign(seed, utf8(canonical)))).toBe(sig)
    expect(b64url(nobleBackend.sign(seed, utf8(canonical)))).toBe(sig)
    const signed = signRecord(Keypair.fromSeed(seed), record)
    expect(signed).toEqual({ id, record, sig, canonical })
    const sigBytes = new Uint8Array(Buffer.from(sig, 'base64url'))
    const pk = new Uint8Array(Buffer.from(V.public_key_hex, 'hex'))
    expect(nobleBackend.verify(pk, utf8(canonical), sigBytes)).toBe(true)
    expect(nodeBackend.verify(pk, utf8(canonical), sigBytes)).toBe(true)
    expect(verifyRecordSignature(V.actor, canonical, sig)).toBe(true)
    // And the envelope passes every ingest check, for its own thread.
    const { code, result } = verdict({ id, record, sig, stored_at: 1 }, record.thread)
    expect(code).toBe('OK')
    expect(result.ok && result.canonical).toBe(canonical)
  })

  it('numbers: ECMAScript serialization, hand-checked', () => {
    const v = byName('numbers')
    const numbers = v.record.body['numbers'] as number[]
    // The file really carries a negative zero (JSON.stringify cannot write one).
    expect(Object.is(numbers[3], -0)).toBe(true)
    expect(Object.is(v.record.body['negative_zero'], -0)).toBe(true)
    expect(v.canonical).toContain(
      '"numbers":[1e+21,100000000000000000000,0.1,0,1e-7,0.000001,0.30000000000000004,9007199254740991,' +
        '-9007199254740991,18446744073709552000,5e-324,1.7976931348623157e+308,333333333.3333333,4.5,0.002,' +
        '1e+30,-1.5e-10]',
    )
    expect(v.canonical).toContain('"negative_zero":0,')
  })

  it('unicode: keys in UTF-16 code unit order, strings not normalized, minimal escaping', () => {
    const keys = byName('unicode-key-order').canonical
    const order = ['"":', '"\\r":', '"1":', '"\u0080":', '"\u00f6":', '"\u20ac":', '"\ud83d\ude00":', '"\ufb01":', '"\ufb33":']
    const at = order.map((k) => keys.indexOf(k))
    expect(at.every((i) => i > 0)).toBe(true)
    expect([...at].sort((a, b) => a - b)).toEqual(at)
    const strings = byName('unicode-strings').canonical
    expect(strings).toContain('"nfc":"\u00e9","nfd":"e\u0301"')
    expect(strings).toContain('"escapes":"\\"\\\\/\\b\\f\\n\\r\\t\\u0000\\u0001\\u001f\u007f\u2028\u2029"')
    expect(strings).toContain('😀 𝄞')
  })

  it('structure: fields and nested keys sorted, judged_by left out, parents kept as given', () => {
    const nested = byName('nested').canonical
    expect(nested).toContain(
      '"body":{"list":[[],[[]],{},"x",0],"namespace":"team","z":{"a":{},"b":{"c":[1,{"a":[true,false,null],"z":1},[]]}}}',
    )
    const fields = [...byName('empty-body-root').canonical.matchAll(/"(act|actor|body|clock|data_type|parents|thread)":/g)]
    expect(fields.map((m) => m[1])).toEqual(['act', 'actor', 'body', 'clock', 'data_type', 'parents', 'thread'])
    const p = byName('parents-sorted')
    expect(p.record.parents).toHaveLength(3)
    expect([...p.record.parents].sort()).toEqual(p.record.parents)
    expect(p.record.judged_by).toMatch(/^[0-9a-f]{64}$/)
    expect(p.canonical).toContain(`"parents":${JSON.stringify(p.record.parents)}`)
    const jb = byName('judged-by-null')
    expect(jb.record.judged_by).toBeNull()
    expect(canonicalRecord({ ...jb.record, judged_by: undefined })).toBe(jb.canonical)
    expect(byName('max-clock').canonical).toContain('"clock":9007199254740991,')
    expect(byName('long-thread').record.thread).toHaveLength(203)
  })
})

describe('envelope vectors: the first failing check', () => {
  it('cover every check up to the signature, and valid ones', () => {
    const seen = new Set(V.envelopes.map((e) => e.expect))
    for (const code of ['OK', 'INVALID_RECORD', 'THREAD_MISMATCH', 'HASH_MISMATCH', 'UNVERIFIABLE_ACTOR', 'SIGNATURE_INVALID']) {
      expect(seen.has(code as Verdict)).toBe(true)
    }
    expect(V.envelopes.length).toBeGreaterThanOrEqual(50)
  })

  it.each(V.envelopes)('$name → $expect', ({ envelope, expected_thread, expect: want }) => {
    const { code, result } = verdict(envelope, expected_thread)
    expect(code).toBe(want)
    if (!result.ok) {
      // A rejection names the claimed id (null only when the envelope itself is malformed).
      const claimed = (envelope as { id?: unknown } | null)?.id
      if (result.code !== 'INVALID_RECORD' || result.id !== null) expect(result.id).toBe(claimed)
      expect(result.message.length).toBeGreaterThan(0)
    }
  })

  it('signature-invalid vectors are well-formed base64url of 86 characters, unlike the valid one', () => {
    const base = V.envelopes.find((e) => e.name === 'valid')!.envelope as { sig: string }
    for (const e of V.envelopes.filter((x) => x.expect === 'SIGNATURE_INVALID')) {
      const sig = (e.envelope as { sig: string }).sig
      expect(sig).toHaveLength(86)
      if (e.name !== 'actor-swapped-sig-kept') expect(sig).not.toBe(base.sig)
    }
    const nonCanonical = (V.envelopes.find((e) => e.name === 'sig-non-canonical-trailing-bits')!.envelope as { sig: string }).sig
    // Same 64 bytes, different text: only the canonical encoding is accepted.
    expect(Buffer.from(nonCanonical, 'base64url')).toEqual(Buffer.from(base.sig, 'base64url'))
    expect((V.envelopes.find((e) => e.name === 'sig-standard-base64-alphabet')!.envelope as { sig: string }).sig).toMatch(/[+/]/)
  })

  it('the redacted stub passes without hash or signature, as a default-namespace candidate', () => {
    const e = V.envelopes.find((x) => x.name === 'redacted-stub')!
    const r = precheckEnvelope(e.envelope, null)
    expect(r.ok).toBe(true)
    if (!r.ok) return
    expect(r).toMatchObject({ redacted: true, sig: null, namespace: 'default' })
    expect(recordIdOf(r.record)).not.toBe(r.id)
  })
})

describe('non-finite numbers (cannot be written in JSON, so tested here)', () => {
  const good = V.envelopes.find((e) => e.name === 'valid')!.envelope as {
    id: string
    record: RecordFields
    sig: string
  }
  it.each([
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['-Infinity', Number.NEGATIVE_INFINITY],
  ])('%s in a body is INVALID_RECORD, and has no canonical form', (_name, n) => {
    expect(() => canonicalJson(n)).toThrow(CanonicalFormError)
    expect(() => canonicalJson({ a: [1, { b: n }] })).toThrow(CanonicalFormError)
    expect(jcsThrows({ a: n })).toBe(true)
    for (const body of [{ x: n }, { deep: [{ x: n }] }]) {
      const r = precheckEnvelope({ ...good, record: { ...good.record, body } }, null)
      expect(r.ok ? 'OK' : r.code).toBe('INVALID_RECORD')
    }
    const r = precheckEnvelope({ ...good, record: { ...good.record, clock: n } }, null)
    expect(r.ok ? 'OK' : r.code).toBe('INVALID_RECORD')
    expect(() => signRecord(Keypair.fromSeed(seed), { ...good.record, body: { x: n } })).toThrow(CanonicalFormError)
  })

  it('a stored_at that is not finite is INVALID_RECORD', () => {
    const r = precheckEnvelope({ ...good, stored_at: Number.POSITIVE_INFINITY }, null)
    expect(r.ok ? 'OK' : r.code).toBe('INVALID_RECORD')
  })
})

function jcsThrows(v: unknown): boolean {
  try {
    jcs(v)
    return false
  } catch {
    return true
  }
}

describe('RFC 8785 vectors (jcs.json)', () => {
  it.each(J.cases)('$name', ({ input, canonical }) => {
    const value: unknown = JSON.parse(input)
    expect(canonicalJson(value)).toBe(canonical)
    expect(jcs(value)).toBe(canonical)
    // Canonical form is a fixed point.
    expect(canonicalJson(JSON.parse(canonical))).toBe(canonical)
  })

  it.each(J.ieee754)('double $bits → $canonical', ({ bits, canonical }) => {
    const n = double(bits)
    expect(canonicalJson(n)).toBe(canonical)
    expect(jcs(n)).toBe(canonical)
    expect(canonicalJson([n, { n }])).toBe(`[${canonical},{"n":${canonical}}]`)
  })

  it.each(J.rejected_ieee754)('double $bits ($why) is rejected', ({ bits }) => {
    expect(() => canonicalJson(double(bits))).toThrow(CanonicalFormError)
    expect(() => canonicalJson({ n: double(bits) })).toThrow(CanonicalFormError)
  })
})
