import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PG_PASSWORD, PG_SKIP, type PgCluster, startPgCluster } from '../../../test-utils/pg-cluster.js'
import { type PairView, spl, TestDaemon } from '../../../test-utils/test-daemon.js'
import { until } from '../../../test-utils/until.js'

// SPEC 11 (issue 15): the daemon on PostgreSQL, with real `spl` processes and a real cluster made
// by initdb/pg_ctl in a temporary directory (test-utils/pg-cluster.ts).

const THREAD = 'th_pg'

describe.skipIf(PG_SKIP !== null)(`spl on PostgreSQL${PG_SKIP ? ` (skipped: ${PG_SKIP})` : ''}`, () => {
  let cluster: PgCluster
  beforeAll(async () => {
    cluster = await startPgCluster()
  })
  afterAll(() => cluster?.remove())

  it('a wrong password, a stopped server, a missing database or a wrong URL at start: one line with the code and the fix', async () => {
    await using a = await TestDaemon.start()
    await a.stop()
    const serve = (url: string) => spl(a.home, ['serve', '--port', '0', '--database', url])
    const cases: [string, RegExp][] = [
      [
        cluster.url().replace(PG_PASSWORD, 'wrong'),
        /^Error: STORE_AUTH_FAILED: .*password authentication failed.* Fix: check the user and password/,
      ],
      [`postgres://postgres:${PG_PASSWORD}@127.0.0.1:1/spl`, /^Error: STORE_UNAVAILABLE: .*cannot be reached.* Fix: start PostgreSQL/],
      [cluster.url('no_such_db'), /^Error: STORE_NOT_FOUND: .*does not exist.* Fix: create it/],
      ['mysql://u:p@127.0.0.1/x', /^Error: CONFIG_INVALID: .*not a postgres:\/\/ URL.* Fix: /],
    ]
    for (const [url, line] of cases) {
      const r = await serve(url)
      expect(r.code).not.toBe(0)
      expect(r.stderr.trim()).toMatch(line)
      // One line, no stack trace, and the password never printed.
      expect(r.stderr.trim().split('\n')).toHaveLength(1)
      expect(r.stderr).not.toContain(PG_PASSWORD)
    }
  })

  it('two daemons on PostgreSQL: B pulls what A emits; both keep everything across a restart', async () => {
    await using a = await TestDaemon.start({ database: await cluster.createDatabase() })
    await using b = await TestDaemon.start({ database: await cluster.createDatabase() })
    const ids: string[] = []
    for (let i = 0; i < 20; i++) ids.push(await a.emit(THREAD, `hello ${i}`))
    const pair = await b.api.post<PairView>('/v1/sync/pairs', { peer_did: a.did, peer_url: a.url, thread_id: THREAD })
    await until('B has A’s 20 records', async () => ((await b.threadRecordIds(THREAD)).length === 20 ? true : undefined), 30_000)
    expect(await b.threadRecordIds(THREAD)).toEqual(ids)
    // Live: a record emitted now reaches B through the long poll.
    ids.push(await a.emit(THREAD, 'live'))
    await until('B has the live record', async () => ((await b.threadRecordIds(THREAD)).length === 21 ? true : undefined), 30_000)
    await b.stop()
    await a.stop()
    const a2 = await a.restart(0)
    const b2 = await b.restart(0)
    try {
      expect(await a2.threadRecordIds(THREAD)).toEqual(ids)
      expect(await b2.threadRecordIds(THREAD)).toEqual(ids)
      const after = await b2.api.get<PairView>(`/v1/sync/pairs/${pair.pair_id}`)
      expect(after.totals.records_stored).toBe(21)
      expect(after.cursor).not.toBeNull()
    } finally {
      await a2.stop()
      await b2.stop()
    }
  })

  it('PostgreSQL stopped under a running daemon: emits answer 503 STORE_UNAVAILABLE with a fix, its pair shows it, nothing is lost, it resumes by itself', async () => {
    // P (SQLite) is the source; A (PostgreSQL) pulls from P and emits records of its own.
    await using p = await TestDaemon.start()
    await using a = await TestDaemon.start({ database: await cluster.createDatabase() })
    const pair = await a.api.post<PairView>('/v1/sync/pairs', { peer_did: p.did, peer_url: p.url, thread_id: THREAD })
    const fromP: string[] = []
    for (let i = 0; i < 5; i++) fromP.push(await p.emit(THREAD, `p ${i}`))
    const own = [await a.emit('th_own', 'before')]
    await until('A has P’s first records', async () => ((await a.threadRecordIds(THREAD)).length === 5 ? true : undefined), 30_000)

    cluster.stop()
    // Records keep arriving at P while A's database is down.
    for (let i = 5; i < 15; i++) fromP.push(await p.emit(THREAD, `p ${i}`))
    const refused = await a.api.post('/v1/records', { act: 'INTEND', thread: 'th_own', body: { text: 'while down' } }).then(
      () => null,
      (err: { code: string; status: number; fix?: string }) => err,
    )
    expect(refused).toMatchObject({ code: 'STORE_UNAVAILABLE', status: 503 })
    expect(refused?.fix).toMatch(/start PostgreSQL/)
    const shown = await until(
      'A’s pair shows STORE_UNAVAILABLE',
      async () => {
        const v = await a.api.get<PairView>(`/v1/sync/pairs/${pair.pair_id}`)
        return v.last_error?.code === 'STORE_UNAVAILABLE' ? v : undefined
      },
      30_000,
      200,
    )
    expect(shown.state).toBe('failing')
    expect(shown.last_error?.message).toMatch(/cannot be reached.*start PostgreSQL/)

    cluster.start()
    await until(
      'A holds all 15 of P’s records again',
      async () => ((await a.threadRecordIds(THREAD)).length === 15 ? true : undefined),
      60_000,
      200,
    )
    expect(await a.threadRecordIds(THREAD)).toEqual(fromP)
    own.push(await a.emit('th_own', 'after'))
    expect(await a.threadRecordIds('th_own')).toEqual(own)
    const healed = await until(
      'the pair runs again',
      async () => {
        const v = await a.api.get<PairView>(`/v1/sync/pairs/${pair.pair_id}`)
        return v.state !== 'failing' ? v : undefined
      },
      30_000,
      200,
    )
    expect(healed.totals.records_stored).toBe(15)
    expect((await a.spl('doctor')).stdout).toMatch(/✓ failing pairs +none/)
  })
})
