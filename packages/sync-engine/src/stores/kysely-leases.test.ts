import { mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Keypair } from '@spl/identity'
import { inTransaction, precheckEnvelope, RecordStore, signRecord, toEnvelope } from '@spl/records'
import { Kysely, type SqliteDatabase, SqliteDialect, sql } from 'kysely'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { dialectTitle, sharedPgCluster, skipDialect, TEST_DIALECTS } from '../../../../test-utils/dialects.js'
import { openPgKysely } from '../../../../test-utils/pg-cluster.js'
import { newPair } from '../pair.js'
import { LeaseLostError } from '../stores.js'
import { KyselyPairLeases, type LeaseLogEntry } from './kysely-leases.js'
import { KyselySyncStore } from './kysely-store.js'

type SqliteCtor = new (file: string) => SqliteDatabase & { pragma(s: string): unknown; close(): void }
function loadSqlite(): SqliteCtor | null {
  try {
    return createRequire(new URL('../../records/package.json', import.meta.url))('better-sqlite3') as SqliteCtor
  } catch {
    return null
  }
}
const Database = loadSqlite()
const peer = Keypair.fromSeed(new Uint8Array(32).fill(41))
const THREAD = 'th_leases'
const TTL = 1000
const pgc = sharedPgCluster()

for (const d of TEST_DIALECTS) {
  describe.skipIf(d === 'sqlite' ? Database === null : skipDialect(d))(
    `pair leases ${d === 'sqlite' ? 'on a SQLite file' : dialectTitle(d)}`,
    () => {
      let dir: string
      let pgUrl = ''
      const dbs: Kysely<unknown>[] = []

      /** One replica: its own connection to the shared database, its own leases and store. */
      async function replica(name: string) {
        let db: Kysely<unknown>
        if (d === 'postgres') db = openPgKysely(pgUrl, 1)
        else {
          const sqlite = new Database!(join(dir, 'spl.db'))
          sqlite.pragma('journal_mode = WAL')
          sqlite.pragma('busy_timeout = 5000')
          db = new Kysely<unknown>({ dialect: new SqliteDialect({ database: sqlite }) })
        }
        dbs.push(db)
        const records = await RecordStore.open(db)
        const leases = await KyselyPairLeases.open(db, { replicaId: name, ttlMs: TTL })
        const store = await KyselySyncStore.open(db, records, leases)
        return { db, records, leases, store }
      }

      beforeEach(async () => {
        dir = mkdtempSync(join(tmpdir(), 'spl-leases-'))
        if (d === 'postgres') pgUrl = await pgc.database()
      })
      afterEach(async () => {
        for (const db of dbs.splice(0)) await db.destroy()
        rmSync(dir, { recursive: true, force: true })
      })

      const pair = (n: number) => newPair(`p${String(n).padStart(15, '0')}`, peer.did, 'http://peer.test', THREAD, 1)

      it('one holder per pair; taken over only after expiry, under a new epoch; the old holder cannot write', async () => {
        const a = await replica('a')
        const b = await replica('b')
        const p = pair(1)
        await a.leases.seize(p.pair_id, 0)
        await a.store.savePair(p)
        expect(await b.leases.unheld(500, 10)).toEqual([])
        expect(await b.leases.acquire([p.pair_id], 500)).toEqual([])
        expect(b.leases.holds(p.pair_id)).toBe(false)
        // Past a's expiry (0 + TTL) b takes it; a's renew learns it lost it.
        expect(await b.leases.unheld(TTL + 1, 10)).toEqual([p.pair_id])
        expect(await b.leases.acquire([p.pair_id], TTL + 1)).toEqual([p.pair_id])
        await expect(b.store.savePair({ ...p, cursor: 'b1' })).resolves.toBeUndefined()
        // a has not renewed yet: it still believes it holds the pair, and its write is refused.
        expect(a.leases.holds(p.pair_id)).toBe(true)
        const rec = signRecord(peer, {
          parents: [],
          thread: THREAD,
          actor: peer.did,
          act: 'DO',
          body: { n: 1 },
          clock: 0,
          data_type: 'SCALAR',
        })
        const c = precheckEnvelope(toEnvelope(rec, 5), THREAD)
        if (!c.ok) throw new Error(c.code)
        const commit = a.store.commit({ pair: p, accepted: [c], rejected: [], next: { ...p, cursor: 'a-stale' }, now: 5 })
        await expect(commit).rejects.toBeInstanceOf(LeaseLostError)
        await expect(a.store.savePair({ ...p, cursor: 'a-stale' })).rejects.toMatchObject({ code: 'LEASE_LOST' })
        expect(a.leases.holds(p.pair_id)).toBe(false)
        expect((await a.records.findExisting([c.id])).size).toBe(0)
        expect((await b.store.getPair(p.pair_id))?.cursor).toBe('b1')
        // The lease log: epoch 1 a (seize), epoch 2 b after a's lease had expired.
        const log = await sql<LeaseLogEntry>`
          select epoch, holder, event, at, prev_holder, prev_expires_at from spl_pair_lease_log order by id`.execute(a.db)
        expect(log.rows.map((r) => [Number(r.epoch), r.holder, r.event, r.prev_holder])).toEqual([
          [1, 'a', 'seize', null],
          [2, 'b', 'acquire', 'a'],
        ])
        expect(Number(log.rows[1]!.at)).toBeGreaterThan(Number(log.rows[1]!.prev_expires_at))
      })

      it('renew keeps what is still held, heartbeat counts live replicas, release hands back at once', async () => {
        const a = await replica('a')
        const b = await replica('b')
        // Pair rows need a holder to be written: seize each, as an operator's add does.
        for (let i = 0; i < 6; i++) {
          await a.leases.seize(pair(i).pair_id, 0)
          await a.store.savePair(pair(i))
        }
        expect(await a.leases.heartbeat(0)).toBe(1)
        expect(await b.leases.heartbeat(10)).toBe(2)
        expect(await a.leases.heartbeat(600)).toBe(2)
        expect(await a.leases.heartbeat(TTL)).toBe(1) // b not seen for two of its rounds (2/3 of a lease)
        const still = await a.leases.renew(600)
        expect(still.size).toBe(6)
        // Renewed at 600: not free at TTL + 1, free after 600 + TTL.
        expect(await b.leases.unheld(TTL + 1, 10)).toEqual([])
        await a.leases.release([pair(0).pair_id, pair(1).pair_id], 700)
        expect(a.leases.held).toBe(4)
        expect((await b.leases.unheld(701, 10)).sort()).toEqual([pair(0).pair_id, pair(1).pair_id])
        expect(await b.leases.acquire([pair(0).pair_id, pair(1).pair_id, pair(2).pair_id], 701)).toHaveLength(2)
        expect([...(await a.leases.renew(800))].sort()).toEqual([2, 3, 4, 5].map((i) => pair(i).pair_id))
      })

      it.skipIf(d !== 'postgres')('a takeover waits for the holder’s open commit, then that holder’s next write fails', async () => {
        const a = await replica('a')
        const b = await replica('b')
        const p = pair(7)
        await a.leases.seize(p.pair_id, 0)
        await a.store.savePair(p)
        let seized = false
        let release!: () => void
        const held = new Promise<void>((r) => {
          release = r
        })
        const open = inTransaction(a.db, async (trx) => {
          await a.leases.fence(trx as never, p.pair_id)
          await held
        })
        await new Promise((r) => setTimeout(r, 50))
        const seize = b.leases.seize(p.pair_id, 10).then(() => {
          seized = true
        })
        await new Promise((r) => setTimeout(r, 200))
        expect(seized).toBe(false)
        release()
        await open
        await seize
        expect(seized).toBe(true)
        await expect(a.store.savePair({ ...p, cursor: 'late' })).rejects.toBeInstanceOf(LeaseLostError)
      })
    },
  )
}
