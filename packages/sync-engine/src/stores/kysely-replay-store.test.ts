import { mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Keypair } from '@spl/identity'
import { createRequestProof, ReplayCache, verifyRequestProof } from '@spl/transport'
import { Kysely, type SqliteDatabase, SqliteDialect } from 'kysely'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { dialectTitle, sharedPgCluster, skipDialect, TEST_DIALECTS, type TestDialect } from '../../../../test-utils/dialects.js'
import { openPgKysely } from '../../../../test-utils/pg-cluster.js'
import { KyselyReplayStore } from './kysely-replay-store.js'

// SPEC 7.4: used proof ids are remembered until they expire, across restarts: a replay store on
// a database file, closed and opened again as a daemon restart does.

/** better-sqlite3 as kysely-store.test.ts borrows it (the copy @spl/records keeps as a devDependency). */
type SqliteCtor = new (file: string) => SqliteDatabase & { close(): void }
const Database = createRequire(new URL('../../../records/package.json', import.meta.url))('better-sqlite3') as SqliteCtor

let dir: string
let open: Kysely<unknown>[] = []
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'spl-replay-'))
})
afterEach(async () => {
  for (const db of open.splice(0)) await db.destroy()
  rmSync(dir, { recursive: true, force: true })
})

function database(): Kysely<unknown> {
  const db =
    dialect === 'postgres'
      ? openPgKysely(pgUrl)
      : new Kysely<unknown>({ dialect: new SqliteDialect({ database: new Database(join(dir, 'spl.db')) }) })
  open.push(db)
  return db
}

const pgc = sharedPgCluster()
/** The dialect of the running suite, and its database on PostgreSQL (a fresh one per test). */
let dialect: TestDialect = 'sqlite'
let pgUrl = ''

for (const d of TEST_DIALECTS) {
  describe.skipIf(skipDialect(d))(`replay store ${dialectTitle(d)}`, () => {
    beforeEach(async () => {
      dialect = d
      if (d === 'postgres') pgUrl = await pgc.database()
    })
    afterEach(() => {
      dialect = 'sqlite'
    })

    describe('KyselyReplayStore', () => {
      it('claims a key once until its time, then lets it be taken again', async () => {
        const s = await KyselyReplayStore.open(database(), 0)
        expect(await s.claim('a', 1_000, 0)).toBe(true)
        expect(await s.claim('a', 5_000, 500)).toBe(false)
        expect(await s.claim('a', 5_000, 999)).toBe(false)
        expect(await s.claim('b', 5_000, 999)).toBe(true)
        expect(await s.claim('a', 5_000, 1_000)).toBe(true)
        expect(await s.claim('a', 9_000, 4_999)).toBe(false)
      })

      it('remembers across a close and a new open of the same database file (a restart)', async () => {
        const first = database()
        const s1 = await KyselyReplayStore.open(first, 0)
        expect(await s1.claim('k', 90_000, 10)).toBe(true)
        await first.destroy()
        open = open.filter((d) => d !== first)
        const s2 = await KyselyReplayStore.open(database(), 20)
        expect(await s2.claim('k', 90_000, 30)).toBe(false)
        expect(await s2.size()).toBe(1)
      })

      it('prunes expired ids at open and as time passes', async () => {
        const db = database()
        const s = await KyselyReplayStore.open(db, 0)
        for (let i = 0; i < 10; i++) expect(await s.claim(`old${i}`, 1_000, 0)).toBe(true)
        expect(await s.claim('young', 100_000, 0)).toBe(true)
        expect(await s.size()).toBe(11)
        // The next claim after the prune interval removes what expired.
        expect(await s.claim('later', 200_000, 60_000)).toBe(true)
        expect(await s.size()).toBe(2)
        // Opening again prunes what expired meanwhile.
        const again = await KyselyReplayStore.open(db, 150_000)
        expect(await again.size()).toBe(1)
      })

      it('a proof verified through it is refused after the restart, until it expires', async () => {
        const caller = Keypair.generate()
        const callee = Keypair.generate()
        const pathAndQuery = '/v1/sync/changes?thread=th_restart'
        const { token } = await createRequestProof(caller, { method: 'GET', pathAndQuery, aud: callee.did })
        const expected = { selfDid: callee.did, method: 'GET', pathAndQuery }
        const first = database()
        await verifyRequestProof(token, { ...expected, replay: new ReplayCache(await KyselyReplayStore.open(first)) })
        await first.destroy()
        open = open.filter((d) => d !== first)
        const replay = new ReplayCache(await KyselyReplayStore.open(database()))
        await expect(verifyRequestProof(token, { ...expected, replay })).rejects.toMatchObject({ code: 'PROOF_INVALID', message: /replay/ })
      })
    })
  })
}
