import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { Keypair } from '@spl/identity'
import { createRequestProof, PROOF_HEADER } from '@spl/transport'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PG_SKIP, type PgCluster, startPgCluster } from '../../../test-utils/pg-cluster.js'
import { startReplica } from '../../../test-utils/replica.js'
import { ok, TestDaemon } from '../../../test-utils/test-daemon.js'
import { until } from '../../../test-utils/until.js'
import { parsePrometheus, type Sample } from './prom-parse.js'

// SPEC 11 (issue 15): two replicas A1, A2 of one identity A (same key, same PostgreSQL) behave as
// one. B and C (SQLite; C reads as partner-team) pull from A1 only; what A2 stores, grants or revokes is in force on A1 at once
// (LISTEN/NOTIFY), and a proof used at one replica is refused by the other.

/** Held requests long enough that an answer without a NOTIFY comes only at the timeout. */
const HOLD_MS = 20_000

interface Changes {
  status: number
  records: { id: string }[]
  next_cursor: string
  code?: string
  message?: string
}

async function changes(d: TestDaemon, pathAndQuery: string, caller: Keypair, extra: Record<string, string> = {}): Promise<Changes> {
  const { token } = await createRequestProof(caller, { method: 'GET', pathAndQuery, aud: d.did })
  return send(d, pathAndQuery, token, extra)
}

async function send(d: TestDaemon, pathAndQuery: string, proof: string, extra: Record<string, string> = {}): Promise<Changes> {
  const res = await fetch(new URL(pathAndQuery, d.url), { headers: { [PROOF_HEADER]: proof, ...extra } })
  return { status: res.status, ...((await res.json()) as Omit<Changes, 'status'>) }
}

/** The samples of `name` in `d`'s /metrics. */
async function samples(d: TestDaemon, name: string): Promise<Sample[]> {
  return parsePrometheus(await d.api.get<string>('/metrics')).get(name)?.samples ?? []
}

/** Peer requests held open on `d` now (long polls and watches), from /metrics. */
async function held(d: TestDaemon): Promise<number> {
  return (await samples(d, 'spl_feed_held_requests')).reduce((n, s) => n + s.value, 0)
}

describe.skipIf(PG_SKIP !== null)(`replicas of one identity on PostgreSQL${PG_SKIP ? ` (skipped: ${PG_SKIP})` : ''}`, () => {
  let cluster: PgCluster
  let a1: TestDaemon
  let a2: TestDaemon
  let b: TestDaemon
  let c: TestDaemon
  beforeAll(async () => {
    cluster = await startPgCluster()
    a1 = await TestDaemon.start({ database: await cluster.createDatabase() })
    ;[a2, b, c] = await Promise.all([
      startReplica(a1, { replicaId: 'a-2' }),
      TestDaemon.start(),
      TestDaemon.start({ init: ['--namespace', 'partner-team'] }),
    ])
  }, 120_000)
  afterAll(async () => {
    for (const d of [c, b, a2, a1]) await d?.[Symbol.asyncDispose]()
    cluster?.remove()
  })

  it('the replicas are one identity: same DID, one store; /metrics carry a replica label per replica', async () => {
    expect(a2.did).toBe(a1.did)
    const id = await a2.emit('th_same', 'written on A2')
    expect(await a1.threadRecordIds('th_same')).toEqual([id])
    const labels = async (d: TestDaemon) => new Set((await samples(d, 'spl_feed_held_requests')).map((s) => s.labels['replica']))
    expect(await labels(a2)).toEqual(new Set(['a-2']))
    expect(await labels(a1)).toEqual(new Set([expect.stringMatching(new RegExp(`:${new URL(a1.url).port}$`))]))
    expect((await samples(a1, 'spl_replica_listening')).map((s) => s.value)).toEqual([1])
    expect(await a2.api.get('/v1/sync/health')).toMatchObject({ replica: { id: 'a-2', listening: true } })
    // A2's store went out on spl_records and came in at A1 (A2's own copy back is not counted).
    const told = async (d: TestDaemon, direction: string) =>
      (await samples(d, 'spl_replica_notifications_total')).find(
        (s) => s.labels['direction'] === direction && s.labels['channel'] === 'spl_records',
      )?.value ?? 0
    expect(await told(a2, 'sent')).toBeGreaterThanOrEqual(1)
    await until('A1 heard A2', async () => ((await told(a1, 'received')) >= 1 ? true : undefined), 2000, 20)
  })

  it('a long poll held on A1 wakes within a second when the record is emitted on A2 (not at its 20 s timeout)', async () => {
    const caller = Keypair.generate()
    const thread = 'th_lp'
    await a1.emit(thread, 'first')
    const head = await changes(a1, `/v1/sync/changes?thread=${thread}&feed=normal`, caller)
    expect(head.records).toHaveLength(1)
    const latencies: number[] = []
    let cursor = head.next_cursor
    for (let i = 0; i < 3; i++) {
      const t0 = Date.now()
      const before = await held(a1)
      const polled = changes(a1, `/v1/sync/changes?thread=${thread}&feed=longpoll&timeout=${HOLD_MS}&since=${cursor}`, caller)
      await until('the long poll is held on A1', async () => ((await held(a1)) > before ? true : undefined), 10_000, 20)
      const emittedAt = Date.now()
      const id = await a2.emit(thread, `from A2 ${i}`)
      const answer = await polled
      const woke = Date.now() - emittedAt
      expect(answer.records.map((r) => r.id)).toEqual([id])
      expect(Date.now() - t0).toBeLessThan(HOLD_MS)
      latencies.push(woke)
      cursor = answer.next_cursor
    }
    console.info(`replicas: A1 long poll woken by an emit on A2 after ${latencies.join(', ')} ms`)
    for (const ms of latencies) expect(ms).toBeLessThan(1000)
  })

  it('B pulling from A1 (the per-peer watch) gets a record emitted on A2 within a second', async () => {
    const thread = 'th_watch'
    await a1.emit(thread, 'first')
    const before = await held(a1)
    await b.api.post('/v1/sync/pairs', { peer_did: a1.did, peer_url: a1.url, thread_id: thread })
    await until('B has the first record', async () => ((await b.threadRecordIds(thread)).length === 1 ? true : undefined), 30_000)
    await until('B waits on A1', async () => ((await held(a1)) > before ? true : undefined), 10_000, 20)
    const emittedAt = Date.now()
    const id = await a2.emit(thread, 'from A2')
    await until('B has the record from A2', async () => ((await b.threadRecordIds(thread)).includes(id) ? true : undefined), HOLD_MS, 10)
    const ms = Date.now() - emittedAt
    console.info(`replicas: B (watching A1) stored a record emitted on A2 after ${ms} ms`)
    expect(ms).toBeLessThan(1000)
  })

  it('a proof used at A1 is refused at A2, and one used at A2 at A1 (one replay cache, in the database)', async () => {
    const caller = Keypair.generate()
    const pq = '/v1/sync/changes?thread=th_same&feed=normal&x=replay'
    for (const [first, second] of [
      [a1, a2],
      [a2, a1],
    ] as const) {
      const { token } = await createRequestProof(caller, { method: 'GET', pathAndQuery: pq, aud: a1.did })
      expect((await send(first, pq, token)).status).toBe(200)
      expect(await send(second, pq, token)).toMatchObject({ status: 401, code: 'PROOF_INVALID', message: expect.stringMatching(/replay/) })
    }
  })

  it('a namespace created through A1 is in force on A2, and a grant made through A2 is served by A1 to C, within 2 s', async () => {
    const emitIn = (d: TestDaemon) =>
      d.api.post('/v1/records', { act: 'INTEND', thread: 'th_ns', body: { text: 'in acme', namespace: 'acme' } }).then(
        () => 'stored',
        (err: { code: string }) => err.code,
      )
    expect(await emitIn(a2)).toBe('NAMESPACE_REJECTED')
    ok(await a1.spl('namespace', 'create', 'acme'), 'spl namespace create acme')
    const t0 = Date.now()
    await until('A2 takes records in acme', async () => ((await emitIn(a2)) === 'stored' ? true : undefined), 2000, 20)
    console.info(`replicas: a namespace made on A1 was in force on A2 after ${Date.now() - t0} ms`)

    // C reads as partner-team, bound through A2: nothing of default reaches it before a grant.
    const thread = 'th_granted'
    ok(await a2.spl('consent', 'bind', c.did, '--namespace', 'partner-team'), 'spl consent bind C (on A2)')
    const hidden = await a1.emit(thread, 'default, not granted yet')
    const before = await held(a1)
    await c.api.post('/v1/sync/pairs', { peer_did: a1.did, peer_url: a1.url, thread_id: thread })
    await until('C waits on A1', async () => ((await held(a1)) > before ? true : undefined), 10_000, 20)
    expect(await c.threadRecordIds(thread)).toEqual([])
    ok(await a2.spl('consent', 'grant', '--to-namespace', 'partner-team', '--hash-levels', 'L0,L1,L2,L3'), 'spl consent grant (on A2)')
    const t1 = Date.now()
    await until(
      'C has the record A1 now serves',
      async () => ((await c.threadRecordIds(thread)).includes(hidden) ? true : undefined),
      2000,
      10,
    )
    console.info(`replicas: a grant made on A2 reached C through A1 after ${Date.now() - t1} ms`)
  })

  it('a link revoked through A1 is refused at A2 within 2 s (TOKEN_REVOKED)', async () => {
    const thread = 'th_link'
    const shown = ok(await a1.spl('federation', 'invite', '--thread', thread), 'invite on A1')
    const code = /^invite code {2}(spl-\S+)/m.exec(shown.stdout)![1]!
    ok(await b.spl('federation', 'pair', a1.url, '--thread', thread, '--invite', code), 'B pairs with A1')
    // What B holds: A's token for B, presented with B's own proof — here at A2.
    const key = JSON.parse(readFileSync(path.join(b.home, 'keys', 'primary.key'), 'utf8')) as { d: string }
    const bKey = Keypair.fromSeed(Buffer.from(key.d, 'base64url'))
    const Database = createRequire(new URL('../../daemon/package.json', import.meta.url))('better-sqlite3') as new (
      file: string,
      o: { readonly: boolean },
    ) => { prepare(sql: string): { get(): { held_token: string; link_id: string } }; close(): void }
    const db = new Database(path.join(b.home, 'spl.db'), { readonly: true })
    const { held_token: token, link_id: linkId } = db.prepare('SELECT held_token, link_id FROM spl_federation_links').get()
    db.close()
    const pq = () => `/v1/sync/changes?thread=${thread}&feed=normal&x=${Math.random()}`
    const withToken = async (d: TestDaemon) => changes(d, pq(), bKey, { authorization: `Bearer ${token}` })
    expect((await withToken(a2)).status).toBe(200)
    ok(await a1.spl('federation', 'revoke', linkId), 'revoke on A1')
    const t0 = Date.now()
    const refused = await until(
      'A2 refuses the revoked token',
      async () => {
        const r = await withToken(a2)
        return r.status === 401 ? r : undefined
      },
      2000,
      20,
    )
    console.info(`replicas: a link revoked on A1 was refused on A2 after ${Date.now() - t0} ms`)
    expect(refused.code).toBe('TOKEN_REVOKED')
  })

  // Last: it stops the cluster under every replica.
  it('PostgreSQL restarted: both replicas listen again by themselves and a poll on A1 wakes for A2 within a second again', async () => {
    cluster.stop()
    cluster.start()
    const reconnected = async (d: TestDaemon) =>
      until(
        `${d === a1 ? 'A1' : 'A2'} listens again`,
        async () => {
          const up = (await samples(d, 'spl_replica_listening'))[0]?.value
          const n = (await samples(d, 'spl_replica_reconnects_total'))[0]?.value ?? 0
          return up === 1 && n >= 1 ? true : undefined
        },
        30_000,
        100,
      )
    await reconnected(a1)
    await reconnected(a2)
    const caller = Keypair.generate()
    const thread = 'th_after_restart'
    await a1.emit(thread, 'first')
    const head = await changes(a1, `/v1/sync/changes?thread=${thread}&feed=normal`, caller)
    const before = await held(a1)
    const polled = changes(a1, `/v1/sync/changes?thread=${thread}&feed=longpoll&timeout=${HOLD_MS}&since=${head.next_cursor}`, caller)
    await until('the long poll is held on A1', async () => ((await held(a1)) > before ? true : undefined), 10_000, 20)
    const emittedAt = Date.now()
    const id = await a2.emit(thread, 'from A2 after the restart')
    expect((await polled).records.map((r) => r.id)).toEqual([id])
    const ms = Date.now() - emittedAt
    console.info(`replicas: after a PostgreSQL restart, A1's long poll woke ${ms} ms after an emit on A2`)
    expect(ms).toBeLessThan(1000)
  })
})
