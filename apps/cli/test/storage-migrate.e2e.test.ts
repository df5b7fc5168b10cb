import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import path from 'node:path'
import { type Kysely, sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PG_PASSWORD, PG_SKIP, type PgCluster, startPgCluster } from '../../../test-utils/pg-cluster.js'
import { ok, type PairView, SPL_BIN, spl, TestDaemon } from '../../../test-utils/test-daemon.js'
import { until } from '../../../test-utils/until.js'
import { Database, seedRecords } from './seed-records.js'

// Issue 15: `spl storage migrate --to postgres://…` moves a SQLite home of 100,000 records into
// PostgreSQL with real `spl` processes and a real cluster: same ids at the same seqs, same pair
// cursors, same epoch (a peer pulling from the home never sees cursor_reset), served afterwards by
// `spl serve` on PostgreSQL; killed with SIGKILL midway and run again, still the same.

const BIG = 'th_big'
const N = 100_000

/** What the migration must carry, read from the home's spl.db. */
interface Snapshot {
  epoch: string
  /** "seq id" of every record, in seq order. */
  records: string[]
  /** md5 of every record's stored JSON, signature, origin and stored_at, in seq order. */
  content: string
  pairs: { pair_id: string; cursor: string | null; state: string }[]
}

function readSqlite(home: string): Snapshot {
  const db = new Database(path.join(home, 'spl.db'), { readonly: true })
  try {
    const epoch = db.prepare("select value from spl_meta where key = 'epoch'").pluck().get() as string
    const records = (db.prepare('select seq, id from spl_records order by seq').all() as { seq: number; id: string }[]).map(
      (r) => `${r.seq} ${r.id}`,
    )
    const pairs = db.prepare('select pair_id, cursor, state from spl_pairs order by pair_id').all() as Snapshot['pairs']
    const hash = createHash('md5')
    const rows = db
      .prepare("select record, coalesce(sig, '-') as s, coalesce(origin, '-') as o, stored_at as t from spl_records order by seq")
      .all() as {
      record: string
      s: string
      o: string
      t: number
    }[]
    hash.update(rows.map((r) => `${r.record}|${r.s}|${r.o}|${r.t}`).join('\n'))
    return { epoch, records, content: hash.digest('hex'), pairs }
  } finally {
    db.close()
  }
}

async function readPostgres(db: Kysely<unknown>): Promise<Snapshot> {
  const epoch = (await sql<{ value: string }>`select value from spl_meta where key = 'epoch'`.execute(db)).rows[0]!.value
  const records = (await sql<{ seq: number; id: string }>`select seq, id from spl_records order by seq`.execute(db)).rows.map(
    (r) => `${r.seq} ${r.id}`,
  )
  const pairs = (await sql<Snapshot['pairs'][number]>`select pair_id, cursor, state from spl_pairs order by pair_id`.execute(db)).rows
  const content = (
    await sql<{
      h: string
    }>`select md5(string_agg(concat_ws('|', record, coalesce(sig, '-'), coalesce(origin, '-'), stored_at), E'\n' order by seq)) as h from spl_records`.execute(
      db,
    )
  ).rows[0]!.h
  return { epoch, records, content, pairs }
}

interface Report {
  verified: boolean
  epoch: string
  target: string
  elapsed_ms: number
  records: { total: number; copied: number; resumed_after_seq: number }
  tables: { table: string; source: number; target: number; verified: boolean; copied: number }[]
}

function report(r: { code: number; stdout: string; stderr: string }): Report {
  expect(r.code, r.stderr).toBe(0)
  // (Not the bare word: temporary homes are named spl-test-….)
  expect(r.stdout + r.stderr).not.toContain(`:${PG_PASSWORD}@`)
  return JSON.parse(r.stdout) as Report
}

describe.skipIf(PG_SKIP !== null)(`spl storage migrate${PG_SKIP ? ` (skipped: ${PG_SKIP})` : ''}`, () => {
  let cluster: PgCluster
  let p: TestDaemon
  let home = ''
  let source: Snapshot
  beforeAll(async () => {
    cluster = await startPgCluster()
  })
  afterAll(async () => {
    await p?.stop()
    cluster?.remove()
  })

  it('a 100,000-record home: same ids, cursors and epoch in PostgreSQL; spl serve runs on it and a peer pulls on without a cursor reset', async () => {
    // P is a peer: A pulls th_p from P (a cursor in A's store), P pulls th_a from A (a cursor of A's epoch).
    p = await TestDaemon.start()
    const a = await TestDaemon.start()
    home = a.home
    ok(await a.spl('namespace', 'create', 'team'), 'namespace create')
    ok(await a.spl('consent', 'grant', '--to-namespace', 'team', '--hash-levels', 'L0,L1,L2,L3'), 'consent grant')
    for (let i = 0; i < 3; i++) await p.emit('th_p', `p ${i}`)
    ok(await a.spl('fleet', 'sync', 'add', p.did, 'th_p', '--peer-url', p.url), 'A pulls th_p')
    const aIds: string[] = []
    // Quotes, backslashes, braces, commas and non-ASCII text go through PostgreSQL's array parameters.
    for (let i = 0; i < 3; i++) aIds.push(await a.emit('th_a', `a ${i} "quoted" {braces}, back\\slash ü 😀 NULL`))
    const pPair = await p.api.post<PairView>('/v1/sync/pairs', { peer_did: a.did, peer_url: a.url, thread_id: 'th_a' })
    await until('A has th_p', async () => ((await a.threadRecordIds('th_p')).length === 3 ? true : undefined), 30_000)
    await until('P has th_a', async () => ((await p.threadRecordIds('th_a')).length === 3 ? true : undefined), 30_000)
    await until('A’s pair has a cursor', async () => {
      const pairs = await a.api.get<{ data: PairView[] }>('/v1/sync/pairs')
      return pairs.data[0]?.cursor ? true : undefined
    })
    const namespaces = JSON.parse(ok(await a.spl('namespace', 'list', '--json'), 'namespaces').stdout) as unknown
    const grants = JSON.parse(ok(await a.spl('consent', 'list', '--json'), 'grants').stdout) as unknown

    // The daemon holds the home: refused, exit 2, nothing touched.
    const url = await cluster.createDatabase()
    const running = await spl(home, ['storage', 'migrate', '--to', url])
    expect(running.code).toBe(2)
    expect(running.stderr).toMatch(/^Error: DAEMON_RUNNING: .* Fix: spl serve --stop/)
    await a.stop()

    const seeded = await seedRecords(home, BIG, N)
    source = readSqlite(home)
    expect(source.records.length).toBeGreaterThan(N)
    expect(source.pairs).toHaveLength(1)
    expect(source.pairs[0]!.cursor).toMatch(/^c\d\./)

    const r = report(await spl(home, ['storage', 'migrate', '--to', url, '--json']))
    console.log(
      `migrated ${r.records.copied} records in ${r.elapsed_ms} ms: ${Math.round(r.records.copied / (r.elapsed_ms / 1000))} records/s (seeding took ${seeded.ms} ms)`,
    )
    expect(r.verified).toBe(true)
    expect(r.epoch).toBe(source.epoch)
    expect(r.target).toContain(':***@')
    expect(r.records).toMatchObject({ total: source.records.length, copied: source.records.length, resumed_after_seq: 0 })
    expect(r.tables.find((t) => t.table === 'spl_pairs')).toMatchObject({ source: 1, target: 1, verified: true })
    expect(r.tables.every((t) => t.verified && t.source === t.target)).toBe(true)
    const pg = cluster.kysely(url, 1)
    try {
      expect(await readPostgres(pg)).toEqual(source)
    } finally {
      await pg.destroy()
    }

    // spl serve on the migrated database: the records, registry and pairs are there, the epoch unchanged.
    // The same port: P's pair knows A by its URL.
    const a2 = await TestDaemon.start({ home, database: url, port: Number(new URL(a.url).port) })
    try {
      const id = source.records[Math.floor(source.records.length / 2)]!.split(' ')[1]!
      expect(await a2.api.get<{ id: string }>(`/v1/records/${id}`)).toMatchObject({ id })
      expect(await a2.threadRecordIds('th_a')).toEqual(aIds)
      expect(JSON.parse(ok(await a2.spl('namespace', 'list', '--json'), 'namespaces').stdout)).toEqual(namespaces)
      expect(JSON.parse(ok(await a2.spl('consent', 'list', '--json'), 'grants').stdout)).toEqual(grants)
      // A new record takes a seq above every copied one, and P pulls it with its old cursor.
      aIds.push(await a2.emit('th_a', 'after the move'))
      ok(await p.spl('fleet', 'sync', 'kick', pPair.pair_id), 'kick P’s pair')
      await until(
        'P has the record written on PostgreSQL',
        async () => ((await p.threadRecordIds('th_a')).length === 4 ? true : undefined),
        60_000,
      )
      const view = await p.api.get<PairView>(`/v1/sync/pairs/${pPair.pair_id}`)
      expect(view.totals.cursor_resets).toBe(0)
      expect(view.cursor).toContain(`.${source.epoch}.`)
      expect(await p.threadRecordIds('th_a')).toEqual(aIds)
    } finally {
      await a2.stop()
    }

    // Another instance's home into that database: refused with a code and a fix.
    await p.stop()
    const other = await spl(p.home, ['storage', 'migrate', '--to', url])
    expect(other.code).toBe(2)
    expect(other.stderr).toMatch(/^Error: MIGRATE_TARGET_IN_USE: .*another store.* Fix: migrate into an empty database/)
  }, 150_000)

  it('killed with SIGKILL midway and run again: the same ids, cursors and epoch; run once more it copies nothing', async () => {
    expect(home, 'the first test made the home').not.toBe('')
    const url = await cluster.createDatabase()
    const pg = cluster.kysely(url, 1)
    try {
      const child = spawn(process.execPath, [SPL_BIN, 'storage', 'migrate', '--to', url], {
        env: { ...process.env, SYNCROPEL_HOME: home },
        stdio: 'ignore',
      })
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
      const copiedBeforeKill = await until(
        'some records copied',
        async () => {
          const n = await sql<{ n: number }>`select count(*)::int as n from spl_records`.execute(pg).then(
            (x) => x.rows[0]!.n,
            () => 0, // not made yet
          )
          return n >= 20_000 ? n : undefined
        },
        60_000,
        20,
      )
      child.kill('SIGKILL')
      expect(await exited).toBe(null)
      const left = Number((await sql<{ n: number }>`select count(*)::int as n from spl_records`.execute(pg)).rows[0]!.n)
      expect(left).toBeGreaterThanOrEqual(copiedBeforeKill)
      expect(left, 'killed before the end').toBeLessThan(source.records.length)

      const again = report(await spl(home, ['storage', 'migrate', '--to', url, '--json']))
      console.log(`killed after ${left} records; the rerun copied ${again.records.copied} in ${again.elapsed_ms} ms`)
      expect(again.verified).toBe(true)
      expect(again.records.resumed_after_seq).toBeGreaterThan(0)
      expect(again.records.copied).toBe(source.records.length - left)
      expect(await readPostgres(pg)).toEqual(source)

      const done = report(await spl(home, ['storage', 'migrate', '--to', url, '--json']))
      console.log(`a finished migration run again: ${done.records.copied} records copied, verified in ${done.elapsed_ms} ms`)
      expect(done).toMatchObject({ verified: true, records: { copied: 0 } })
      expect(await readPostgres(pg)).toEqual(source)
      // For a person: every table checked, and the next step with the password hidden.
      const human = await spl(home, ['storage', 'migrate', '--to', url])
      expect(human.code, human.stderr).toBe(0)
      expect(human.stdout).toMatch(/^ {2}✓ spl_pairs +source 1, target 1$/m)
      expect(human.stdout).toMatch(/^Verified: every table has the same rows\.$/m)
      expect(human.stdout).toContain(`url = "${url.replace(`:${PG_PASSWORD}@`, ':***@')}"`)
      expect(human.stdout + human.stderr).not.toContain(`:${PG_PASSWORD}@`)
    } finally {
      await pg.destroy()
    }
  }, 120_000)
})
