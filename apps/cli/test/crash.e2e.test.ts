import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { prng } from '../../../test-utils/prng.js'
import { spl, TestDaemon } from '../../../test-utils/test-daemon.js'
import { Database, seedRecords } from './seed-records.js'

// Issue 3, crash safety of the pull loop (SPEC 4.2, 11): `kill -9` of the pulling daemon at random
// moments during a 100,000-record catch-up, ten times in a row, then a restart: every record is
// stored exactly once and the cursor is never ahead of the stored records.

const THREAD = 'th_crash'
const TOTAL = 100_000
const KILLS = 10
const CURSOR_RE = /^c[12]\.([0-9a-f]+)\.(\d+)(?:\.\d+(?:\.r\d+)?)?$/

const homes: string[] = []

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** True while `pid` exists — a zombie too, so a restart never sees a lock of a not-yet-reaped process. */
function exists(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** The pid of the daemon currently running on `home`, if it is alive and is an `spl serve`. */
function livePid(home: string): number | undefined {
  const file = path.join(home, 'run', 'daemon.json')
  if (!existsSync(file)) return undefined
  try {
    const { pid } = JSON.parse(readFileSync(file, 'utf8')) as { pid: number }
    if (!Number.isInteger(pid) || pid <= 0 || !exists(pid)) return undefined
    // Guard against pid reuse: only a process whose command line is `… serve` is ours.
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
    return cmd.includes('serve') ? pid : undefined
  } catch {
    return undefined
  }
}

// Every daemon started here is stopped and every home removed, even when the test failed half way.
afterAll(async () => {
  for (const home of homes) {
    const pid = livePid(home)
    if (pid !== undefined) {
      await spl(home, ['serve', '--stop'])
      if (exists(pid) && livePid(home) === pid) process.kill(pid, 'SIGKILL')
    }
    rmSync(home, { recursive: true, force: true })
  }
}, 60_000)

interface BState {
  /** Records of THREAD stored on B. */
  count: number
  /** The sequence (in A's store) the pair's cursor points at; 0 before the first commit. */
  cursorSeq: number
  state: string | null
}

describe('issue 3: kill -9 during a catch-up', () => {
  it(`${KILLS} SIGKILLs of the puller during a ${TOTAL}-record catch-up: every record stored once, cursor never ahead`, {
    timeout: 300_000,
  }, async () => {
    const seed = Number(process.env['SPL_CRASH_SEED'] ?? Math.floor(Math.random() * 2 ** 31))
    console.log(`[crash] PRNG seed ${seed} (replay with SPL_CRASH_SEED=${seed})`)
    const random = prng(seed)
    const t0 = Date.now()

    // Source A: init, seed 100,000 signed records straight into its store, then serve.
    const homeA = mkdtempSync(path.join(os.tmpdir(), 'spl-crash-a-'))
    homes.push(homeA)
    const init = await spl(homeA, ['init'])
    expect(init.code, init.stderr).toBe(0)
    const seeded = await seedRecords(homeA, THREAD, TOTAL)
    console.log(`[crash] seeded ${seeded.count} records (~${seeded.envelopeBytes} B per envelope) into A in ${seeded.ms} ms`)
    const a = await TestDaemon.start({ home: homeA })
    expect(a.did).toBe(seeded.did)
    const dbA = path.join(homeA, 'spl.db')
    const aInfo = (() => {
      const db = new Database(dbA, { readonly: true, fileMustExist: true })
      try {
        const head = Number(db.prepare('SELECT max(seq) FROM spl_records').pluck().get())
        const ids = db.prepare('SELECT id FROM spl_records WHERE thread = ? ORDER BY seq').pluck().all(THREAD) as string[]
        return { head, ids }
      } finally {
        db.close()
      }
    })()
    expect(aInfo.ids).toHaveLength(TOTAL)
    expect(new Set(aInfo.ids).size).toBe(TOTAL)

    // Puller B: a fresh daemon with the pair B ← A.
    let b = await TestDaemon.start()
    homes.push(b.home)
    const dbB = path.join(b.home, 'spl.db')
    const created = await b.api.post<{ pair_id: string; cursor: string | null }>('/v1/sync/pairs', {
      peer_did: a.did,
      peer_url: a.url,
      thread_id: THREAD,
    })
    const pairId = created.pair_id
    const tPair = Date.now()
    console.log(`[crash] A and B up, pair ${pairId} created at +${tPair - t0} ms`)

    /**
     * Reads B's store directly, in one read transaction (one snapshot: records and cursor as one
     * commit left them), and checks: no record twice, the cursor never past the stored records.
     */
    const checkB = (label: string): BState => {
      const db = new Database(dbB, { readonly: true, fileMustExist: true })
      let rows: { n: number; d: number }
      let dupIds: unknown[]
      let dupClocks: unknown[]
      let bIds: string[]
      let pair: { cursor: string | null; state: string } | undefined
      try {
        db.exec('BEGIN')
        dupIds = db.prepare('SELECT id, count(*) AS n FROM spl_records GROUP BY id HAVING count(*) > 1').all()
        dupClocks = db
          .prepare('SELECT actor, thread, clock, count(*) AS n FROM spl_records GROUP BY actor, thread, clock HAVING count(*) > 1')
          .all()
        rows = db.prepare('SELECT count(*) AS n, count(DISTINCT id) AS d FROM spl_records').get() as { n: number; d: number }
        bIds = db.prepare('SELECT id FROM spl_records WHERE thread = ?').pluck().all(THREAD) as string[]
        pair = db.prepare('SELECT cursor, state FROM spl_pairs WHERE pair_id = ?').get(pairId) as typeof pair
        db.exec('COMMIT')
      } finally {
        db.close()
      }
      expect(dupIds, `${label}: ids stored more than once`).toEqual([])
      expect(dupClocks, `${label}: (actor, thread, clock) stored more than once`).toEqual([])
      expect(rows.n, `${label}: count(*) vs distinct ids`).toBe(rows.d)
      expect(pair, `${label}: the pair row`).toBeDefined()
      let cursorSeq = 0
      if (pair?.cursor) {
        const m = CURSOR_RE.exec(pair.cursor)
        expect(m, `${label}: cursor ${pair.cursor}`).not.toBeNull()
        expect(m![1], `${label}: cursor epoch is A's`).toBe(seeded.epoch)
        cursorSeq = Number(m![2])
      }
      // What A holds up to the cursor, read from A's own store.
      const adb = new Database(dbA, { readonly: true, fileMustExist: true })
      let upToCursor: string[]
      try {
        upToCursor = adb.prepare('SELECT id FROM spl_records WHERE seq <= ? AND thread = ?').pluck().all(cursorSeq, THREAD) as string[]
      } finally {
        adb.close()
      }
      const have = new Set(bIds)
      const missing = upToCursor.filter((id) => !have.has(id))
      expect(missing.length, `${label}: records of A at or before the cursor (seq ${cursorSeq}) missing on B`).toBe(0)
      const known = new Set(upToCursor)
      const beyond = bIds.filter((id) => !known.has(id)).length
      // SPEC 4.2: records and cursor move in ONE transaction, so nothing lies beyond the cursor either.
      expect.soft(beyond, `${label}: records stored on B beyond the cursor (seq ${cursorSeq})`).toBe(0)
      return { count: bIds.length, cursorSeq, state: pair?.state ?? null }
    }

    const lockFile = path.join(b.home, 'run', 'daemon.pid')
    const perKill: { kill: number; waitMs: number; records: number; cursorSeq: number; reapMs: number; restartMs: number }[] = []
    let lastCursor = 0
    for (let k = 1; k <= KILLS; k++) {
      // 100–800 ms: ten kills must land within the catch-up, which each session makes faster.
      const waitMs = 100 + Math.floor(random() * 701)
      await sleep(waitMs)
      const pid = b.pid
      const reapMs = await b.kill9()
      const s = checkB(`after kill ${k}`)
      expect.soft(s.cursorSeq, `kill ${k}: a committed cursor went backwards`).toBeGreaterThanOrEqual(lastCursor)
      lastCursor = s.cursorSeq
      // The dead daemon's lock is still there: the restart must take it over.
      expect(readFileSync(lockFile, 'utf8').trim(), `kill ${k}: the stale lock`).toBe(String(pid))
      const tRestart = Date.now()
      b = await b.restart(0)
      const restartMs = Date.now() - tRestart
      expect(readFileSync(lockFile, 'utf8').trim(), `restart ${k}: the lock taken over`).toBe(String(b.pid))
      perKill.push({ kill: k, waitMs, records: s.count, cursorSeq: s.cursorSeq, reapMs, restartMs })
      console.log(
        `[crash] kill ${k}/${KILLS} after ${waitMs} ms: B had ${s.count} records (cursor seq ${s.cursorSeq}, state ${s.state}); ` +
          `gone after ${reapMs} ms, restarted (pid ${b.pid}) in ${restartMs} ms`,
      )
    }
    const tLastRestart = Date.now()
    // The kills landed during the catch-up, not after it, and the catch-up moved between them.
    expect(
      perKill.every((p) => p.records < TOTAL),
      'a kill landed after the catch-up had finished',
    ).toBe(true)
    expect(perKill.at(-1)!.records, 'no page was committed across the ten kills').toBeGreaterThan(0)

    // Let B finish after the tenth restart, checking the invariant while it runs.
    let s = checkB('after the last restart')
    const deadline = t0 + 285_000
    while ((s.count < TOTAL || s.cursorSeq !== aInfo.head) && Date.now() < deadline) {
      await sleep(2000)
      s = checkB(`${Date.now() - tLastRestart} ms after the last restart`)
    }
    const finishMs = Date.now() - tLastRestart
    console.log(`[crash] B finished ${finishMs} ms after the last restart; whole run ${Date.now() - t0} ms`)

    // Final: exactly A's 100,000 ids, each once, and the cursor at A's head.
    const final = checkB('final')
    expect(final.count).toBe(TOTAL)
    expect(final.cursorSeq).toBe(aInfo.head)
    const db = new Database(dbB, { readonly: true, fileMustExist: true })
    let bIds: string[]
    let cursor: string | null
    try {
      bIds = db.prepare('SELECT id FROM spl_records WHERE thread = ?').pluck().all(THREAD) as string[]
      cursor = db.prepare('SELECT cursor FROM spl_pairs WHERE pair_id = ?').pluck().get(pairId) as string | null
    } finally {
      db.close()
    }
    const aSet = new Set(aInfo.ids)
    const bSet = new Set(bIds)
    expect(bIds).toHaveLength(TOTAL)
    expect(bSet.size).toBe(TOTAL)
    expect(bIds.filter((id) => !aSet.has(id)).slice(0, 5), 'ids on B that A does not hold').toEqual([])
    expect(aInfo.ids.filter((id) => !bSet.has(id)).slice(0, 5), 'ids of A missing on B').toEqual([])
    const last = CURSOR_RE.exec(cursor ?? '')
    expect([last?.[1], Number(last?.[2])], `final cursor ${cursor}`).toEqual([seeded.epoch, aInfo.head])
    const view = await b.api.get<{ state: string; totals: Record<string, unknown> }>(`/v1/sync/pairs/${pairId}`)
    expect(view.state).toBe('running')
    console.log(`[crash] per kill: ${JSON.stringify(perKill.map((p) => p.records))}`)
    console.log(`[crash] pair totals on B: ${JSON.stringify(view.totals)}`)
  })
})
