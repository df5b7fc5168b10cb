import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import Database from 'better-sqlite3'
import { sql } from 'kysely'
import { afterEach, describe, expect, it } from 'vitest'
import { openDatabase, reusingStatements } from './db.js'

describe('reusingStatements', () => {
  const dirs: string[] = []
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
  })

  it('hands out the same statement for the same SQL, and the answers stay right', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'spl-db-'))
    dirs.push(dir)
    const { db, sqlite } = openDatabase(path.join(dir, 'spl.db'))
    await sql`create table t (k integer primary key, v text)`.execute(db)
    for (let i = 0; i < 50; i++) await sql`insert into t (k, v) values (${i}, ${`v${i}`})`.execute(db)
    const rows = await sql<{ v: string }>`select v from t where k >= ${45} order by k`.execute(db)
    expect(rows.rows.map((r) => r.v)).toEqual(['v45', 'v46', 'v47', 'v48', 'v49'])
    expect((await sql<{ n: number }>`select count(*) as n from t`.execute(db)).rows[0]!.n).toBe(50)
    await db.destroy()
    expect(sqlite.open).toBe(false)
  })

  it('keeps the most recent statements only, and never reuses one that is still iterating', () => {
    const sqlite = new Database(':memory:')
    sqlite.exec('create table t (k integer)')
    sqlite.exec('insert into t values (1), (2), (3)')
    const reusing = reusingStatements(sqlite, 2)
    const a = reusing.prepare('select k from t')
    expect(reusing.prepare('select k from t')).toBe(a)
    const iter = (a as unknown as Database.Statement).iterate()
    iter.next()
    const b = reusing.prepare('select k from t')
    expect(b).not.toBe(a) // a is busy
    expect((b as unknown as Database.Statement).all()).toHaveLength(3)
    iter.return?.()
    reusing.prepare('select 1')
    reusing.prepare('select 2') // evicts 'select k from t'
    expect(reusing.prepare('select k from t')).not.toBe(b)
    reusing.close()
  })
})
