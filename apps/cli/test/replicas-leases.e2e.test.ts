import { rmSync } from 'node:fs'
import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startHaproxy } from '../../../test-utils/haproxy.js'
import { PG_SKIP, type PgCluster, startPgCluster } from '../../../test-utils/pg-cluster.js'
import { replicaHome, startReplica } from '../../../test-utils/replica.js'
import { TestDaemon } from '../../../test-utils/test-daemon.js'
import { until } from '../../../test-utils/until.js'

// Issue 15 (SPEC 11): replicas of one instance on one PostgreSQL — real `spl` processes, a real
// cluster (initdb/pg_ctl) and Debian's haproxy as the one URL peers use.

interface Health {
  replica: { id: string; lease_holder: string; pairs_held: number } | null
}

/** `n` replicas of one new instance on `database` (same key, same admin token). */
async function startReplicas(database: string, n: number, leaseTtl: string): Promise<TestDaemon[]> {
  const first = await TestDaemon.start({ home: await replicaHome(database, leaseTtl) })
  const out: TestDaemon[] = [first]
  for (let i = 1; i < n; i++) out.push(await startReplica(first))
  return out
}

async function stopAll(ds: TestDaemon[]): Promise<void> {
  for (const d of ds) {
    await d.stop()
    rmSync(d.home, { recursive: true, force: true })
  }
}

/** Runs `fn` over `items` with at most `n` at a time. */
async function pool<T>(items: readonly T[], n: number, fn: (x: T) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) await fn(items[next++]!)
    }),
  )
}

describe.skipIf(PG_SKIP !== null)(`replicas on PostgreSQL${PG_SKIP ? ` (skipped: ${PG_SKIP})` : ''}`, () => {
  let cluster: PgCluster
  beforeAll(async () => {
    cluster = await startPgCluster()
  })
  afterAll(() => cluster?.remove())

  it('three replicas behind haproxy, 1,000 records emitted on each at once while B pulls through the balancer: B holds all 3,000, once', async () => {
    const db = await cluster.createDatabase()
    const as = await startReplicas(db, 3, '15s')
    const lb = await startHaproxy(as.map((a) => a.url))
    await using b = await TestDaemon.start()
    try {
      const did = as[0]!.did
      expect(as.map((a) => a.did)).toEqual([did, did, did])
      const thread = 'th_lb'
      await b.api.post('/v1/sync/pairs', { peer_did: did, peer_url: lb.url, thread_id: thread })
      const emitted: string[] = []
      await Promise.all(
        as.map((a, r) =>
          pool(
            Array.from({ length: 1000 }, (_, i) => i),
            6,
            async (i) => {
              emitted.push(await a.emit(thread, `replica ${r} record ${i}`))
            },
          ),
        ),
      )
      expect(new Set(emitted).size).toBe(3000)
      await until(
        'B holds the 3,000',
        async () => {
          const n = (await b.threadRecordIds(thread)).length
          return n >= 3000 ? true : undefined
        },
        120_000,
      )
      const got = await b.threadRecordIds(thread)
      expect(got).toHaveLength(3000)
      expect(new Set(got)).toEqual(new Set(emitted))
      const pair = (await b.api.get<{ data: { totals: { records_stored: number; duplicates: number } }[] }>('/v1/sync/pairs')).data[0]!
      expect(pair.totals.records_stored).toBe(3000)
    } finally {
      lb.stop()
      await stopAll(as)
    }
  }, 240_000)

  it('300 pairs over three replicas: kill -9 one, its pairs are taken over within the lease time, never held twice, nothing lost or stored twice', async () => {
    const TTL_MS = 3000
    const db = await cluster.createDatabase()
    const q = cluster.kysely(db)
    await using s = await TestDaemon.start()
    const threads = Array.from({ length: 300 }, (_, i) => `th_k${String(i).padStart(3, '0')}`)
    const emitRound = async (round: number) => {
      const records = threads.map((thread) => ({ act: 'INTEND', thread, body: { text: `round ${round}` } }))
      await s.api.post('/v1/records/batch', { records })
    }
    await emitRound(0)
    const as = await startReplicas(db, 3, `${TTL_MS}ms`)
    try {
      for (const t of threads) await as[0]!.api.post('/v1/sync/pairs', { peer_did: s.did, peer_url: s.url, thread_id: t })
      const held = async () =>
        Promise.all(as.filter((a) => !a.stopped).map(async (a) => (await a.api.get<Health>('/v1/sync/health')).replica!))
      // Added on one replica, the pairs spread over the three.
      await until(
        'the pairs spread over the replicas',
        async () => ((await held()).every((r) => r.pairs_held === 100) ? true : undefined),
        30_000,
      )
      const stored = async () =>
        Number((await sql<{ n: number }>`select count(*) as n from spl_records where origin = ${s.did}`.execute(q)).rows[0]!.n)
      await until('A holds round 0', async () => ((await stored()) === 300 ? true : undefined), 60_000)

      const victim = as[1]!
      const victimId = (await victim.api.get<Health>('/v1/sync/health')).replica!.lease_holder
      // Records keep coming while a replica dies.
      const writer = (async () => {
        for (let r = 1; r <= 6; r++) {
          await emitRound(r)
          await new Promise((res) => setTimeout(res, 700))
        }
      })()
      await new Promise((res) => setTimeout(res, 1000))
      await victim.kill9()
      const killedAt = Date.now()
      await until(
        'the dead replica’s pairs are taken over',
        async () => {
          const r = await sql<{ n: number }>`select count(*) as n from spl_pair_leases where holder = ${victimId}`.execute(q)
          return Number(r.rows[0]!.n) === 0 ? true : undefined
        },
        4 * TTL_MS,
      )
      const takeoverMs = Date.now() - killedAt
      console.log(`takeover after kill -9: ${takeoverMs} ms (lease ${TTL_MS} ms, renewed every ${TTL_MS / 3} ms)`)
      // Expiry (≤ one lease time after the last renew) plus one keeper round of the others.
      expect(takeoverMs).toBeLessThanOrEqual(TTL_MS + TTL_MS / 3 + 1500)
      await writer
      await until('A holds every record of S', async () => ((await stored()) === 300 * 7 ? true : undefined), 60_000)
      for (const t of threads.slice(0, 20)) {
        const rows = await sql<{ id: string }>`select id from spl_records where thread = ${t} order by id`.execute(q)
        expect(rows.rows.map((r) => r.id)).toEqual([...(await s.threadRecordIds(t))].sort())
      }
      // Stored once: the pairs' counters add up to what is in the store, no more.
      const totals = await sql<{ totals: string }>`select totals from spl_pairs`.execute(q)
      const storedByPairs = totals.rows.reduce((n, r) => n + (JSON.parse(r.totals) as { records_stored: number }).records_stored, 0)
      expect(storedByPairs).toBe(300 * 7)
      // The lease log: each change of holder came after the previous lease had expired or was handed back.
      const log = await sql<{
        pair_id: string
        epoch: number
        holder: string
        event: string
        at: number
        prev_holder: string | null
        prev_expires_at: number | null
      }>`
        select pair_id, epoch, holder, event, at, prev_holder, prev_expires_at from spl_pair_lease_log order by id`.execute(q)
      const lastEpoch = new Map<string, number>()
      let takenFromVictim = 0
      for (const row of log.rows) {
        if (row.event === 'release') continue
        const before = lastEpoch.get(row.pair_id) ?? 0
        expect(Number(row.epoch)).toBe(before + 1)
        lastEpoch.set(row.pair_id, Number(row.epoch))
        if (row.event === 'acquire' && row.prev_holder !== null && row.prev_holder !== row.holder) {
          expect(Number(row.at)).toBeGreaterThan(Number(row.prev_expires_at))
          if (row.prev_holder === victimId) {
            // Not before it died: a busy replica is not taken for a dead one (its heartbeat has a connection of its own).
            expect(Number(row.at)).toBeGreaterThanOrEqual(killedAt - 50)
            takenFromVictim++
          }
        }
      }
      expect(takenFromVictim).toBe(100)
      // The survivors hold everything between them.
      expect((await held()).reduce((n, r) => n + r.pairs_held, 0)).toBe(300)
    } finally {
      await q.destroy()
      await stopAll(as)
    }
  }, 240_000)
})
