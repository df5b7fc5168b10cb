import crypto from 'node:crypto'
import { Keypair } from '@spl/identity'
import { type Act, type RecordFields, RecordStore, signRecord } from '@spl/records'
import Database from 'better-sqlite3'
import { Kysely, SqliteDialect } from 'kysely'
import { describe, expect, it } from 'vitest'
import { consentFilter } from './filter.js'
import { CONSENT_THREAD } from './grants.js'
import { NAMESPACE_REGISTRY_THREAD, NamespaceRejectedError } from './namespace.js'
import { ConsentRegistry, type RegistryRecord } from './registry.js'

const SELF = Keypair.generate().did
const OTHER = Keypair.generate().did
const CALLER = Keypair.generate().did
const NOW = Date.now()

function rec(thread: string, clock: number, body: Record<string, unknown>, opts: { actor?: string; act?: Act } = {}): RegistryRecord {
  const record: RecordFields = {
    parents: [],
    thread,
    actor: opts.actor ?? SELF,
    act: opts.act ?? 'LEARN',
    body,
    clock,
    data_type: 'SCALAR',
  }
  return { id: crypto.randomBytes(32).toString('hex'), record, stored_at: NOW + clock }
}

const ns = (name: string, status: string, clock: number, opts: { actor?: string; act?: Act; description?: unknown } = {}) =>
  rec(
    NAMESPACE_REGISTRY_THREAD,
    clock,
    { kind: 'core.namespace.v1', namespace: name, status, description: opts.description ?? `${name} (${status})` },
    opts,
  )

let grantSeq = 0
function grantBodyOf(extra: Record<string, unknown> = {}): Record<string, unknown> {
  grantSeq++
  return {
    kind: 'core.consent.v1',
    grant_id: `cg_${grantSeq.toString(16).padStart(12, '0')}`,
    source_namespace: 'default',
    target_namespace: 'partner-team',
    hash_levels: ['L0', 'L1', 'L2', 'L3'],
    threads: '*',
    ...extra,
  }
}
const grantRec = (clock: number, body: Record<string, unknown>, opts: { actor?: string; act?: Act } = {}) =>
  rec(CONSENT_THREAD, clock, body, opts)
const revokeRec = (clock: number, grantId: unknown, opts: { actor?: string; act?: Act } = {}) =>
  rec(CONSENT_THREAD, clock, { kind: 'core.consent.revoke.v1', grant_id: grantId }, opts)
const bindRec = (clock: number, did: unknown, namespace: unknown, opts: { actor?: string } = {}) =>
  rec(CONSENT_THREAD, clock, { kind: 'core.consent.bind.v1', did, bound_namespace: namespace }, opts)
const unbindRec = (clock: number, did: unknown) => rec(CONSENT_THREAD, clock, { kind: 'core.consent.unbind.v1', did })

function registryOf(...records: RegistryRecord[]): ConsentRegistry {
  const reg = new ConsentRegistry(SELF)
  for (const r of records) reg.apply(r)
  return reg
}

describe('ConsentRegistry: only LEARN records signed by this instance count', () => {
  it('a grant signed here grants; the same grant signed by another DID grants nothing', () => {
    const body = grantBodyOf()
    const forged = registryOf(grantRec(1, body, { actor: OTHER }))
    expect(forged.grants()).toEqual([])
    expect(forged.grant(body['grant_id'] as string)).toBeUndefined()
    expect(consentFilter('default', 'th_x', { namespace: 'partner-team', boundNamespace: 'partner-team' }, forged.grants(), NOW)).toBe(
      'hide',
    )

    const own = registryOf(grantRec(1, body))
    expect(own.grants().map((g) => g.grant_id)).toEqual([body['grant_id']])
    expect(consentFilter('default', 'th_x', { namespace: 'partner-team', boundNamespace: 'partner-team' }, own.grants(), NOW)).toBe('serve')
  })

  it('a grant body in a record that is not LEARN grants nothing', () => {
    for (const act of ['INTEND', 'DO', 'KNOW', 'PUT'] as const) {
      expect(registryOf(grantRec(1, grantBodyOf(), { act })).grants()).toEqual([])
    }
  })

  it('a revoke signed by another DID does not revoke', () => {
    const body = grantBodyOf()
    const reg = registryOf(grantRec(1, body), revokeRec(2, body['grant_id'], { actor: OTHER }))
    expect(reg.grant(body['grant_id'] as string)?.revoked).toBe(false)
  })

  it('namespaces and bindings signed by another DID, or not LEARN, are ignored', () => {
    const reg = registryOf(
      ns('acme', 'active', 1, { actor: OTHER }),
      ns('beta', 'active', 2, { act: 'KNOW' }),
      bindRec(3, CALLER, 'acme', { actor: OTHER }),
    )
    expect(reg.namespace('acme')).toBeUndefined()
    expect(reg.namespace('beta')).toBeUndefined()
    expect(reg.bindingOf(CALLER)).toBeNull()
    expect(reg.namespaces().map((e) => e.namespace)).toEqual(['default'])
  })

  it('records on other threads are ignored, and each kind counts only on its own thread', () => {
    const reg = registryOf(
      rec('th_elsewhere', 1, grantBodyOf()),
      rec('th_elsewhere', 2, { kind: 'core.namespace.v1', namespace: 'acme', status: 'active' }),
      rec(CONSENT_THREAD, 3, { kind: 'core.namespace.v1', namespace: 'beta', status: 'active' }),
      rec(NAMESPACE_REGISTRY_THREAD, 4, grantBodyOf()),
      rec(NAMESPACE_REGISTRY_THREAD, 5, { kind: 'core.consent.bind.v1', did: CALLER, bound_namespace: 'acme' }),
    )
    expect(reg.grants()).toEqual([])
    expect(reg.namespace('acme')).toBeUndefined()
    expect(reg.namespace('beta')).toBeUndefined()
    expect(reg.bindingOf(CALLER)).toBeNull()
  })

  it('concerns() names exactly the two registry threads', () => {
    expect(ConsentRegistry.concerns(NAMESPACE_REGISTRY_THREAD)).toBe(true)
    expect(ConsentRegistry.concerns(CONSENT_THREAD)).toBe(true)
    expect(ConsentRegistry.concerns('th_demo')).toBe(false)
  })
})

describe('ConsentRegistry: namespaces, latest clock wins', () => {
  it('the record with the highest clock decides, in whatever order records are folded', () => {
    const created = ns('acme', 'active', 1)
    const archived = ns('acme', 'archived', 2)
    const revived = ns('acme', 'active', 3, { description: 'back' })
    for (const order of [
      [created, archived, revived],
      [revived, archived, created],
      [archived, revived, created],
    ]) {
      const reg = registryOf(...order)
      expect(reg.namespace('acme')).toEqual({ kind: 'core.namespace.v1', namespace: 'acme', status: 'active', description: 'back' })
    }
    expect(registryOf(archived, created).namespace('acme')?.status).toBe('archived')
  })

  it('default is always active and no record changes it', () => {
    const reg = registryOf(ns('default', 'deleted', 5), ns('default', 'archived', 6))
    expect(reg.namespace('default')?.status).toBe('active')
    expect(reg.inactiveAncestor('default')).toBeNull()
    expect(reg.namespaces()).toHaveLength(1)
  })

  it('lists namespaces sorted, default included', () => {
    const reg = registryOf(ns('zeta', 'active', 1), ns('acme', 'active', 2), ns('acme/ops', 'archived', 3))
    expect(reg.namespaces().map((e) => `${e.namespace}:${e.status}`)).toEqual([
      'acme:active',
      'acme/ops:archived',
      'default:active',
      'zeta:active',
    ])
  })

  it.each([
    ['another kind', { kind: 'core.namespace.v2', namespace: 'acme', status: 'active' }],
    ['an invalid id', { kind: 'core.namespace.v1', namespace: 'Acme', status: 'active' }],
    ['an unknown status', { kind: 'core.namespace.v1', namespace: 'acme', status: 'enabled' }],
    ['a non-string namespace', { kind: 'core.namespace.v1', namespace: ['acme'], status: 'active' }],
    ['five segments', { kind: 'core.namespace.v1', namespace: 'a/b/c/d/e', status: 'active' }],
  ])('ignores a malformed registry entry (%s)', (_why, body) => {
    const reg = registryOf(rec(NAMESPACE_REGISTRY_THREAD, 1, body))
    expect(reg.namespaces().map((e) => e.namespace)).toEqual(['default'])
  })

  it('a malformed later record does not undo a good earlier one', () => {
    const reg = registryOf(
      ns('acme', 'active', 1),
      rec(NAMESPACE_REGISTRY_THREAD, 2, { kind: 'core.namespace.v1', namespace: 'acme', status: 'gone' }),
    )
    expect(reg.namespace('acme')?.status).toBe('active')
  })

  it('inactiveAncestor / assertUsable: every ancestor must be active', () => {
    const reg = registryOf(ns('acme', 'active', 1), ns('acme/ops', 'active', 2), ns('beta', 'archived', 3), ns('beta/x', 'active', 4))
    expect(reg.inactiveAncestor('acme')).toBeNull()
    expect(reg.inactiveAncestor('acme/ops')).toBeNull()
    expect(reg.inactiveAncestor('acme/dev')).toBe('acme/dev')
    expect(reg.inactiveAncestor('beta/x')).toBe('beta')
    expect(reg.inactiveAncestor('nope/x')).toBe('nope')
    expect(() => reg.assertUsable('acme/ops')).not.toThrow()
    let err: unknown
    try {
      reg.assertUsable('beta/x')
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(NamespaceRejectedError)
    expect((err as NamespaceRejectedError).message).toBe("NAMESPACE_REJECTED: ancestor 'beta' is not Active in the registry.")
    expect((err as NamespaceRejectedError).fix).toBe('spl namespace create beta')
  })
})

describe('ConsentRegistry.namespaceGate (SPEC 7.2)', () => {
  const reg = registryOf(ns('acme', 'active', 1), ns('old', 'archived', 2))
  const entry = (name: string) => ({
    thread: NAMESPACE_REGISTRY_THREAD,
    body: { kind: 'core.namespace.v1', namespace: name, status: 'active' },
  })

  it('a record without body.namespace is in default and always passes', () => {
    expect(reg.namespaceGate({ thread: 'th_x', body: { text: 'hi' } })).toBeNull()
  })

  it('an ordinary record is checked against its own namespace and every ancestor', () => {
    expect(reg.namespaceGate({ thread: 'th_x', body: { namespace: 'acme' } })).toBeNull()
    expect(reg.namespaceGate({ thread: 'th_x', body: { namespace: 'acme/ops' } })).toBe('acme/ops')
    expect(reg.namespaceGate({ thread: 'th_x', body: { namespace: 'old/x' } })).toBe('old')
    expect(reg.namespaceGate({ thread: 'th_x', body: { namespace: 'never' } })).toBe('never')
  })

  it('a registry entry is checked against the parent of the namespace it registers', () => {
    expect(reg.namespaceGate(entry('brand-new'))).toBeNull()
    expect(reg.namespaceGate(entry('acme/ops'))).toBeNull()
    expect(reg.namespaceGate(entry('acme/ops/deep'))).toBe('acme/ops')
    expect(reg.namespaceGate(entry('old/x'))).toBe('old')
    expect(reg.namespaceGate(entry('never/x'))).toBe('never')
  })

  it('the parent rule applies only to core.namespace.v1 on th_namespace_registry', () => {
    expect(reg.namespaceGate({ thread: 'th_x', body: { kind: 'core.namespace.v1', namespace: 'acme/ops', status: 'active' } })).toBe(
      'acme/ops',
    )
    expect(reg.namespaceGate({ thread: NAMESPACE_REGISTRY_THREAD, body: { kind: 'note', namespace: 'acme/ops' } })).toBe('acme/ops')
  })
})

describe('ConsentRegistry: grants and revocation', () => {
  it('grants() lists every grant, most recent first, with its state', () => {
    const a = grantBodyOf({ hash_levels: ['L3', 'L1'] })
    const b = grantBodyOf({ threads: ['th_b', 'th_a', 'th_b'], purpose: 'audit', expires_at: '2030-01-01T00:00:00Z' })
    const ra = grantRec(1, a)
    const reg = registryOf(ra, grantRec(5, b))
    const [first, second] = reg.grants()
    expect(first).toMatchObject({ grant_id: b['grant_id'], clock: 5, threads: ['th_a', 'th_b'], purpose: 'audit', revoked: false })
    expect(first?.expires_at).toBe('2030-01-01T00:00:00.000Z')
    expect(second).toMatchObject({
      grant_id: a['grant_id'],
      clock: 1,
      hash_levels: ['L1', 'L3'],
      record_id: ra.id,
      created_at: ra.stored_at,
      revoked: false,
    })
  })

  it('a revoke after the grant revokes it', () => {
    const body = grantBodyOf()
    const reg = registryOf(grantRec(1, body), revokeRec(2, body['grant_id']))
    expect(reg.grant(body['grant_id'] as string)?.revoked).toBe(true)
    expect(consentFilter('default', 'th_x', { namespace: 'partner-team', boundNamespace: 'partner-team' }, reg.grants(), NOW)).toBe('hide')
  })

  it('a later revoke folded BEFORE its grant (records out of order) still revokes it', () => {
    const body = grantBodyOf()
    const reg = registryOf(revokeRec(2, body['grant_id']), grantRec(1, body))
    expect(reg.grant(body['grant_id'] as string)?.revoked).toBe(true)
  })

  it('a revoke older than the grant (lower clock) does not revoke it, in either fold order', () => {
    const body = grantBodyOf()
    expect(registryOf(revokeRec(1, body['grant_id']), grantRec(2, body)).grant(body['grant_id'] as string)?.revoked).toBe(false)
    expect(registryOf(grantRec(2, body), revokeRec(1, body['grant_id'])).grant(body['grant_id'] as string)?.revoked).toBe(false)
  })

  it('revoking one grant leaves the others alone', () => {
    const keep = grantBodyOf()
    const drop = grantBodyOf()
    const reg = registryOf(grantRec(1, keep), grantRec(2, drop), revokeRec(3, drop['grant_id']))
    expect(reg.grant(keep['grant_id'] as string)?.revoked).toBe(false)
    expect(reg.grant(drop['grant_id'] as string)?.revoked).toBe(true)
  })

  it.each([
    ['a bad grant_id', { grant_id: 'cg_XYZ' }],
    ['no grant_id', { grant_id: undefined }],
    ['an unknown hash level', { hash_levels: ['L0', 'L5'] }],
    ['no hash levels', { hash_levels: [] }],
    ['an invalid target namespace', { target_namespace: 'Partner Team' }],
    ['a missing target namespace', { target_namespace: undefined }],
    ['an invalid source namespace', { source_namespace: 'a//b' }],
    ['an empty thread list', { threads: [] }],
    ['a thread that is not a thread id', { threads: ['shared'] }],
    ['a bad expiry', { expires_at: 'tomorrow' }],
  ])('ignores a malformed grant (%s)', (_why, patch) => {
    const body: Record<string, unknown> = { ...grantBodyOf(), ...patch }
    for (const k of Object.keys(body)) if (body[k] === undefined) delete body[k]
    expect(registryOf(grantRec(1, body)).grants()).toEqual([])
  })

  it('ignores a revoke without a string grant_id', () => {
    const body = grantBodyOf()
    const reg = registryOf(grantRec(1, body), revokeRec(2, 42), revokeRec(3, null))
    expect(reg.grant(body['grant_id'] as string)?.revoked).toBe(false)
  })
})

describe('ConsentRegistry: bindings, latest clock wins', () => {
  it('binds, rebinds and unbinds by clock, whatever the fold order', () => {
    const b1 = bindRec(1, CALLER, 'partner-team')
    const b2 = bindRec(2, CALLER, 'acme/ops')
    const u3 = unbindRec(3, CALLER)
    expect(registryOf(b1).bindingOf(CALLER)).toBe('partner-team')
    expect(registryOf(b1, b2).bindingOf(CALLER)).toBe('acme/ops')
    expect(registryOf(b2, b1).bindingOf(CALLER)).toBe('acme/ops')
    expect(registryOf(b1, b2, u3).bindingOf(CALLER)).toBeNull()
    expect(registryOf(u3, b2, b1).bindingOf(CALLER)).toBeNull()
    expect(registryOf(b1, u3, bindRec(4, CALLER, 'partner-team')).bindingOf(CALLER)).toBe('partner-team')
  })

  it('an unbind older than the bind leaves it bound', () => {
    expect(registryOf(unbindRec(1, CALLER), bindRec(2, CALLER, 'acme')).bindingOf(CALLER)).toBe('acme')
    expect(registryOf(bindRec(2, CALLER, 'acme'), unbindRec(1, CALLER)).bindingOf(CALLER)).toBe('acme')
  })

  it('bindings() lists live bindings only, sorted by DID', () => {
    const other = Keypair.generate().did
    const reg = registryOf(bindRec(1, CALLER, 'acme'), bindRec(2, other, 'partner-team'), unbindRec(3, other))
    expect(reg.bindings()).toEqual([{ did: CALLER, namespace: 'acme' }])
    const two = registryOf(bindRec(1, CALLER, 'acme'), bindRec(2, other, 'partner-team'))
    expect(two.bindings().map((b) => b.did)).toEqual([CALLER, other].sort())
  })

  it('ignores malformed bind records', () => {
    const reg = registryOf(
      bindRec(1, 42, 'acme'),
      bindRec(2, CALLER, 7),
      rec(CONSENT_THREAD, 3, { kind: 'core.consent.bind.v1', did: CALLER }),
    )
    expect(reg.bindingOf(CALLER)).toBeNull()
    expect(reg.bindings()).toEqual([])
  })

  it('a bind record stays in default: it names the namespace in bound_namespace, not namespace', () => {
    const reg = registryOf(rec(CONSENT_THREAD, 1, { kind: 'core.consent.bind.v1', did: CALLER, namespace: 'acme' }))
    expect(reg.bindingOf(CALLER)).toBeNull()
  })
})

/** Stores a LEARN record signed by `key` in `store`; returns its id. */
function putLearn(store: RecordStore) {
  return async (key: Keypair, thread: string, clock: number, body: Record<string, unknown>) => {
    const signed = signRecord(key, { parents: [], thread, actor: key.did, act: 'LEARN', body, clock, data_type: 'SCALAR' })
    const r = await store.appendLocal(signed, Date.now())
    if ('ok' in r) throw new Error(r.message)
    return signed.id
  }
}

describe('ConsentRegistry.load', () => {
  it('folds what the store holds, ignoring records signed by others and redacted stubs', async () => {
    const db = new Kysely({ dialect: new SqliteDialect({ database: new Database(':memory:') }) })
    try {
      const store = await RecordStore.open(db)
      const self = Keypair.generate()
      const other = Keypair.generate()
      const put = putLearn(store)
      const own = grantBodyOf()
      const forged = grantBodyOf()
      const revoked = grantBodyOf()
      await put(self, NAMESPACE_REGISTRY_THREAD, 0, { kind: 'core.namespace.v1', namespace: 'acme', status: 'active', description: '' })
      await put(other, NAMESPACE_REGISTRY_THREAD, 0, { kind: 'core.namespace.v1', namespace: 'evil', status: 'active', description: '' })
      await put(self, CONSENT_THREAD, 0, own)
      await put(other, CONSENT_THREAD, 0, forged)
      await put(self, CONSENT_THREAD, 1, revoked)
      await put(self, CONSENT_THREAD, 2, { kind: 'core.consent.revoke.v1', grant_id: revoked['grant_id'] })
      await put(self, CONSENT_THREAD, 3, { kind: 'core.consent.bind.v1', did: CALLER, bound_namespace: 'acme' })
      await put(other, CONSENT_THREAD, 1, { kind: 'core.consent.unbind.v1', did: CALLER })
      // A redacted stub of a grant-shaped record, even one claiming our DID, is never folded in.
      const stub = signRecord(self, {
        parents: [],
        thread: CONSENT_THREAD,
        actor: self.did,
        act: 'LEARN',
        body: grantBodyOf(),
        clock: 9,
        data_type: 'SCALAR',
      })
      const [outcome] = await store.ingest(
        [
          {
            ok: true,
            id: stub.id,
            record: stub.record,
            canonical: stub.canonical,
            sig: null,
            namespace: 'default',
            redacted: true,
            storedAt: null,
          },
        ],
        { origin: other.did, now: Date.now() },
      )
      expect(outcome).toMatchObject({ status: 'stored' })

      const reg = await ConsentRegistry.load(store, self.did)
      expect(reg.namespaces().map((e) => e.namespace)).toEqual(['acme', 'default'])
      expect(reg.grants().map((g) => [g.grant_id, g.revoked])).toEqual([
        [revoked['grant_id'], true],
        [own['grant_id'], false],
      ])
      expect(reg.grant(forged['grant_id'] as string)).toBeUndefined()
      expect(reg.bindingOf(CALLER)).toBe('acme')
    } finally {
      await db.destroy()
    }
  })
})

describe('ConsentRegistry.refresh', () => {
  it('folds in what another daemon on the same database (a replica) stored since, and reads only that', async () => {
    const db = new Kysely({ dialect: new SqliteDialect({ database: new Database(':memory:') }) })
    try {
      const store = await RecordStore.open(db)
      const self = Keypair.generate()
      const learn = putLearn(store)
      const put = (thread: string, clock: number, body: Record<string, unknown>) => learn(self, thread, clock, body)
      const first = grantBodyOf()
      await put(CONSENT_THREAD, 0, first)
      const replica1 = await ConsentRegistry.load(store, self.did)
      const replica2 = await ConsentRegistry.load(store, self.did)
      expect(await replica2.refresh(store)).toBe(0)
      // Replica 1 stores a namespace, a grant and a revoke of the first grant.
      const later = grantBodyOf()
      await put(NAMESPACE_REGISTRY_THREAD, 0, { kind: 'core.namespace.v1', namespace: 'acme', status: 'active', description: '' })
      await put(CONSENT_THREAD, 1, later)
      await put(CONSENT_THREAD, 2, { kind: 'core.consent.revoke.v1', grant_id: first['grant_id'] })
      expect(replica2.namespace('acme')).toBeUndefined()
      expect(await replica2.refresh(store)).toBe(3)
      expect(replica2.namespace('acme')?.status).toBe('active')
      expect(replica2.grants().map((g) => [g.grant_id, g.revoked])).toEqual([
        [later['grant_id'], false],
        [first['grant_id'], true],
      ])
      // A grant record folded again after its revoke (a refresh re-reading what `apply` saw) stays revoked.
      expect(await replica1.refresh(store)).toBe(3)
      expect(await replica1.refresh(store)).toBe(0)
      expect(replica1.grant(first['grant_id'] as string)?.revoked).toBe(true)
    } finally {
      await db.destroy()
    }
  })
})
