import { describe, expect, it } from 'vitest'
import { prng } from '../../../test-utils/prng.js'
import { envelopeSchema, recordSchema } from './schema.js'
import { envelopeShape } from './shape.js'

const ID = 'ab'.repeat(32)
const valid = () =>
  ({
    id: ID,
    record: {
      parents: ['0'.repeat(64), '1'.repeat(64)],
      thread: 'th_demo.x:y-z',
      actor: 'did:key:z6MkehRgf7yJbgaGfYsdoAsKdBPE3dj2CYhowQdcjqSJgvVd',
      act: 'INTEND',
      body: { text: 'hi', namespace: 'team' },
      clock: 7,
      data_type: 'SCALAR',
    } as Record<string, unknown>,
    sig: 'A'.repeat(86),
    stored_at: 1_700_000_000_000,
  }) as Record<string, unknown>

/** What zod makes of an envelope: the fields precheckEnvelope reads, or null when refused. */
function byZod(raw: unknown) {
  const env = envelopeSchema.safeParse(raw)
  if (!env.success) return null
  const rec = recordSchema.safeParse(env.data.record)
  if (!rec.success) return null
  return { id: env.data.id, record: rec.data, sig: env.data.sig, stored_at: env.data.stored_at, redacted: env.data.redacted }
}

const oddValues: unknown[] = [
  undefined,
  null,
  0,
  -0,
  -1,
  1.5,
  2 ** 53,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  '',
  'x',
  'INTEND',
  'VOID',
  'th_',
  'th_a b',
  ID,
  ID.toUpperCase(),
  'z'.repeat(7),
  'z'.repeat(8),
  'z'.repeat(200),
  'z'.repeat(201),
  true,
  false,
  [],
  [ID],
  ['1'.repeat(64), '0'.repeat(64)],
  [ID, ID],
  Array(1001).fill(ID),
  {},
  { a: 1 },
  Object.create({ inherited: 1 }),
  JSON.parse('{"__proto__": {"x": 1}}'),
]

describe('envelopeShape, the checks of envelopeSchema and recordSchema without zod', () => {
  it('takes a well-formed envelope as it is (no copy), with or without the optional fields', () => {
    const e = valid()
    const s = envelopeShape(e)
    expect(s).not.toBeNull()
    expect(s!.record).toBe(e['record'])
    expect(s).toEqual(byZod(e))
    const bare = { id: ID, record: { ...(e['record'] as object), judged_by: null } }
    expect(envelopeShape(bare)).toEqual(byZod(bare))
    const redacted = { ...e, redacted: true, sig: undefined }
    expect(envelopeShape(redacted)).toEqual(byZod(redacted))
  })

  it('never accepts what zod refuses, and gives what zod gives: 20,000 seeded mutations', () => {
    const rand = prng(2024)
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!
    const envelopeKeys = ['id', 'record', 'sig', 'stored_at', 'redacted', 'extra']
    const recordKeys = ['parents', 'thread', 'actor', 'act', 'body', 'clock', 'data_type', 'judged_by', 'extra', '__proto__']
    let fast = 0
    let refused = 0
    for (let i = 0; i < 20_000; i++) {
      const e = valid()
      const r = e['record'] as Record<string, unknown>
      for (let m = Math.floor(rand() * 3); m >= 0; m--) {
        const target = rand() < 0.3 ? e : r
        const key = pick(target === e ? envelopeKeys : recordKeys)
        if (rand() < 0.15) delete target[key]
        else Object.defineProperty(target, key, { value: pick(oddValues), enumerable: true, writable: true, configurable: true })
      }
      const mine = envelopeShape(e)
      const zods = byZod(e)
      if (zods === null) refused++
      if (mine !== null) {
        fast++
        expect(zods, JSON.stringify(e)).not.toBeNull()
        expect(mine).toEqual(zods)
      }
    }
    // Both sides of the comparison were exercised.
    expect(fast).toBeGreaterThan(1_000)
    expect(refused).toBeGreaterThan(5_000)
  })

  it('leaves to zod the values that are not plain objects', () => {
    expect(envelopeShape(null)).toBeNull()
    expect(envelopeShape([valid()])).toBeNull()
    expect(envelopeShape(Object.assign(Object.create({ x: 1 }), valid()))).toBeNull()
    expect(envelopeShape({ ...valid(), record: new Map() })).toBeNull()
  })
})
