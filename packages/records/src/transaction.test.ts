import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Keypair, SplError } from '@spl/identity'
import Database from 'better-sqlite3'
import { Kysely, SqliteDialect } from 'kysely'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { signRecord } from './sign.js'
import { RecordStore } from './store.js'
import type { RecordsTables } from './tables.js'

// A full disk inside a transaction, made with PRAGMA max_page_count: SQLITE_FULL as a real full
// disk gives it. The cause must come out as DISK_FULL (507), never kysely's "cannot rollback - no
// transaction is active", and the connection must work again once there is room.

const key = Keypair.fromSeed(new Uint8Array(32).fill(77))
let dir: string
let sqlite: Database.Database
let db: Kysely<RecordsTables>

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'spl-trx-'))
  sqlite = new Database(join(dir, 'spl.db'))
  sqlite.pragma('journal_mode = WAL')
  db = new Kysely<RecordsTables>({ dialect: new SqliteDialect({ database: sqlite }) })
})

afterEach(async () => {
  await db.destroy()
  rmSync(dir, { recursive: true, force: true })
})

const big = (clock: number) =>
  signRecord(key, {
    parents: [],
    thread: 'th_full',
    actor: key.did,
    act: 'KNOW',
    body: { text: 'x'.repeat(200_000) },
    clock,
    data_type: 'SCALAR',
  })

describe('inTransaction on a full disk', () => {
  it('throws DISK_FULL (507) with a fix, leaves nothing half-written, and works again when there is room', async () => {
    const store = await RecordStore.open(db)
    await store.transaction((trx) => store.appendLocal(big(0), 1, trx))
    const pages = Number(sqlite.pragma('page_count', { simple: true }))
    sqlite.pragma(`max_page_count = ${pages + 2}`)
    let err: unknown
    try {
      await store.transaction(async (trx) => {
        await store.appendLocal(big(1), 2, trx)
        return store.appendLocal(big(2), 3, trx)
      })
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(SplError)
    expect(err).toMatchObject({ code: 'DISK_FULL', status: 507 })
    expect((err as SplError).fix).toMatch(/free space/)
    expect(String((err as Error).message)).not.toMatch(/cannot rollback/)
    expect((await store.listAfter('th_full', 0, 10)).map((r) => r.clock)).toEqual([0])
    // Space returns: the same connection takes the next transaction.
    sqlite.pragma('max_page_count = 1073741823')
    await store.transaction(async (trx) => {
      await store.appendLocal(big(1), 2, trx)
      return store.appendLocal(big(2), 3, trx)
    })
    expect((await store.listAfter('th_full', 0, 10)).map((r) => r.clock)).toEqual([0, 1, 2])
    expect(sqlite.pragma('integrity_check', { simple: true })).toBe('ok')
  })

  it('any other failure comes out as itself, after a rollback', async () => {
    const store = await RecordStore.open(db)
    await expect(
      store.transaction(async (trx) => {
        await store.appendLocal(big(0), 1, trx)
        throw new Error('changed my mind')
      }),
    ).rejects.toThrow('changed my mind')
    expect(await store.listAfter('th_full', 0, 10)).toEqual([])
  })
})
