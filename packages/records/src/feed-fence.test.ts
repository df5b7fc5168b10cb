import { Keypair } from '@spl/identity'
import { type Kysely, sql } from 'kysely'
import { afterEach, describe, expect, it } from 'vitest'
import { sharedPgCluster } from '../../../test-utils/dialects.js'
import { openPgKysely, PG_SKIP } from '../../../test-utils/pg-cluster.js'
import { type Candidate, precheckEnvelope } from './ingest.js'
import { idKeyOf } from './migrations.js'
import { signRecord, toEnvelope } from './sign.js'
import { RecordStore } from './store.js'
import type { RecordsTables } from './tables.js'

// SPEC 11: on PostgreSQL a seq is drawn at insert and becomes visible at commit, so two writers
// can commit out of seq order, and a feed reading `seq > cursor` can pass a row that appears
// later below its cursor. These tests show the skip with writers that ignore the store's
// commit-order lock, and its absence with the store's own writes (docs/decisions.md 130).

const THREAD = 'th_fence'
const pgc = sharedPgCluster()
const opened: Kysely<unknown>[] = []
afterEach(async () => {
  for (const db of opened.splice(0)) await db.destroy()
})

const kps = [0, 1, 2, 3].map((i) => Keypair.fromSeed(new Uint8Array(32).fill(40 + i)))
function candidate(kp: Keypair, clock: number): Candidate {
  const s = signRecord(kp, {
    parents: [],
    thread: THREAD,
    actor: kp.did,
    act: 'DO',
    body: { text: `${clock}` },
    clock,
    data_type: 'SCALAR',
  })
  const c = precheckEnvelope(toEnvelope(s, 1), THREAD)
  if (!c.ok) throw new Error(c.code)
  return c
}

/** Two independent connections to one database (as two replicas have), each with a store. */
async function twoWriters(): Promise<[RecordStore, RecordStore, Kysely<RecordsTables>]> {
  const url = await pgc.database()
  const a = openPgKysely(url, 2)
  const b = openPgKysely(url, 2)
  opened.push(a, b)
  return [await RecordStore.open(a), await RecordStore.open(b), a as Kysely<RecordsTables>]
}

/** A feed reader as source/feed.ts pages: `seq > cursor`, cursor moved to the last row served. */
function tail(store: RecordStore) {
  let cursor = 0
  const seen: string[] = []
  return {
    seen,
    async page(): Promise<number> {
      const rows = await store.listAfter(THREAD, cursor, 1000)
      for (const r of rows) seen.push(r.id)
      if (rows.length > 0) cursor = rows[rows.length - 1]!.seq
      return rows.length
    },
  }
}

/** An INSERT as a writer would make it without the store: no commit-order lock. */
async function rawInsert(db: Kysely<RecordsTables>, c: Candidate): Promise<void> {
  await sql`insert into spl_records (id, id_key, thread, actor, clock, act, namespace, record, sig, redacted, stored_at, origin)
    values (${c.id}, ${idKeyOf(c.id)}, ${THREAD}, ${c.record.actor}, ${c.record.clock}, ${c.record.act}, 'default', ${c.canonical}, null, 0, 1, null)`.execute(
    db,
  )
}

describe.skipIf(PG_SKIP !== null)(
  `the change feed under concurrent writers on PostgreSQL${PG_SKIP ? ` (skipped: ${PG_SKIP})` : ''}`,
  () => {
    it('naive writers: a row committed after a higher seq is passed by a `seq > cursor` reader and never served', async () => {
      const [reader, , db] = await twoWriters()
      const [c1, c2] = [candidate(kps[0]!, 0), candidate(kps[1]!, 0)]
      const t1 = await db.startTransaction().execute()
      await rawInsert(t1, c1) // seq 1, not yet visible
      await db.transaction().execute((t2) => rawInsert(t2, c2)) // seq 2, committed
      const feed = tail(reader)
      expect(await feed.page()).toBe(1) // serves seq 2: the cursor passes seq 1
      await t1.commit().execute()
      await feed.page()
      expect(await reader.count()).toBe(2)
      // The skip the fence prevents: seq 1 is stored and was never served.
      expect(feed.seen).toEqual([c2.id])
    })

    it("the store's writers: the second waits for the first to commit, so the reader serves every row", async () => {
      const [s1, s2, db] = await twoWriters()
      const [c1, c2] = [candidate(kps[0]!, 0), candidate(kps[1]!, 0)]
      let release!: () => void
      const held = new Promise<void>((r) => (release = r))
      let inFirst!: () => void
      const started = new Promise<void>((r) => (inFirst = r))
      const first = s1.transaction(async (trx) => {
        await s1.ingest([c1], { origin: null, now: 1 }, trx) // seq drawn, lock held
        inFirst()
        await held
      })
      await started
      let secondDone = false
      const second = s2.ingest([c2], { origin: null, now: 1 }).then(() => {
        secondDone = true
      })
      const feed = tail(await RecordStore.open(db))
      await new Promise((r) => setTimeout(r, 300))
      expect(secondDone).toBe(false) // waits for the lock: it cannot commit ahead of seq 1
      expect(await feed.page()).toBe(0)
      release()
      await first
      await second
      while ((await feed.page()) > 0) {}
      expect(feed.seen).toEqual([c1.id, c2.id])
    })

    it('four writers and a reader tailing at once: the reader serves every stored row exactly once, in seq order', async () => {
      const url = await pgc.database()
      const dbs = [0, 1, 2, 3, 4].map(() => openPgKysely(url, 1))
      opened.push(...dbs)
      const stores = await Promise.all(dbs.map((d) => RecordStore.open(d)))
      const feed = tail(stores[4]!)
      let writing = true
      const reading = (async () => {
        while (writing) await feed.page()
      })()
      await Promise.all(
        kps.map(async (kp, w) => {
          for (let batch = 0; batch < 20; batch++) {
            const cs = Array.from({ length: 10 }, (_, i) => candidate(kp, batch * 10 + i))
            await stores[w]!.ingest(cs, { origin: null, now: 1 })
          }
        }),
      )
      writing = false
      await reading
      while ((await feed.page()) > 0) {}
      expect(feed.seen.length).toBe(800)
      expect(new Set(feed.seen).size).toBe(800)
    })
  },
)
