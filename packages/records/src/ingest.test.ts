import { Keypair } from '@spl/identity'
import { describe, expect, it } from 'vitest'
import { prng } from '../../../test-utils/prng.js'
import { type Candidate, precheckEnvelope, REJECTION_CODES } from './ingest.js'
import { namespaceOf, type RecordFields } from './schema.js'
import { signRecord, toEnvelope } from './sign.js'

const alice = Keypair.fromSeed(Uint8Array.from({ length: 32 }, (_, i) => i))

function signed(body: Record<string, unknown> = { text: 'hi' }, thread = 'th_demo') {
  return signRecord(alice, {
    parents: [],
    thread,
    actor: alice.did,
    act: 'INTEND',
    body,
    clock: 0,
    data_type: 'SCALAR',
  })
}

function ok(raw: unknown, thread: string | null = null): Candidate {
  const r = precheckEnvelope(raw, thread)
  if (!r.ok) throw new Error(`expected a candidate, got ${r.code}: ${r.message}`)
  return r
}
const code = (raw: unknown, thread: string | null = null) => {
  const r = precheckEnvelope(raw, thread)
  return r.ok ? 'OK' : r.code
}

describe('precheckEnvelope', () => {
  it('lists the rejection codes in SPEC 2.4 order', () => {
    expect(REJECTION_CODES).toEqual([
      'INVALID_RECORD',
      'THREAD_MISMATCH',
      'HASH_MISMATCH',
      'UNVERIFIABLE_ACTOR',
      'SIGNATURE_INVALID',
      'NAMESPACE_REJECTED',
      'CLOCK_CONFLICT',
    ])
  })

  it('gives a candidate with the canonical form, the namespace and the source time', () => {
    const s = signed({ text: 'hi', namespace: 'team/alpha' })
    const c = ok(toEnvelope(s, 1234), 'th_demo')
    expect(c).toEqual({
      ok: true,
      id: s.id,
      record: s.record,
      canonical: s.canonical,
      sig: s.sig,
      namespace: 'team/alpha',
      redacted: false,
      storedAt: 1234,
    })
    expect(ok({ id: s.id, record: s.record, sig: s.sig }).storedAt).toBeNull()
    expect(ok({ ...toEnvelope(s, 1), redacted: false }).redacted).toBe(false)
  })

  it('namespace is body.namespace when a string, default otherwise', () => {
    expect(ok(toEnvelope(signed({}), 1)).namespace).toBe('default')
    expect(ok(toEnvelope(signed({ namespace: 42 }), 1)).namespace).toBe('default')
    expect(ok(toEnvelope(signed({ namespace: { a: 1 } }), 1)).namespace).toBe('default')
    expect(namespaceOf({ body: { namespace: 'x' } })).toBe('x')
  })

  it('a redacted stub skips hash and signature but not schema, thread or actor checks', () => {
    const s = signed()
    const stub = { id: s.id, record: { ...s.record, body: { redacted: true } }, redacted: true, stored_at: 5 }
    expect(ok(stub)).toMatchObject({ id: s.id, sig: null, redacted: true, namespace: 'default', storedAt: 5 })
    // A stub that still carries a sig: the sig is not trusted or kept.
    expect(ok({ ...stub, sig: 'x' }).sig).toBeNull()
    expect(code({ ...stub, record: { ...stub.record, thread: 'nope' } })).toBe('INVALID_RECORD')
    expect(code({ ...stub, record: { ...stub.record, body: [] } })).toBe('INVALID_RECORD')
    expect(code(stub, 'th_other')).toBe('THREAD_MISMATCH')
    expect(code({ ...stub, record: { ...stub.record, actor: 'did:web:example.com' } })).toBe('UNVERIFIABLE_ACTOR')
    expect(code({ ...stub, id: 'nope' })).toBe('INVALID_RECORD')
    // Without the flag the same envelope must hash.
    expect(code({ ...stub, redacted: undefined, sig: s.sig })).toBe('HASH_MISMATCH')
    expect(code({ ...stub, redacted: 'yes' })).toBe('INVALID_RECORD')
  })

  it('null expected thread skips the thread check; a given one enforces it exactly', () => {
    const env = toEnvelope(signed({}, 'th_demo'), 1)
    expect(code(env, null)).toBe('OK')
    expect(code(env, 'th_demo')).toBe('OK')
    expect(code(env, 'th_Demo')).toBe('THREAD_MISMATCH')
    expect(code(env, 'th_demo2')).toBe('THREAD_MISMATCH')
  })

  it('the rejection carries the claimed id and a message naming the field', () => {
    const s = signed()
    const r = precheckEnvelope({ ...toEnvelope(s, 1), record: { ...s.record, clock: -1 } }, null)
    expect(r).toMatchObject({ ok: false, code: 'INVALID_RECORD', id: s.id })
    expect(!r.ok && r.message).toMatch(/clock/)
    const e = precheckEnvelope({ id: 'x', record: s.record, sig: s.sig }, null)
    expect(e).toMatchObject({ ok: false, code: 'INVALID_RECORD', id: null })
    expect(!e.ok && e.message).toMatch(/id/)
  })

  it('never throws, whatever arrives (2000 seeded mutations of a valid envelope)', () => {
    const rand = prng(99)
    const s = signed({ text: 'hi', nested: { a: [1, 2] } })
    const base = toEnvelope(s, 1) as unknown as Record<string, unknown>
    const junk: unknown[] = [
      null,
      undefined,
      0,
      -1,
      Number.NaN,
      '',
      'x'.repeat(10_000),
      [],
      {},
      [base],
      true,
      { __proto__: null },
      JSON.parse('{"__proto__":{"id":"x"}}'),
      '\ud800',
      { a: { b: { c: {} } } },
      Array.from({ length: 2000 }, () => 'a'.repeat(64)),
    ]
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!
    const counts = new Map<string, number>()
    for (let i = 0; i < 2000; i++) {
      const env: Record<string, unknown> = { ...base, record: { ...(base['record'] as RecordFields) } }
      const target = rand() < 0.5 ? env : (env['record'] as Record<string, unknown>)
      const key = pick([...Object.keys(target), 'extra', '__proto__'])
      if (rand() < 0.2) delete target[key]
      else target[key] = pick(junk)
      const thread = pick([null, 'th_demo', 'th_other'])
      let result: ReturnType<typeof precheckEnvelope> | undefined
      expect(() => {
        result = precheckEnvelope(env, thread)
      }).not.toThrow()
      const c = result!.ok ? 'OK' : result!.code
      counts.set(c, (counts.get(c) ?? 0) + 1)
      if (!result!.ok) expect(REJECTION_CODES).toContain(result!.code)
    }
    for (const raw of junk) expect(() => precheckEnvelope(raw, null)).not.toThrow()
    // The mutations reach several checks, not just the schema.
    expect(counts.get('INVALID_RECORD')).toBeGreaterThan(100)
    expect(counts.get('OK')).toBeGreaterThan(10)
    expect(counts.get('THREAD_MISMATCH')).toBeGreaterThan(10)
  })

  it('a huge parents list is refused', () => {
    const s = signed()
    const parents = Array.from({ length: 1001 }, (_, i) => i.toString(16).padStart(64, '0'))
    expect(code({ ...toEnvelope(s, 1), record: { ...s.record, parents } })).toBe('INVALID_RECORD')
  })
})
