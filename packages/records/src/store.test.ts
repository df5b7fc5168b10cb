import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Keypair } from '@spl/identity'
import Database from 'better-sqlite3'
import { Kysely, SqliteDialect, sql } from 'kysely'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { dialectTitle, sharedPgCluster, skipDialect, TEST_DIALECTS, type TestDialect } from '../../../test-utils/dialects.js'
import { openPgKysely } from '../../../test-utils/pg-cluster.js'
import { type Candidate, precheckEnvelope } from './ingest.js'
import { migrateRecords } from './migrations.js'
import { rowToEnvelope, rowToEnvelopeJson } from './rows.js'
import type { RecordFields } from './schema.js'
import { type SignedRecord, signRecord, toEnvelope, verifyRecordSignature } from './sign.js'
import { RecordStore } from './store.js'
import type { RecordsTables } from './tables.js'

const alice = Keypair.fromSeed(Uint8Array.from({ length: 32 }, (_, i) => i))
const bob = Keypair.fromSeed(Uint8Array.from({ length: 32 }, (_, i) => 0x20 + i))

let dir: string
const open: Kysely<RecordsTables>[] = []

const pgc = sharedPgCluster()
/** The dialect the running suite uses, and its database on PostgreSQL. */
let dialect: TestDialect = 'sqlite'
let pgUrl = ''

/** A kysely over a real SQLite file in WAL mode, as the daemon opens it (or the suite's PostgreSQL database). */
function openDb(file = join(dir, 'spl.db')): Kysely<RecordsTables> {
  if (dialect === 'postgres') {
    const db = openPgKysely(pgUrl) as Kysely<RecordsTables>
    open.push(db)
    return db
  }
  const sqlite = new Database(file)
  sqlite.pragma('journal_mode = WAL')
  const db = new Kysely<RecordsTables>({ dialect: new SqliteDialect({ database: sqlite }) })
  open.push(db)
  return db
}

async function close(db: Kysely<RecordsTables>): Promise<void> {
  open.splice(open.indexOf(db), 1)
  await db.destroy()
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'spl-records-'))
})
afterEach(async () => {
  for (const db of open.splice(0)) await db.destroy()
  rmSync(dir, { recursive: true, force: true })
})

function sign(kp: Keypair, fields: Partial<RecordFields> & { clock: number }, thread = 'th_a'): SignedRecord {
  return signRecord(kp, {
    parents: [],
    thread,
    actor: kp.did,
    act: 'DO',
    body: { text: `clock ${fields.clock}` },
    data_type: 'SCALAR',
    ...fields,
  })
}

/** The candidate a peer's envelope becomes after the ingest prechecks. */
function candidate(s: SignedRecord): Candidate {
  const r = precheckEnvelope(toEnvelope(s, 1), null)
  if (!r.ok) throw new Error(`precheck failed: ${r.code}`)
  return r
}

/** A redacted stub of `s`, as a source serves it. */
function stub(s: SignedRecord): Candidate {
  const r = precheckEnvelope({ id: s.id, record: { ...s.record, body: { redacted: true } }, stored_at: 1, redacted: true }, null)
  if (!r.ok) throw new Error(`precheck failed: ${r.code}`)
  return r
}

const opts = (now = 1000, origin: string | null = 'did:key:z6Mkpeer') => ({ origin, now })

describe('migrations and epoch', () => {
  it('runs migrations twice without harm, in WAL mode, with the indexes SPEC 11 asks for', async () => {
    const db = openDb()
    await migrateRecords(db as unknown as Kysely<unknown>)
    await migrateRecords(db as unknown as Kysely<unknown>)
    const store = await RecordStore.open(db)
    await migrateRecords(db as unknown as Kysely<unknown>)
    expect(store.epoch).toMatch(/^[0-9a-f]{16}$/)
    const mode = await sql<{ journal_mode: string }>`pragma journal_mode`.execute(db)
    expect(mode.rows[0]?.journal_mode).toBe('wal')
    const applied = await sql<{ name: string }>`select name from spl_records_migrations`.execute(db)
    expect(applied.rows.map((r) => r.name)).toEqual(['0001_records', '0002_id_key'])
    const indexes = await sql<{ name: string; sql: string }>`
      select name, sql from sqlite_master where type = 'index' and tbl_name = 'spl_records' and sql is not null
    `.execute(db)
    const byName = Object.fromEntries(indexes.rows.map((r) => [r.name, r.sql]))
    expect(byName['spl_records_thread_seq']).toMatch(/\("?thread"?, "?seq"?\)/)
    expect(byName['spl_records_actor_thread_clock']).toMatch(/unique index/i)
    expect(byName['spl_records_id_key']).toMatch(/\("?id_key"?\)/)
    const epochs = await sql<{ n: number }>`select count(*) as n from spl_meta where key = 'epoch'`.execute(db)
    expect(epochs.rows[0]?.n).toBe(1)
  })

  it('0002 moves a database made by 0001 to id keys: rows, seqs and the AUTOINCREMENT mark kept', async () => {
    const file = join(dir, 'old.db')
    const old = new Database(file)
    // The schema and bookkeeping 0001 left behind, with three rows, the last one deleted since.
    old.exec(`create table spl_records (seq integer primary key autoincrement, id text not null unique, thread text not null,
      actor text not null, clock integer not null, act text not null, namespace text not null, record text not null, sig text,
      redacted integer not null default 0, stored_at integer not null, origin text);
      create index spl_records_thread_seq on spl_records (thread, seq);
      create unique index spl_records_actor_thread_clock on spl_records (actor, thread, clock);
      create table spl_meta (key text primary key, value text not null);
      insert into spl_meta values ('epoch', '00112233aabbccdd');
      create table spl_records_migrations (name varchar(255) not null primary key, timestamp varchar(255) not null);
      create table spl_records_migrations_lock (id varchar(255) not null primary key, is_locked integer default 0 not null);
      insert into spl_records_migrations values ('0001_records', '2026-11-26T00:00:00.000Z');`)
    const signed = [0, 1, 2].map((clock) => sign(alice, { clock }))
    const insert = old.prepare(
      `insert into spl_records (id, thread, actor, clock, act, namespace, record, sig, stored_at) values (?, ?, ?, ?, ?, 'default', ?, ?, 1)`,
    )
    for (const r of signed) insert.run(r.id, r.record.thread, r.record.actor, r.record.clock, r.record.act, JSON.stringify(r.record), r.sig)
    old.prepare('delete from spl_records where id = ?').run(signed[2]!.id)
    old.close()

    const store = await RecordStore.open(openDb(file))
    expect(store.epoch).toBe('00112233aabbccdd')
    expect((await store.getById(signed[0]!.id))?.seq).toBe(1)
    expect((await store.getById(signed[1]!.id))?.seq).toBe(2)
    expect(await store.getById(signed[2]!.id)).toBeUndefined()
    expect((await store.findExisting(signed.map((r) => r.id))).size).toBe(2)
    // Seq 3 was used once: the next record gets 4, so no cursor ever sees 3 mean two things.
    const [again] = await store.ingest([candidate(sign(alice, { clock: 5 }))], opts())
    expect(again).toEqual({ status: 'stored', seq: 4 })
  })

  it('finds ids by their key and compares them in full: an id sharing the key is another record', async () => {
    const store = await RecordStore.open(openDb())
    const s = sign(alice, { clock: 0 })
    await store.appendLocal(s, 1)
    const twin = `${s.id.slice(0, 13)}${'0'.repeat(51)}`
    expect(await store.getById(twin)).toBeUndefined()
    expect([...(await store.findExisting([twin, s.id])).keys()]).toEqual([s.id])
    expect(await store.getById('not-an-id')).toBeUndefined()
  })

  it('keeps the epoch across reopen; another database gets another epoch', async () => {
    const db1 = openDb()
    const s1 = await RecordStore.open(db1)
    await s1.appendLocal(sign(alice, { clock: 0 }), 1)
    expect((await RecordStore.open(db1)).epoch).toBe(s1.epoch)
    await close(db1)
    const db2 = openDb()
    const s2 = await RecordStore.open(db2)
    expect(s2.epoch).toBe(s1.epoch)
    expect(await s2.count()).toBe(1)
    const other = await RecordStore.open(openDb(join(dir, 'other.db')))
    expect(other.epoch).not.toBe(s1.epoch)
  })
})

for (const d of TEST_DIALECTS) {
  describe.skipIf(skipDialect(d))(`record store ${dialectTitle(d)}`, () => {
    beforeEach(async () => {
      dialect = d
      if (d === 'postgres') pgUrl = await pgc.database()
    })
    afterEach(() => {
      dialect = 'sqlite'
    })

    describe('appendLocal and nextClock', () => {
      it('the same record twice: second created:false, one row, first stored_at kept', async () => {
        const store = await RecordStore.open(openDb())
        const r = sign(alice, { clock: 0 })
        const first = await store.appendLocal(r, 100)
        const second = await store.appendLocal(r, 200)
        if ('ok' in first || 'ok' in second) throw new Error('rejected')
        expect(first.created).toBe(true)
        expect(second.created).toBe(false)
        expect(second.row.seq).toBe(first.row.seq)
        expect(second.row.stored_at).toBe(100)
        expect(first.row).toMatchObject({
          id: r.id,
          sig: r.sig,
          redacted: 0,
          origin: null,
          thread: 'th_a',
          clock: 0,
        })
        // The row handed back for a new record is the row as stored (it is not read back).
        expect(first.row).toEqual(await store.getById(r.id))
        expect(second.row).toEqual(first.row)
        expect(await store.count()).toBe(1)
      })

      it('a different record at a used clock is CLOCK_CONFLICT', async () => {
        const store = await RecordStore.open(openDb())
        await store.appendLocal(sign(alice, { clock: 0 }), 1)
        const clash = sign(alice, { clock: 0, body: { text: 'other' } })
        const out = await store.appendLocal(clash, 2)
        expect(out).toMatchObject({ ok: false, code: 'CLOCK_CONFLICT', id: clash.id })
        expect(await store.getById(clash.id)).toBeUndefined()
      })

      it('nextClock is 0, 1, 2 per (actor, thread), independent across threads and actors', async () => {
        const store = await RecordStore.open(openDb())
        expect(await store.nextClock(alice.did, 'th_a')).toBe(0)
        for (const expected of [0, 1, 2]) {
          const clock = await store.nextClock(alice.did, 'th_a')
          expect(clock).toBe(expected)
          await store.appendLocal(sign(alice, { clock }), 1)
        }
        expect(await store.nextClock(alice.did, 'th_a')).toBe(3)
        expect(await store.nextClock(alice.did, 'th_b')).toBe(0)
        expect(await store.nextClock(bob.did, 'th_a')).toBe(0)
        await store.appendLocal(sign(alice, { clock: 0 }, 'th_b'), 1)
        await store.ingest([candidate(sign(bob, { clock: 7 }))], opts())
        expect(await store.nextClock(alice.did, 'th_b')).toBe(1)
        expect(await store.nextClock(bob.did, 'th_a')).toBe(8)
        expect(await store.nextClock(alice.did, 'th_a')).toBe(3)
        // One more than the highest, even after a gap.
        await store.appendLocal(sign(alice, { clock: 10 }), 1)
        expect(await store.nextClock(alice.did, 'th_a')).toBe(11)
      })

      it('keeps clock 2^53-1 exactly', async () => {
        const store = await RecordStore.open(openDb())
        const r = sign(alice, { clock: Number.MAX_SAFE_INTEGER })
        await store.appendLocal(r, 1)
        expect((await store.getById(r.id))?.clock).toBe(Number.MAX_SAFE_INTEGER)
      })
    })

    describe('ingest', () => {
      it('stores new records with origin and time; a record already stored is a silent duplicate', async () => {
        const store = await RecordStore.open(openDb())
        const a = sign(alice, { clock: 0 })
        const b = sign(bob, { clock: 0 })
        const out1 = await store.ingest([candidate(a), candidate(b)], opts(500))
        expect(out1).toEqual([
          { status: 'stored', seq: expect.any(Number) },
          { status: 'stored', seq: expect.any(Number) },
        ])
        const seqs = out1.map((o) => ('seq' in o ? o.seq : -1))
        expect(seqs[1]).toBeGreaterThan(seqs[0]!)
        expect(await store.getById(a.id)).toMatchObject({
          seq: seqs[0],
          stored_at: 500,
          origin: 'did:key:z6Mkpeer',
        })
        const out2 = await store.ingest([candidate(a), candidate(b)], opts(600))
        expect(out2).toEqual([{ status: 'duplicate' }, { status: 'duplicate' }])
        expect(await store.count()).toBe(2)
        expect((await store.getById(a.id))?.stored_at).toBe(500)
        expect(await store.ingest([], opts())).toEqual([])
      })

      it('equivocation: a second id for the same actor+thread+clock is CLOCK_CONFLICT', async () => {
        const store = await RecordStore.open(openDb())
        const a = sign(alice, { clock: 3 })
        const a2 = sign(alice, { clock: 3, body: { text: 'forked' } })
        await store.ingest([candidate(a)], opts())
        const [out] = await store.ingest([candidate(a2)], opts())
        expect(out).toMatchObject({ ok: false, code: 'CLOCK_CONFLICT', id: a2.id })
        expect(await store.getById(a2.id)).toBeUndefined()
        // Same clock in another thread, or by another actor, is no conflict.
        const other = await store.ingest([candidate(sign(alice, { clock: 3 }, 'th_b')), candidate(sign(bob, { clock: 3 }))], opts())
        expect(other.map((o) => ('status' in o ? o.status : o.code))).toEqual(['stored', 'stored'])
      })

      it('intra-batch: a repeated id is a duplicate, an equivocating id is CLOCK_CONFLICT', async () => {
        const store = await RecordStore.open(openDb())
        const a = sign(alice, { clock: 0 })
        const a2 = sign(alice, { clock: 0, body: { text: 'forked' } })
        const b = sign(alice, { clock: 1 })
        const out = await store.ingest([candidate(a), candidate(a), candidate(a2), candidate(b), candidate(b)], opts())
        expect(out.map((o) => ('status' in o ? o.status : o.code))).toEqual([
          'stored',
          'duplicate',
          'CLOCK_CONFLICT',
          'stored',
          'duplicate',
        ])
        expect(await store.count()).toBe(2)
      })

      it('a redacted stub is replaced by its full record later: new seq, redacted cleared', async () => {
        const store = await RecordStore.open(openDb())
        const full = sign(alice, { clock: 0, body: { text: 'secret', namespace: 'private' } })
        const [s] = await store.ingest([stub(full)], opts(100))
        if (!s || !('seq' in s)) throw new Error('stub not stored')
        const stubRow = await store.getById(full.id)
        expect(stubRow).toMatchObject({ redacted: 1, sig: null, namespace: 'default' })
        expect(JSON.parse(stubRow!.record).body).toEqual({ redacted: true })
        // Something else arrives in between, so the replacement's seq is visibly new.
        await store.ingest([candidate(sign(bob, { clock: 0 }, 'th_b'))], opts(150))
        const [r] = await store.ingest([candidate(full)], opts(200))
        expect(r).toMatchObject({ status: 'replaced' })
        const row = await store.getById(full.id)
        expect(row).toMatchObject({ redacted: 0, sig: full.sig, namespace: 'private', stored_at: 200 })
        expect(row!.seq).toBeGreaterThan(s.seq)
        expect(r && 'seq' in r && r.seq).toBe(row!.seq)
        expect(JSON.parse(row!.record).body).toEqual({ text: 'secret', namespace: 'private' })
        expect(await store.count()).toBe(2)
        // The old seq is gone: a puller reading after it sees only the full record.
        const after = await store.listAfter('th_a', 0, 10)
        expect(after.map((x) => [x.id, x.redacted])).toEqual([[full.id, 0]])
      })

      it('a stub never replaces a full record, and a second stub is a duplicate', async () => {
        const store = await RecordStore.open(openDb())
        const full = sign(alice, { clock: 0 })
        await store.ingest([candidate(full)], opts())
        const before = await store.getById(full.id)
        expect(await store.ingest([stub(full)], opts(999))).toEqual([{ status: 'duplicate' }])
        expect(await store.getById(full.id)).toEqual(before)

        const other = sign(alice, { clock: 1 })
        await store.ingest([stub(other)], opts())
        expect(await store.ingest([stub(other)], opts())).toEqual([{ status: 'duplicate' }])
      })

      it('a stub and its full record in one batch leave one full row', async () => {
        const store = await RecordStore.open(openDb())
        const full = sign(alice, { clock: 0 })
        const out = await store.ingest([stub(full), candidate(full)], opts())
        expect(out).toEqual([{ status: 'duplicate' }, { status: 'stored', seq: expect.any(Number) }])
        const rows = await store.listAfter('th_a', 0, 10)
        expect(rows).toHaveLength(1)
        expect(rows[0]).toMatchObject({ id: full.id, redacted: 0, sig: full.sig })
        // The reverse order: the full record wins and the stub is a duplicate.
        const full2 = sign(alice, { clock: 1 })
        expect(await store.ingest([candidate(full2), stub(full2)], opts())).toEqual([
          { status: 'stored', seq: expect.any(Number) },
          { status: 'duplicate' },
        ])
        expect((await store.getById(full2.id))?.redacted).toBe(0)
      })

      it('a forged stub holding a clock gives the slot up to the verified record', async () => {
        const store = await RecordStore.open(openDb())
        const real = sign(alice, { clock: 0, body: { text: 'real' } })
        // A source invents a stub with another id for alice's clock 0.
        const forged = stub(sign(alice, { clock: 0, body: { text: 'never signed by alice' } }))
        await store.ingest([forged], opts())
        const [out] = await store.ingest([candidate(real)], opts())
        expect(out).toMatchObject({ status: 'stored' })
        expect((await store.listAfter('th_a', 0, 10)).map((r) => r.id)).toEqual([real.id])
        // In one batch too; and a stub arriving after the verified record is the conflict.
        const real1 = sign(alice, { clock: 1 })
        const forged1 = stub(sign(alice, { clock: 1, body: { x: 1 } }))
        const both = await store.ingest([forged1, candidate(real1)], opts())
        expect(both.map((o) => ('status' in o ? o.status : o.code))).toEqual(['CLOCK_CONFLICT', 'stored'])
        const late = await store.ingest([stub(sign(alice, { clock: 1, body: { y: 2 } }))], opts())
        expect(late.map((o) => ('status' in o ? o.status : o.code))).toEqual(['CLOCK_CONFLICT'])
        expect((await store.listAfter('th_a', 0, 10)).map((r) => r.id)).toEqual([real.id, real1.id])
      })

      it('inside a transaction that fails, nothing is stored', async () => {
        const store = await RecordStore.open(openDb())
        const a = sign(alice, { clock: 0 })
        await expect(
          store.transaction(async (trx) => {
            await store.ingest([candidate(a)], opts(), trx)
            expect(await store.getById(a.id, trx)).toBeDefined()
            throw new Error('cursor write failed')
          }),
        ).rejects.toThrow('cursor write failed')
        expect(await store.getById(a.id)).toBeUndefined()
        expect(await store.count()).toBe(0)
      })

      it('handles a batch larger than one INSERT chunk', async () => {
        const store = await RecordStore.open(openDb())
        const batch = Array.from({ length: 1001 }, (_, i) => candidate(sign(alice, { clock: i })))
        const out = await store.ingest(batch, opts())
        const seqs = out.map((o) => ('seq' in o ? o.seq : -1))
        expect(seqs.every((s, i) => i === 0 || s > seqs[i - 1]!)).toBe(true)
        expect(await store.count()).toBe(1001)
        const again = await store.ingest(batch, opts())
        expect(again.every((o) => 'status' in o && o.status === 'duplicate')).toBe(true)
        expect((await store.findExisting(batch.map((c) => c.id))).size).toBe(1001)
        // Each outcome's seq is the seq its row got, also when duplicates sit between new records.
        const mixed = Array.from({ length: 900 }, (_, i) => (i % 3 === 0 ? batch[i]! : candidate(sign(alice, { clock: 2000 + i }))))
        const outMixed = await store.ingest(mixed, opts())
        for (let i = 0; i < mixed.length; i++) {
          const o = outMixed[i]!
          if (i % 3 === 0) expect(o).toEqual({ status: 'duplicate' })
          else expect('seq' in o && o.seq).toBe((await store.getById(mixed[i]!.id))!.seq)
        }
      })
    })

    describe('reading', () => {
      it('listAfter pages through one thread in store order', async () => {
        const store = await RecordStore.open(openDb())
        const mine: string[] = []
        for (let i = 0; i < 25; i++) {
          const a = sign(alice, { clock: i })
          mine.push(a.id)
          await store.appendLocal(a, i)
          // Interleave another thread so seqs of th_a have gaps.
          await store.appendLocal(sign(alice, { clock: i }, 'th_b'), i)
        }
        const seen: string[] = []
        let after = 0
        let pages = 0
        for (;;) {
          const page = await store.listAfter('th_a', after, 10)
          if (page.length === 0) break
          pages++
          expect(page.length).toBeLessThanOrEqual(10)
          expect(page.every((r) => r.thread === 'th_a' && r.seq > after)).toBe(true)
          seen.push(...page.map((r) => r.id))
          after = page.at(-1)!.seq
        }
        expect(pages).toBe(3)
        expect(seen).toEqual(mine)
        expect(await store.listAfter('th_a', after, 10)).toEqual([])
        expect(await store.listAfter('th_none', 0, 10)).toEqual([])
        expect(await store.headSeq()).toBe(50)
        expect(await store.count()).toBe(50)
        expect(await store.listThreads()).toEqual([
          { thread: 'th_b', records: 25, last_seq: 50 },
          { thread: 'th_a', records: 25, last_seq: 49 },
        ])
      })

      it('an empty store: headSeq 0, no threads', async () => {
        const store = await RecordStore.open(openDb())
        expect(await store.headSeq()).toBe(0)
        expect(await store.listThreads()).toEqual([])
        expect(await store.findExisting([])).toEqual(new Map())
      })

      it('rowToEnvelopeJson parses to rowToEnvelope, and stored envelopes still verify', async () => {
        const store = await RecordStore.open(openDb())
        const records = [
          sign(alice, { clock: 0, body: { text: 'é 😀 "quoted" \\ \u2028', n: [1e21, 0.1, -0, 1e-7] } }),
          sign(alice, { clock: 1, parents: [], body: {}, act: 'KNOW', data_type: 'VOID' }),
          signRecord(alice, {
            parents: [],
            thread: 'th_a',
            actor: alice.did,
            act: 'DO',
            body: { text: 'judged' },
            clock: 2,
            data_type: 'SCALAR',
            judged_by: 'a'.repeat(64),
          }),
        ]
        for (const r of records) await store.appendLocal(r, 1_700_000_000_123)
        const hidden = sign(bob, { clock: 0 })
        await store.ingest([stub(hidden)], opts())
        const rows = await store.listAfter('th_a', 0, 100)
        expect(rows).toHaveLength(4)
        for (const row of rows) {
          const env = rowToEnvelope(row)
          expect(JSON.parse(rowToEnvelopeJson(row))).toEqual(env)
          const check = precheckEnvelope(JSON.parse(rowToEnvelopeJson(row)), 'th_a')
          expect(check.ok).toBe(true)
          if (!check.ok) continue
          if (row.id === hidden.id) {
            expect(env).toMatchObject({ id: hidden.id, redacted: true })
            expect(env.sig).toBeUndefined()
            expect(rowToEnvelopeJson(row)).toContain('"redacted":true')
          } else {
            expect(env.redacted).toBeUndefined()
            expect(check.id).toBe(row.id)
            expect(verifyRecordSignature(check.record.actor, check.canonical, check.sig!)).toBe(true)
          }
        }
        expect(rowToEnvelope(rows[2]!).record.judged_by).toBe('a'.repeat(64))
        expect(rowToEnvelope(rows[0]!)).toEqual({
          ...toEnvelope(records[0]!, 1_700_000_000_123),
          record: expect.any(Object),
        })
      })
    })

    describe('ingestRows', () => {
      it('hands back the inserted rows as stored, in store order, and nothing for duplicates', async () => {
        const store = await RecordStore.open(openDb())
        const a = sign(alice, { clock: 0 })
        const b = sign(alice, { clock: 1 })
        const first = await store.ingestRows([candidate(a), candidate(b)], opts(500))
        expect(first.rows.map((r) => r.id)).toEqual([a.id, b.id])
        expect(first.rows).toEqual(await store.listAfter('th_a', 0, 10))
        const again = await store.ingestRows([candidate(a)], opts(600))
        expect(again).toEqual({ outcomes: [{ status: 'duplicate' }], rows: [] })
      })
    })
  })
}
