import { describe, expect, it } from 'vitest'
import { type CallerContext, consentFilter, decidingGrant, type FilterAction } from './filter.js'
import type { GrantState, HashLevel } from './grants.js'

const NOW = Date.parse('2026-06-01T12:00:00.000Z')
const HOUR = 3_600_000
const THREAD = 'th_shared'
const OTHER_THREAD = 'th_private'

let nextId = 0
/** A grant as the registry holds it; `clock` orders grants (higher = more recent). */
function grant(source: string, target: string, levels: HashLevel[], clock: number, extra: Partial<GrantState> = {}): GrantState {
  nextId++
  return Object.freeze({
    kind: 'core.consent.v1',
    grant_id: `cg_${nextId.toString(16).padStart(12, '0')}`,
    source_namespace: source,
    target_namespace: target,
    hash_levels: levels,
    threads: '*',
    clock,
    record_id: nextId.toString(16).padStart(64, '0'),
    created_at: NOW - 10 * HOUR + clock,
    revoked: false,
    ...extra,
  }) as GrantState
}

const FULL: HashLevel[] = ['L0', 'L1', 'L2', 'L3']
const NO_BODY: HashLevel[] = ['L1', 'L2', 'L3']
const ONLY_L0: HashLevel[] = ['L0']

const inDefault: CallerContext = { namespace: 'default', boundNamespace: null }
const boundDefaultCallerOfPartner: CallerContext = { namespace: 'default', boundNamespace: 'partner-team' }
const partner: CallerContext = { namespace: 'partner-team', boundNamespace: 'partner-team' }
const opsBound: CallerContext = { namespace: 'acme/ops', boundNamespace: 'acme/ops' }
const opsUnbound: CallerContext = { namespace: 'acme/ops', boundNamespace: null }
const opsBoundElsewhere: CallerContext = { namespace: 'acme/ops', boundNamespace: 'acme' }

interface Row {
  name: string
  record: string
  thread?: string
  caller: CallerContext
  grants: GrantState[]
  want: FilterAction
}

const olderL0 = grant('default', 'partner-team', FULL, 1)
const newerNoBody = grant('default', 'partner-team', NO_BODY, 2)
const olderNoBody = grant('default', 'partner-team', NO_BODY, 3)
const newerL0 = grant('default', 'partner-team', FULL, 4)
const expiredNewerNoBody = grant('default', 'partner-team', NO_BODY, 9, { expires_at: new Date(NOW - 1).toISOString() })
const revokedNewerNoBody = grant('default', 'partner-team', NO_BODY, 9, { revoked: true })
const scopedNewerNoBody = grant('default', 'partner-team', NO_BODY, 9, { threads: [OTHER_THREAD] })

const table: Row[] = [
  // 1. R = T
  { name: 'same namespace default, unbound caller → served', record: 'default', caller: inDefault, grants: [], want: 'serve' },
  {
    name: 'same namespace default, caller bound elsewhere but claiming default → served',
    record: 'default',
    caller: boundDefaultCallerOfPartner,
    grants: [],
    want: 'serve',
  },
  { name: 'same non-default namespace, caller bound to it → served', record: 'acme/ops', caller: opsBound, grants: [], want: 'serve' },
  {
    name: 'same non-default namespace, caller NOT bound → treated as R≠T: no grant → hidden',
    record: 'acme/ops',
    caller: opsUnbound,
    grants: [],
    want: 'hide',
  },
  {
    name: 'same non-default namespace, caller bound to another namespace → treated as R≠T: hidden',
    record: 'acme/ops',
    caller: opsBoundElsewhere,
    grants: [],
    want: 'hide',
  },
  {
    name: 'same non-default namespace, unbound, an acme/ops → acme/ops grant without L0 → redacted (the grant path decides)',
    record: 'acme/ops',
    caller: opsUnbound,
    grants: [grant('acme/ops', 'acme/ops', NO_BODY, 1)],
    want: 'redact',
  },
  {
    name: 'same non-default namespace, unbound, an acme/ops → acme/ops grant with L0 → served',
    record: 'acme/ops',
    caller: opsUnbound,
    grants: [grant('acme/ops', 'acme/ops', FULL, 1)],
    want: 'serve',
  },
  // 2. R ≠ T
  { name: 'R≠T, grant with L0 → served', record: 'default', caller: partner, grants: [olderL0], want: 'serve' },
  {
    name: 'R≠T, grant with only L0 → served',
    record: 'default',
    caller: partner,
    grants: [grant('default', 'partner-team', ONLY_L0, 1)],
    want: 'serve',
  },
  { name: 'R≠T, grant without L0 → redacted', record: 'default', caller: partner, grants: [olderNoBody], want: 'redact' },
  { name: 'R≠T, no grant → hidden', record: 'default', caller: partner, grants: [], want: 'hide' },
  {
    name: 'R≠T, default records to an unbound default caller never need a grant, but acme/ops records do → hidden',
    record: 'acme/ops',
    caller: inDefault,
    grants: [],
    want: 'hide',
  },
  {
    name: 'R≠T, the only grant expired a millisecond ago → hidden',
    record: 'default',
    caller: partner,
    grants: [grant('default', 'partner-team', FULL, 1, { expires_at: new Date(NOW - 1).toISOString() })],
    want: 'hide',
  },
  {
    name: 'R≠T, the only grant expires exactly now → hidden (expiry is inclusive)',
    record: 'default',
    caller: partner,
    grants: [grant('default', 'partner-team', FULL, 1, { expires_at: new Date(NOW).toISOString() })],
    want: 'hide',
  },
  {
    name: 'R≠T, a grant expiring in the future → served',
    record: 'default',
    caller: partner,
    grants: [grant('default', 'partner-team', FULL, 1, { expires_at: new Date(NOW + HOUR).toISOString() })],
    want: 'serve',
  },
  {
    name: 'R≠T, the only grant is revoked → hidden',
    record: 'default',
    caller: partner,
    grants: [grant('default', 'partner-team', FULL, 1, { revoked: true })],
    want: 'hide',
  },
  {
    name: 'R≠T, a thread-scoped grant covering the thread → served',
    record: 'default',
    caller: partner,
    grants: [grant('default', 'partner-team', FULL, 1, { threads: [OTHER_THREAD, THREAD] })],
    want: 'serve',
  },
  {
    name: 'R≠T, a thread-scoped grant NOT covering the thread → hidden',
    record: 'default',
    caller: partner,
    grants: [grant('default', 'partner-team', FULL, 1, { threads: [OTHER_THREAD] })],
    want: 'hide',
  },
  {
    name: 'R≠T, the thread-scoped grant covers the other thread it names',
    record: 'default',
    thread: OTHER_THREAD,
    caller: partner,
    grants: [grant('default', 'partner-team', FULL, 1, { threads: [OTHER_THREAD] })],
    want: 'serve',
  },
  // Most recent wins
  {
    name: 'most recent wins: a newer grant without L0 beats an older one with L0 → redacted',
    record: 'default',
    caller: partner,
    grants: [olderL0, newerNoBody],
    want: 'redact',
  },
  {
    name: 'most recent wins whatever the list order (newer first) → redacted',
    record: 'default',
    caller: partner,
    grants: [newerNoBody, olderL0],
    want: 'redact',
  },
  {
    name: 'most recent wins: a newer grant with L0 beats an older one without → served',
    record: 'default',
    caller: partner,
    grants: [newerL0, olderNoBody],
    want: 'serve',
  },
  {
    name: 'an expired newer grant falls back to the older valid one (L0) → served',
    record: 'default',
    caller: partner,
    grants: [expiredNewerNoBody, olderL0],
    want: 'serve',
  },
  {
    name: 'a revoked newer grant falls back to the older valid one (L0) → served',
    record: 'default',
    caller: partner,
    grants: [olderL0, revokedNewerNoBody],
    want: 'serve',
  },
  {
    name: 'a newer grant that does not cover the thread falls back to the older one covering it → served',
    record: 'default',
    caller: partner,
    grants: [scopedNewerNoBody, olderL0],
    want: 'serve',
  },
  // Grants for other (source, target) pairs
  {
    name: 'a grant to another target namespace is ignored → hidden',
    record: 'default',
    caller: partner,
    grants: [grant('default', 'other-team', FULL, 1)],
    want: 'hide',
  },
  {
    name: 'a grant from another source namespace is ignored → hidden',
    record: 'default',
    caller: partner,
    grants: [grant('acme', 'partner-team', FULL, 1)],
    want: 'hide',
  },
  {
    name: 'the reverse direction (T → R) grants nothing → hidden',
    record: 'default',
    caller: partner,
    grants: [grant('partner-team', 'default', FULL, 1)],
    want: 'hide',
  },
  {
    name: 'a grant from a parent namespace does not cover its children (grants are exact) → hidden',
    record: 'acme/ops',
    caller: partner,
    grants: [grant('acme', 'partner-team', FULL, 1)],
    want: 'hide',
  },
  {
    name: 'a grant to a parent namespace does not reach callers of a child namespace → hidden',
    record: 'default',
    caller: opsBound,
    grants: [grant('default', 'acme', FULL, 1)],
    want: 'hide',
  },
  {
    name: 'a newer grant for another pair does not shadow the matching older one → served',
    record: 'default',
    caller: partner,
    grants: [olderL0, grant('default', 'other-team', NO_BODY, 99), grant('acme', 'partner-team', NO_BODY, 98)],
    want: 'serve',
  },
]

describe('consentFilter (SPEC 6.3): every branch', () => {
  it.each(table)('$name', ({ record, thread, caller, grants, want }) => {
    expect(consentFilter(record, thread ?? THREAD, caller, grants, NOW)).toBe(want)
  })

  it('is pure: same inputs give the same answer, and nothing it is given is changed', () => {
    const grants = Object.freeze([olderL0, newerNoBody, expiredNewerNoBody])
    const caller = Object.freeze({ ...partner })
    const before = JSON.stringify({ grants, caller })
    const answers = Array.from({ length: 5 }, () => consentFilter('default', THREAD, caller, grants, NOW))
    expect(new Set(answers)).toEqual(new Set(['redact']))
    expect(JSON.stringify({ grants, caller })).toBe(before)
  })

  it('depends on the time it is given, not the wall clock', () => {
    const g = grant('default', 'partner-team', FULL, 1, { expires_at: '2030-01-01T00:00:00.000Z' })
    expect(consentFilter('default', THREAD, partner, [g], Date.parse('2029-12-31T23:59:59.999Z'))).toBe('serve')
    expect(consentFilter('default', THREAD, partner, [g], Date.parse('2030-01-01T00:00:00.000Z'))).toBe('hide')
    const past = grant('default', 'partner-team', FULL, 1, { expires_at: '2001-01-01T00:00:00.000Z' })
    expect(consentFilter('default', THREAD, partner, [past], Date.parse('2000-06-01T00:00:00.000Z'))).toBe('serve')
  })
})

describe('decidingGrant', () => {
  it('returns the most recent unrevoked, unexpired grant covering the thread for exactly (R, T)', () => {
    const all = [olderL0, newerNoBody, expiredNewerNoBody, revokedNewerNoBody, scopedNewerNoBody, grant('default', 'other-team', FULL, 50)]
    expect(decidingGrant(all, 'default', 'partner-team', THREAD, NOW)?.grant_id).toBe(newerNoBody.grant_id)
    expect(decidingGrant(all, 'default', 'partner-team', OTHER_THREAD, NOW)?.grant_id).toBe(scopedNewerNoBody.grant_id)
    expect(decidingGrant([expiredNewerNoBody, olderL0], 'default', 'partner-team', THREAD, NOW)?.grant_id).toBe(olderL0.grant_id)
  })

  it('is undefined when nothing decides', () => {
    expect(decidingGrant([], 'default', 'partner-team', THREAD, NOW)).toBeUndefined()
    expect(decidingGrant([expiredNewerNoBody, revokedNewerNoBody], 'default', 'partner-team', THREAD, NOW)).toBeUndefined()
    expect(decidingGrant([olderL0], 'partner-team', 'default', THREAD, NOW)).toBeUndefined()
  })
})
