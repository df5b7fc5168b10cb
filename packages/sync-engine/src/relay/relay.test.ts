import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Keypair, sealTo } from '@spl/identity'
import { Kysely, type SqliteDatabase, SqliteDialect } from 'kysely'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { dialectTitle, sharedPgCluster, skipDialect, TEST_DIALECTS, type TestDialect } from '../../../../test-utils/dialects.js'
import { openPgKysely } from '../../../../test-utils/pg-cluster.js'
import { DepositRefusedError, openDeposit, sealDeposit } from './deposit.js'
import { type MailboxError, Mailboxes } from './mailboxes.js'
import { FeedReaders } from './readers.js'

// SPEC 10: the sealed deposit (signed by the sender, sealed to the receiver) and the relay's
// mailboxes on a real SQLite file: quotas, persistence, expiry, and nothing in clear.

type SqliteCtor = new (file: string) => SqliteDatabase & { close(): void }
const Database = createRequire(new URL('../../../records/package.json', import.meta.url))('better-sqlite3') as SqliteCtor

let dir: string
const open: Kysely<unknown>[] = []
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'spl-relay-'))
})
afterEach(async () => {
  for (const db of open.splice(0)) await db.destroy()
  rmSync(dir, { recursive: true, force: true })
})

function database(): Kysely<unknown> {
  const db =
    dialect === 'postgres'
      ? openPgKysely(pgUrl)
      : new Kysely<unknown>({ dialect: new SqliteDialect({ database: new Database(join(dir, 'relay.db')) }) })
  open.push(db)
  return db
}

const alice = Keypair.generate()
const bob = Keypair.generate()
const carol = Keypair.generate()
const envelope = (n: number) => JSON.stringify({ id: 'x'.repeat(64), record: { n, body: { text: `secret body ${n}` } } })

const pgc = sharedPgCluster()
/** The dialect of the running suite, and its database on PostgreSQL (a fresh one per test). */
let dialect: TestDialect = 'sqlite'
let pgUrl = ''

for (const d of TEST_DIALECTS) {
  describe.skipIf(skipDialect(d))(`relay ${dialectTitle(d)}`, () => {
    beforeEach(async () => {
      dialect = d
      if (d === 'postgres') pgUrl = await pgc.database()
    })
    afterEach(() => {
      dialect = 'sqlite'
    })

    describe('sealed deposits', () => {
      it('opens for its receiver with the sender, thread and records it was made with', async () => {
        const { id, sealed } = await sealDeposit(alice, bob.did, { thread: 'th_x', records: [envelope(1), envelope(2)], ttlMs: 60_000 })
        expect(sealed).not.toContain('secret body')
        const d = await openDeposit(bob, sealed)
        expect(d).toMatchObject({ id, sender: alice.did, thread: 'th_x' })
        expect(d.records).toHaveLength(2)
      })

      it('refuses another receiver, an expired deposit and a changed one', async () => {
        const { sealed } = await sealDeposit(alice, bob.did, { thread: 'th_x', records: [envelope(1)], ttlMs: 1000, now: 1_000 })
        await expect(openDeposit(carol, sealed)).rejects.toMatchObject({ code: 'DEPOSIT_UNSEALABLE' })
        await expect(openDeposit(bob, sealed, 5_000)).rejects.toMatchObject({ code: 'DEPOSIT_EXPIRED' })
        const parts = sealed.split('.')
        const ct = Buffer.from(parts[3]!, 'base64url')
        ct[0] = ct[0]! ^ 0xff
        parts[3] = ct.toString('base64url')
        await expect(openDeposit(bob, parts.join('.'), 1_500)).rejects.toMatchObject({ code: 'DEPOSIT_UNSEALABLE' })
      })

      it('refuses a box sealed by someone who is not the signer it claims (a forged payload)', async () => {
        const payload = `{"v":1,"id":"dep_${'0'.repeat(32)}","iss":"${alice.did}","aud":"${bob.did}","thread":"th_x","iat":1,"exp":${Date.now() + 60_000},"records":[]}`
        const forged = await sealTo(bob.did, Buffer.from(`${'A'.repeat(86)}.${payload}`))
        const err = await openDeposit(bob, forged).catch((e) => e)
        expect(err).toBeInstanceOf(DepositRefusedError)
        expect(err.code).toBe('DEPOSIT_FORGED')
      })

      it('refuses a deposit signed for another receiver but sealed to this one', async () => {
        // Carol's deposit for herself, re-sealed to Bob by whoever could open it.
        const payload = `{"v":1,"id":"dep_${'1'.repeat(32)}","iss":"${alice.did}","aud":"${carol.did}","thread":"th_x","iat":1,"exp":${Date.now() + 60_000},"records":[]}`
        const sig = Buffer.from(alice.sign(Buffer.from(`spl-deposit-v1\n${payload}`))).toString('base64url')
        const resealed = await sealTo(bob.did, Buffer.from(`${sig}.${payload}`))
        await expect(openDeposit(bob, resealed)).rejects.toMatchObject({ code: 'DEPOSIT_MISADDRESSED' })
      })
    })

    describe('Mailboxes', () => {
      const sealedFor = async (did: string, n = 1) =>
        (await sealDeposit(alice, did, { thread: 'th_x', records: [envelope(n)], ttlMs: 60_000 })).sealed

      it('takes deposits only for registered receivers, serves them oldest first, and drops them on ack', async () => {
        const m = await Mailboxes.open(database())
        await expect(m.deposit(alice.did, bob.did, await sealedFor(bob.did))).rejects.toMatchObject({
          code: 'RECEIVER_NOT_REGISTERED',
          status: 404,
        })
        expect((await m.register(bob.did)).created).toBe(true)
        expect((await m.register(bob.did)).created).toBe(false)
        const a = await m.deposit(alice.did, bob.did, await sealedFor(bob.did, 1))
        const b = await m.deposit(alice.did, bob.did, await sealedFor(bob.did, 2))
        expect(b.waiting).toBe(2)
        const got = await m.receive(bob.did, 10)
        expect(got.deposits.map((d) => d.id)).toEqual([a.id, b.id])
        expect(got.deposits[0]!.sender).toBe(alice.did)
        expect(await m.ack(bob.did, [a.id, 'mbx_unknown'])).toBe(1)
        expect((await m.receive(bob.did, 10)).deposits.map((d) => d.id)).toEqual([b.id])
        expect(m.counters).toMatchObject({ deposits: 2, deliveries: 1, refused: { RECEIVER_NOT_REGISTERED: 1 } })
      })

      it('refuses a full mailbox (507), a sender over its day (429 with a retry time), a large or malformed deposit', async () => {
        const sealed = await sealedFor(bob.did)
        const m = await Mailboxes.open(database(), { maxWaiting: 2, senderBytesPerDay: sealed.length * 3 })
        await m.register(bob.did)
        await m.register(carol.did)
        await m.deposit(alice.did, bob.did, sealed)
        await m.deposit(alice.did, bob.did, sealed)
        await expect(m.deposit(alice.did, bob.did, sealed)).rejects.toMatchObject({ code: 'MAILBOX_FULL', status: 507 })
        await m.deposit(alice.did, carol.did, await sealedFor(carol.did))
        const err = (await m.deposit(alice.did, carol.did, await sealedFor(carol.did)).catch((e) => e)) as MailboxError
        expect(err).toMatchObject({ code: 'SENDER_QUOTA_EXCEEDED', status: 429 })
        expect(err.retryAfterS).toBeGreaterThan(0)
        expect(err.retryAfterS).toBeLessThanOrEqual(86_400)
        // Another sender has its own day.
        await expect(m.deposit(carol.did, carol.did, await sealedFor(carol.did))).resolves.toMatchObject({ waiting: 2 })
        await expect(m.deposit(alice.did, carol.did, `${sealed}${'A'.repeat(1024 * 1024)}`)).rejects.toMatchObject({ status: 413 })
        await expect(m.deposit(alice.did, carol.did, 'not a jwe')).rejects.toMatchObject({ code: 'DEPOSIT_MALFORMED', status: 400 })
        await expect(m.deposit(alice.did, carol.did, 42)).rejects.toMatchObject({ code: 'DEPOSIT_MALFORMED' })
      })

      it('keeps mailboxes across a restart and sweeps what expired', async () => {
        let now = 1_000_000
        const db = database()
        const m = await Mailboxes.open(db, { ttlMs: 10_000 }, () => now)
        await m.register(bob.did)
        await m.deposit(alice.did, bob.did, await sealedFor(bob.did))
        const again = await Mailboxes.open(db, { ttlMs: 10_000 }, () => now)
        expect(again.isRegistered(bob.did)).toBe(true)
        expect((await again.list())[0]).toMatchObject({ receiver: bob.did, waiting: 1 })
        now += 10_001
        expect((await again.receive(bob.did, 10)).deposits).toHaveLength(0)
        expect(await again.sweep()).toBe(1)
        expect(await again.depth()).toBe(0)
      })

      // Reads the SQLite file's bytes: on PostgreSQL the same rows are checked by the SQLite run.
      it.skipIf(d === 'postgres')('stores no record body or id in clear', async () => {
        const m = await Mailboxes.open(database())
        await m.register(bob.did)
        await m.deposit(alice.did, bob.did, await sealedFor(bob.did, 7))
        for (const db of open.splice(0)) await db.destroy()
        const bytes = readFileSync(join(dir, 'relay.db')).toString('latin1')
        expect(bytes).toContain(bob.did)
        expect(bytes).not.toContain('secret body 7')
        expect(bytes).not.toContain('x'.repeat(64))
      })

      describe('replicas on one database (docs/postgres.md)', () => {
        it('a mailbox opened through one replica takes deposits at the other after its reload, counted against one quota', async () => {
          const m1 = await Mailboxes.open(database(), { maxWaiting: 2 })
          const m2 = await Mailboxes.open(database(), { maxWaiting: 2 })
          await m1.register(bob.did)
          expect(m2.isRegistered(bob.did)).toBe(false)
          await m2.reload()
          expect(m2.isRegistered(bob.did)).toBe(true)
          await m1.deposit(alice.did, bob.did, await sealedFor(bob.did, 1))
          await m1.deposit(alice.did, bob.did, await sealedFor(bob.did, 2))
          await m2.reload()
          await expect(m2.deposit(alice.did, bob.did, await sealedFor(bob.did, 3))).rejects.toMatchObject({ status: 507 })
        })

        it('readers seen by one replica are merged into the other: latest sighting, furthest cursor and deposit', async () => {
          const r1 = new FeedReaders()
          const r2 = new FeedReaders()
          await r1.persistIn(database())
          await r2.persistIn(database())
          const ctx = { namespace: 'default', boundNamespace: null }
          r2.end(r2.begin(bob.did, 'th_r', 5, ctx, false, 1000), 1000)
          const e1 = r1.begin(bob.did, 'th_r', 9, ctx, false, 5000)
          r1.deposited(e1, 7)
          r1.end(e1, 6000)
          await r1.flush()
          await r2.merge()
          expect(r2.list()).toEqual([expect.objectContaining({ did: bob.did, afterSeq: 9, depositedSeq: 7, seenAt: 6000, active: 0 })])
        })
      })
    })
  })
}
