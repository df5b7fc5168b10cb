import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PG_SKIP, type PgCluster, startPgCluster } from '../../../../test-utils/pg-cluster.js'
import { seedRecords } from '../../../cli/test/seed-records.js'
import { homePaths } from '../config.js'
import { openDatabase } from '../db.js'
import { initHome } from '../home.js'
import { migrateStorage } from './index.js'

// The cases the e2e test (apps/cli/test/storage-migrate.e2e.test.ts) does not reach: sequences
// past deleted rows, a home that changed between an interrupted run and the rerun, and a source
// the target cannot take.

/** Runs `statement` on the home's spl.db (as another writer would between two runs). */
function onSource(home: string, statement: string): void {
  const { sqlite } = openDatabase(homePaths(home).db)
  sqlite.exec(statement)
  sqlite.close()
}

describe.skipIf(PG_SKIP !== null)(`migrateStorage${PG_SKIP ? ` (skipped: ${PG_SKIP})` : ''}`, () => {
  let cluster: PgCluster
  const homes: string[] = []
  beforeAll(async () => {
    cluster = await startPgCluster()
  })
  afterAll(() => {
    cluster?.remove()
    for (const h of homes) rmSync(h, { recursive: true, force: true })
  })

  /** A home with `n` records of th_m, written through the daemon's own RecordStore. */
  async function newHome(n: number): Promise<string> {
    const home = mkdtempSync(path.join(os.tmpdir(), 'spl-migrate-'))
    homes.push(home)
    initHome(home)
    await seedRecords(home, 'th_m', n)
    return home
  }

  it('the sequence goes past the highest seq SQLite ever handed out, also of a deleted row', async () => {
    const home = await newHome(50)
    onSource(home, 'delete from spl_records where seq > 40')
    const url = await cluster.createDatabase()
    const r = await migrateStorage(home, { to: url })
    expect(r.verified).toBe(true)
    expect(r.records).toMatchObject({ total: 40, copied: 40 })
    const db = cluster.kysely(url, 1)
    try {
      const next = await sql<{ n: number }>`select nextval(pg_get_serial_sequence('spl_records', 'seq')) as n`.execute(db)
      expect(next.rows[0]!.n).toBe(51)
    } finally {
      await db.destroy()
    }
  })

  it('a home that changed after an interrupted run: the differing chunk is copied again and the target equals the source', async () => {
    const home = await newHome(30)
    const url = await cluster.createDatabase()
    expect((await migrateStorage(home, { to: url })).verified).toBe(true)
    // As a stub replaced by its full record: a row goes, a new one comes at a higher seq.
    onSource(home, 'delete from spl_records where seq = 7')
    await seedRecords(home, 'th_m2', 5)
    const r = await migrateStorage(home, { to: url })
    expect(r.verified).toBe(true)
    expect(r.records.recopied).toEqual([{ from_seq: 1, to_seq: 35 }])
    expect(r.tables.find((t) => t.table === 'spl_records')).toMatchObject({ source: 34, target: 34, verified: true })
  })

  it('a target holding rows the home does not: verified false (the CLI exits 1)', async () => {
    const home = await newHome(5)
    const url = await cluster.createDatabase()
    await migrateStorage(home, { to: url })
    const db = cluster.kysely(url, 1)
    await sql`insert into spl_records (id, id_key, thread, actor, clock, act, namespace, record, stored_at)
              values ('stray', -1, 'th_x', 'did:key:x', 0, 'KNOW', 'default', '{}', 0)`.execute(db)
    await db.destroy()
    const r = await migrateStorage(home, { to: url })
    expect(r.verified).toBe(false)
    expect(r.tables.find((t) => t.table === 'spl_records')).toMatchObject({ source: 5, target: 6, verified: false })
  })

  it('a table or a migration the target does not have: refused before anything is copied', async () => {
    const home = await newHome(3)
    // An empty URL must not open the home's own spl.db as the target.
    await expect(migrateStorage(home, { to: '' })).rejects.toMatchObject({ code: 'USAGE' })
    onSource(home, 'create table spl_future_things (k integer primary key)')
    await expect(migrateStorage(home, { to: await cluster.createDatabase() })).rejects.toMatchObject({
      code: 'MIGRATE_SCHEMA_MISMATCH',
      message: expect.stringContaining('spl_future_things'),
    })
    onSource(home, "drop table spl_future_things; insert into spl_records_migrations values ('9999_future', 'x')")
    const url = await cluster.createDatabase()
    await expect(migrateStorage(home, { to: url })).rejects.toMatchObject({
      code: 'MIGRATE_SCHEMA_MISMATCH',
      fix: expect.stringMatching(/upgrade/),
    })
    const db = cluster.kysely(url, 1)
    try {
      expect((await sql<{ n: number }>`select count(*)::int as n from spl_records`.execute(db)).rows[0]!.n).toBe(0)
    } finally {
      await db.destroy()
    }
  })
})
