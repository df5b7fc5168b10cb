import { mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Keypair } from '@spl/identity'
import { type Candidate, precheckEnvelope, RecordStore, type Rejection, type SignedRecord, signRecord, toEnvelope } from '@spl/records'
import { Kysely, type SqliteDatabase, SqliteDialect } from 'kysely'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { dialectTitle, sharedPgCluster, skipDialect, TEST_DIALECTS } from '../../../../test-utils/dialects.js'
import { openPgKysely } from '../../../../test-utils/pg-cluster.js'
import { newPair, type Pair } from '../pair.js'
import { SyncEngine } from '../puller/engine.js'
import type { PullCommit } from '../stores.js'
import { KyselySyncStore } from './kysely-store.js'

/**
 * better-sqlite3 is a native module the engine never depends on (SPEC 4.2). These tests borrow
 * the copy that @spl/records keeps as a devDependency, and skip when it is not installed.
 */
type SqliteCtor = new (file: string) => SqliteDatabase & { pragma(s: string): unknown; close(): void }
function loadSqlite(): SqliteCtor | null {
  try {
    const require = createRequire(new URL('../../records/package.json', import.meta.url))
    return require('better-sqlite3') as SqliteCtor
  } catch {
    return null
  }
}
const Database = loadSqlite()

const peer = Keypair.fromSeed(new Uint8Array(32).fill(31))
const local = Keypair.fromSeed(new Uint8Array(32).fill(32))
const THREAD = 'th_kysely'

function sign(clock: number, body: Record<string, unknown> = { text: `clock ${clock}` }): SignedRecord {
  return signRecord(peer, { parents: [], thread: THREAD, actor: peer.did, act: 'DO', body, clock, data_type: 'SCALAR' })
}

function candidate(s: SignedRecord): Candidate {
  const c = precheckEnvelope(toEnvelope(s, 1000), THREAD)
  if (!c.ok) throw new Error(c.code)
  return c
}

function basePair(): Pair {
  return newPair('abcdabcdabcdabcd', peer.did, 'http://peer.test', THREAD, 1)
}

/** The page commit the engine would make: cursor moved, counters folded. */
function pageCommit(pair: Pair, accepted: Candidate[], rejected: Rejection[], cursor: string): PullCommit {
  const totals = structuredClone(pair.totals)
  totals.pulls++
  totals.records_received += accepted.length + rejected.length
  for (const r of rejected) totals.rejected[r.code] = (totals.rejected[r.code] ?? 0) + 1
  return { pair, accepted, rejected, next: { ...pair, cursor, state: 'running', updated_at: 2, totals }, now: 2 }
}

const pgc = sharedPgCluster()

for (const d of TEST_DIALECTS) {
  describe.skipIf(d === 'sqlite' ? Database === null : skipDialect(d))(
    `KyselySyncStore ${d === 'sqlite' ? 'on a SQLite file' : dialectTitle(d)}`,
    () => {
      let dir: string
      let pgUrl = ''
      const dbs: Kysely<unknown>[] = []

      async function open(): Promise<{ db: Kysely<unknown>; records: RecordStore; sync: KyselySyncStore }> {
        let db: Kysely<unknown>
        if (d === 'postgres') {
          db = openPgKysely(pgUrl)
        } else {
          const sqlite = new Database!(join(dir, 'spl.db'))
          sqlite.pragma('journal_mode = WAL')
          db = new Kysely<unknown>({ dialect: new SqliteDialect({ database: sqlite }) })
        }
        dbs.push(db)
        const records = await RecordStore.open(db)
        return { db, records, sync: await KyselySyncStore.open(db, records) }
      }

      beforeEach(async () => {
        dir = mkdtempSync(join(tmpdir(), 'spl-sync-'))
        if (d === 'postgres') pgUrl = await pgc.database()
      })
      afterEach(async () => {
        for (const db of dbs.splice(0)) await db.destroy()
        rmSync(dir, { recursive: true, force: true })
      })

      it('saves, lists and reloads pairs', async () => {
        const { sync, db } = await open()
        const p = { ...basePair(), last_error: { code: 'TIMEOUT' as const, message: 'slow', at: 5 }, poll_only: true }
        await sync.savePair(p)
        await sync.savePair({ ...p, state: 'failing' })
        expect(await sync.listPairs()).toEqual([{ ...p, state: 'failing' }])
        await db.destroy()
        dbs.splice(dbs.indexOf(db), 1)
        const again = await open()
        expect(await again.sync.getPair(p.pair_id)).toEqual({ ...p, state: 'failing' })
        expect(await again.sync.getPair('0000000000000000')).toBeUndefined()
      })

      it('one commit writes the records, the rejections, the cursor and the counters together', async () => {
        const { sync, records, db } = await open()
        const pair = basePair()
        await sync.savePair(pair)
        const a = sign(0)
        const b = sign(1)
        const equivocation = sign(1, { text: 'another record at clock 1' })
        const forged: Rejection = { ok: false, code: 'SIGNATURE_INVALID', message: 'bad sig', id: 'f'.repeat(64) }
        const result = await sync.commit(
          pageCommit(pair, [candidate(a), candidate(b), candidate(equivocation)], [forged], 'c1.0000000000000000.3'),
        )
        expect(result).toMatchObject({ stored: 2, duplicates: 0 })
        expect(result.storedRows.map((r) => r.id)).toEqual([a.id, b.id])
        // The sink folded the counters itself: the pair it returns is the row it wrote.
        expect(result.pair).toEqual(await sync.getPair(pair.pair_id))
        expect(result.rejected.map((r) => r.code)).toEqual(['CLOCK_CONFLICT'])
        const after = await sync.getPair(pair.pair_id)
        expect(after?.cursor).toBe('c1.0000000000000000.3')
        expect(after?.state).toBe('running')
        expect(after?.totals).toMatchObject({
          pulls: 1,
          records_received: 4,
          records_stored: 2,
          rejected: { SIGNATURE_INVALID: 1, CLOCK_CONFLICT: 1 },
        })
        expect((await records.listAfter(THREAD, 0, 100)).map((r) => [r.id, r.origin])).toEqual([
          [a.id, peer.did],
          [b.id, peer.did],
        ])
        const rejections = await sync.listRejections(pair.pair_id, 10)
        expect(rejections.map((r) => [r.code, r.record_id])).toEqual([
          ['CLOCK_CONFLICT', equivocation.id],
          ['SIGNATURE_INVALID', forged.id],
        ])
        expect(await sync.known([a.id, b.id, equivocation.id])).toEqual(
          new Map([
            [a.id, { redacted: false }],
            [b.id, { redacted: false }],
          ]),
        )

        // The same page again: duplicates, counted and not stored twice.
        const replay = await sync.commit(pageCommit(after!, [candidate(a), candidate(b)], [], 'c1.0000000000000000.3'))
        expect(replay).toMatchObject({ stored: 0, duplicates: 2 })
        expect((await sync.getPair(pair.pair_id))?.totals.duplicates).toBe(2)
        expect(await records.count()).toBe(2)

        // Durable: a fresh connection to the file sees the same.
        await db.destroy()
        dbs.splice(dbs.indexOf(db), 1)
        const again = await open()
        expect(await again.records.count()).toBe(2)
        expect((await again.sync.getPair(pair.pair_id))?.cursor).toBe('c1.0000000000000000.3')
      })

      it('a commit whose record insert fails midway leaves neither records nor the cursor moved', async () => {
        const { sync, records } = await open()
        const pair = basePair()
        await sync.savePair(pair)
        await sync.commit(pageCommit(pair, [candidate(sign(0))], [], 'c1.0000000000000000.1'))
        const before = (await sync.getPair(pair.pair_id))!
        // 450 records: the store inserts them 400 per statement, and one in the second statement
        // breaks a NOT NULL constraint, so the first statement has already written 400 rows.
        const batch = Array.from({ length: 450 }, (_, i) => candidate(sign(i + 1)))
        batch[420] = { ...batch[420]!, namespace: null as unknown as string }
        const rejected: Rejection = { ok: false, code: 'HASH_MISMATCH', message: 'x', id: 'e'.repeat(64) }
        await expect(sync.commit(pageCommit(before, batch, [rejected], 'c1.0000000000000000.451'))).rejects.toThrow(/NOT NULL|not-null/)
        expect(await records.count()).toBe(1)
        expect(await sync.getPair(pair.pair_id)).toEqual(before)
        expect(await sync.listRejections(pair.pair_id, 10)).toEqual([])
        // The store is usable afterwards and the same page (fixed) goes in whole.
        batch[420] = candidate(sign(421))
        await sync.commit(pageCommit(before, batch, [], 'c1.0000000000000000.451'))
        expect(await records.count()).toBe(451)
      })

      it('a commit whose cursor update fails rolls back the records and rejections already written', async () => {
        const { sync, records } = await open()
        const pair = basePair()
        await sync.savePair(pair)
        const commit = pageCommit(
          pair,
          [candidate(sign(0)), candidate(sign(1))],
          [{ ok: false, code: 'HASH_MISMATCH', message: 'x', id: null }],
          'c1.0000000000000000.2',
        )
        // peer_url is NOT NULL: the pair row update, the last statement of the transaction, fails.
        commit.next = { ...commit.next, peer_url: null as unknown as string }
        await expect(sync.commit(commit)).rejects.toThrow(/NOT NULL|not-null/)
        expect(await records.count()).toBe(0)
        expect(await sync.listRejections(pair.pair_id, 10)).toEqual([])
        expect(await sync.getPair(pair.pair_id)).toEqual(pair)
      })

      it('keeps the last 1000 rejections of a pair', async () => {
        const { sync } = await open()
        const pair = basePair()
        await sync.savePair(pair)
        const many: Rejection[] = Array.from({ length: 1200 }, (_, i) => ({
          ok: false,
          code: 'INVALID_RECORD',
          message: `n${i}`,
          id: null,
        }))
        await sync.commit(pageCommit(pair, [], many.slice(0, 700), 'c1.0000000000000000.700'))
        await sync.commit(pageCommit(pair, [], many.slice(700), 'c1.0000000000000000.1200'))
        const kept = await sync.listRejections(pair.pair_id, 5000)
        expect(kept).toHaveLength(1000)
        expect(kept[0]?.message).toBe('n1199')
        expect(kept.at(-1)?.message).toBe('n200')
      })

      it('drives a SyncEngine: pulled records and the cursor survive a restart', async () => {
        const signed = [0, 1, 2].map((c) => sign(c))
        const served = signed.map((s) => toEnvelope(s, 1000))
        const transport = {
          async fetchChanges(req: { cursor: string | null; feed: string; signal?: AbortSignal }) {
            const after = req.cursor === null ? 0 : Number(req.cursor)
            if (after >= served.length && req.feed === 'longpoll') {
              await new Promise((_, reject) => req.signal?.addEventListener('abort', () => reject(new Error('aborted'))))
            }
            const records = served.slice(after)
            const now = Date.now()
            return {
              records,
              next_cursor: String(after + records.length),
              has_more: false,
              server_time: now,
              bytes: 1,
              sentAt: now,
              receivedAt: now,
            }
          },
        }
        const { sync, records, db } = await open()
        const { inlineChecker } = await import('@spl/records')
        const mk = (s: KyselySyncStore) =>
          new SyncEngine({
            localDid: local.did,
            pairs: s,
            sink: s,
            transport,
            checker: inlineChecker,
            namespaces: { namespaceGate: () => null },
          })
        const engine = mk(sync)
        await engine.start()
        const { pair } = await engine.addPair({ peer_did: peer.did, peer_url: 'http://peer.test', thread_id: THREAD })
        await expect.poll(() => engine.getPair(pair.pair_id).cursor).toBe('3')
        await engine.stop()
        expect(await records.count()).toBe(3)
        await db.destroy()
        dbs.splice(dbs.indexOf(db), 1)

        const again = await open()
        const restarted = mk(again.sync)
        await restarted.start()
        expect(restarted.getPair(pair.pair_id)).toMatchObject({ cursor: '3', totals: { records_stored: 3, pulls: 1 } })
        await restarted.stop()
      })
    },
  )
}
