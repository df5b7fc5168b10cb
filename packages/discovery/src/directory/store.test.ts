import { Keypair } from '@spl/identity'
import Database from 'better-sqlite3'
import { Kysely, SqliteDialect } from 'kysely'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type RegistrationInit, signDelete, signRegistration } from './registration.js'
import { DirectoryStore } from './store.js'

const T0 = Date.UTC(2026, 0, 10, 12, 0, 0)
const kp = (n: number) => Keypair.fromSeed(new Uint8Array(32).fill(n))
const alice = kp(1)
const bob = kp(2)
const carol = kp(3)

let clock = T0
let sqlite: Database.Database
let db: Kysely<unknown>
let store: DirectoryStore

async function open(): Promise<{ sqlite: Database.Database; db: Kysely<unknown>; store: DirectoryStore }> {
  const s = new Database(':memory:')
  const k = new Kysely<unknown>({ dialect: new SqliteDialect({ database: s }) })
  return { sqlite: s, db: k, store: await DirectoryStore.open(k, { now: () => clock }) }
}

beforeEach(async () => {
  clock = T0
  ;({ sqlite, db, store } = await open())
})
afterEach(async () => {
  await db.destroy()
})

const reg = (who: Keypair, init: Partial<RegistrationInit> = {}) =>
  signRegistration(who, { url: `http://127.0.0.1:${9100 + who.publicKey[0]!}`, namespaces: ['acme'], now: clock, ...init })

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p
  } catch (err) {
    return (err as { code: string }).code
  }
  return 'ACCEPTED'
}

const rows = (table: string) => Number((sqlite.prepare(`select count(*) as n from ${table}`).get() as { n: number }).n)

describe('DirectoryStore', () => {
  it('registers, and finds the entry by DID, handle and namespace', async () => {
    const jwt = await reg(alice, { handle: 'alice', namespaces: ['acme', 'acme/ops'] })
    const r = await store.register(jwt)
    expect(r.replaced).toBe(false)
    expect(r.entry).toMatchObject({ did: alice.did, handle: 'alice', namespaces: ['acme', 'acme/ops'], jwt })
    expect((await store.resolve(alice.did))?.jwt).toBe(jwt)
    expect((await store.byHandle('alice'))?.did).toBe(alice.did)
    expect((await store.byNamespace('acme/ops')).entries.map((e) => e.did)).toEqual([alice.did])
    expect((await store.byNamespace('other')).entries).toEqual([])
    expect(await store.resolve(bob.did)).toBeUndefined()
  })

  it('replaces on re-registration: new url, handle and namespaces, the old ones gone', async () => {
    await store.register(await reg(alice, { handle: 'alice', namespaces: ['acme'] }))
    clock += 1000
    const r = await store.register(await reg(alice, { url: 'http://10.0.0.9:9100', handle: 'alice2', namespaces: ['beta'] }))
    expect(r.replaced).toBe(true)
    expect((await store.resolve(alice.did))?.url).toBe('http://10.0.0.9:9100')
    expect(await store.byHandle('alice')).toBeUndefined()
    expect((await store.byHandle('alice2'))?.did).toBe(alice.did)
    expect((await store.byNamespace('acme')).entries).toEqual([])
    expect((await store.byNamespace('beta')).entries).toHaveLength(1)
    expect(rows('spl_directory_namespaces')).toBe(1)
  })

  it('refuses an older registration of a DID once a newer is held (a replay cannot roll back)', async () => {
    const old = await reg(alice, { url: 'http://10.0.0.1:9100' })
    clock += 5000
    await store.register(await reg(alice, { url: 'http://10.0.0.2:9100' }))
    expect(await codeOf(store.register(old))).toBe('REGISTRATION_STALE')
    expect((await store.resolve(alice.did))?.url).toBe('http://10.0.0.2:9100')
  })

  it('refuses a handle held by another live DID with HANDLE_TAKEN and stores nothing of it', async () => {
    await store.register(await reg(alice, { handle: 'alice' }))
    expect(await codeOf(store.register(await reg(bob, { handle: 'alice', namespaces: ['zeta'] })))).toBe('HANDLE_TAKEN')
    expect(await store.resolve(bob.did)).toBeUndefined()
    expect((await store.byNamespace('zeta')).entries).toEqual([])
    expect((await store.byHandle('alice'))?.did).toBe(alice.did)
    expect(rows('spl_directory_entries')).toBe(1)
  })

  it('frees a handle when its holder expires', async () => {
    await store.register(await reg(alice, { handle: 'alice', lifetimeS: 60 }))
    clock += 61_000
    await store.register(await reg(bob, { handle: 'alice' }))
    expect((await store.byHandle('alice'))?.did).toBe(bob.did)
  })

  it('leaves an expired entry out of every answer, and prunes it', async () => {
    await store.register(await reg(alice, { handle: 'alice', lifetimeS: 60 }))
    await store.register(await reg(bob, { lifetimeS: 3600 }))
    clock += 60_000
    expect(await store.resolve(alice.did)).toBeUndefined()
    expect(await store.byHandle('alice')).toBeUndefined()
    expect((await store.byNamespace('acme')).entries.map((e) => e.did)).toEqual([bob.did])
    expect((await store.list()).entries.map((e) => e.did)).toEqual([bob.did])
    expect(await store.size()).toBe(1)
    expect(rows('spl_directory_entries')).toBe(2)
    expect(await store.prune()).toBe(1)
    expect(rows('spl_directory_entries')).toBe(1)
    expect(rows('spl_directory_namespaces')).toBe(1)
  })

  it('deletes on the owner’s signed delete only; the deleted registration cannot come back', async () => {
    const jwt = await reg(alice, { handle: 'alice' })
    await store.register(jwt)
    expect(await codeOf(store.remove(alice.did, `Bearer ${await signDelete(bob, { now: clock })}`))).toBe('DELETE_FORBIDDEN')
    expect(await codeOf(store.remove(alice.did, undefined))).toBe('DELETE_UNAUTHORIZED')
    expect(await store.resolve(alice.did)).toBeDefined()
    clock += 1000
    await store.remove(alice.did, `Bearer ${await signDelete(alice, { now: clock })}`)
    expect(await store.resolve(alice.did)).toBeUndefined()
    expect(await store.byHandle('alice')).toBeUndefined()
    expect(rows('spl_directory_namespaces')).toBe(0)
    // The same registration again (a replay, or an import from a mirror that still has it).
    expect(await codeOf(store.register(jwt))).toBe('REGISTRATION_STALE')
    expect((await store.import([jwt])).skipped.map((s) => s.code)).toEqual(['REGISTRATION_STALE'])
    // Nothing more to delete.
    expect(await codeOf(store.remove(alice.did, `Bearer ${await signDelete(alice, { now: clock })}`))).toBe('DIRECTORY_ENTRY_NOT_FOUND')
    // A fresh registration is welcome.
    clock += 1000
    await store.register(await reg(alice, { handle: 'alice' }))
    expect((await store.byHandle('alice'))?.did).toBe(alice.did)
  })

  it('keeps an entry registered after a delete was signed (a replayed delete)', async () => {
    const del = await signDelete(alice, { now: clock })
    clock += 2000
    await store.register(await reg(alice))
    expect(await codeOf(store.remove(alice.did, `Bearer ${del}`))).toBe('DELETE_STALE')
    expect(await store.resolve(alice.did)).toBeDefined()
  })

  it('pages through a namespace and the export', async () => {
    for (const who of [alice, bob, carol]) await store.register(await reg(who))
    const first = await store.byNamespace('acme', { limit: 2 })
    expect(first.entries).toHaveLength(2)
    expect(first.next).toBeDefined()
    const second = await store.byNamespace('acme', { limit: 2, after: first.next })
    expect(second.next).toBeUndefined()
    expect([...first.entries, ...second.entries].map((e) => e.did)).toEqual([alice.did, bob.did, carol.did].sort())
    expect((await store.list({ limit: 1 })).entries).toHaveLength(1)
  })

  it('export → import into a second store gives the same answers', async () => {
    await store.register(await reg(alice, { handle: 'alice', namespaces: ['acme', 'beta'] }))
    await store.register(await reg(bob, { handle: 'bob', namespaces: ['acme'] }))
    await store.register(await reg(carol, { namespaces: ['beta'] }))
    const exported = (await store.list()).entries.map((e) => e.jwt)
    const other = await open()
    try {
      const r = await other.store.import(exported)
      expect(r).toMatchObject({ added: 3, replaced: 0, unchanged: 0, skipped: [] })
      for (const s of [store, other.store]) {
        expect((await s.byNamespace('acme')).entries.map((e) => e.did)).toEqual([alice.did, bob.did].sort())
      }
      expect(await other.store.byNamespace('beta')).toEqual(await store.byNamespace('beta'))
      expect(await other.store.byHandle('bob')).toEqual(await store.byHandle('bob'))
      expect(await other.store.resolve(carol.did)).toEqual(await store.resolve(carol.did))
      expect(await other.store.list()).toEqual(await store.list())
      // Importing again changes nothing.
      expect(await other.store.import(exported)).toMatchObject({ added: 0, unchanged: 3 })
    } finally {
      await other.db.destroy()
    }
  })

  it('imports the good entries and reports the others by index and code', async () => {
    await store.register(await reg(alice, { handle: 'taken' }))
    const good = await reg(bob)
    const clash = await reg(carol, { handle: 'taken' })
    const expired = await reg(kp(4), { lifetimeS: 1, now: clock - 5000 })
    const r = await store.import([good, 'not a jwt', clash, expired, 12])
    expect(r.added).toBe(1)
    expect(r.skipped.map((s) => [s.index, s.code])).toEqual([
      [1, 'REGISTRATION_INVALID'],
      [2, 'HANDLE_TAKEN'],
      [3, 'REGISTRATION_EXPIRED'],
      [4, 'REGISTRATION_INVALID'],
    ])
    expect(await store.size()).toBe(2)
  })

  it('keeps its entries across a reopen (the tables are migrated once)', async () => {
    await store.register(await reg(alice, { handle: 'alice' }))
    const again = await DirectoryStore.open(db, { now: () => clock })
    expect((await again.byHandle('alice'))?.did).toBe(alice.did)
  })
})
