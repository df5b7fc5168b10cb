import { Keypair } from '@spl/identity'
import { describe, expect, it } from 'vitest'
import type { Candidate } from './ingest.js'
import { type ClockOwner, clockKeyOf, isDuplicate, type KnownId, planIngest } from './plan.js'
import { namespaceOf } from './schema.js'
import { signRecord } from './sign.js'

const alice = Keypair.generate()

function candidate(clock: number, body: Record<string, unknown> = {}, redacted = false): Candidate {
  const s = signRecord(alice, { parents: [], thread: 'th_plan', actor: alice.did, act: 'DO', body, data_type: 'SCALAR', clock })
  return { ok: true, ...s, namespace: namespaceOf(s.record), redacted, storedAt: null }
}

describe('planIngest (pure)', () => {
  it('inserts new records in order and says nothing to delete', () => {
    const a = candidate(0)
    const b = candidate(1)
    const plan = planIngest([a, b], new Map(), new Map())
    expect(plan).toEqual({ outcomes: [{ status: 'stored' }, { status: 'stored' }], deletes: [], inserts: [0, 1] })
  })

  it('a known id is a duplicate; a full record replaces its stored stub', () => {
    const a = candidate(0)
    const b = candidate(1)
    const known = new Map<string, KnownId>([
      [a.id, { redacted: false }],
      [b.id, { redacted: true }],
    ])
    const owners = new Map<string, ClockOwner>([[clockKeyOf(b.record), { id: b.id, redacted: true }]])
    const plan = planIngest([a, b], known, owners)
    expect(plan).toEqual({ outcomes: [{ status: 'duplicate' }, { status: 'replaced' }], deletes: [b.id], inserts: [1] })
  })

  it('a second id at a used clock is CLOCK_CONFLICT', () => {
    const a = candidate(3, { v: 1 })
    const a2 = candidate(3, { v: 2 })
    const plan = planIngest([a, a2], new Map(), new Map())
    expect(plan.outcomes[1]).toMatchObject({ ok: false, code: 'CLOCK_CONFLICT', id: a2.id })
    expect(plan.inserts).toEqual([0])
  })

  it('isDuplicate: only a full record over its stub is not a duplicate', () => {
    expect(isDuplicate(undefined, false)).toBe(false)
    expect(isDuplicate({ redacted: false }, true)).toBe(true)
    expect(isDuplicate({ redacted: true }, true)).toBe(true)
    expect(isDuplicate({ redacted: true }, false)).toBe(false)
  })
})
