// `pnpm soak` (issue 18): the two long runs that no unit test can make, on real `spl serve`
// processes on 127.0.0.1, printing lost and duplicated records (both must be 0) and the figures.
//
//   1. kill -9 × N during a catch-up: a source A holding threads of M signed records, a puller B
//      killed at random moments (seeded) while it catches up, restarted each time; when a thread
//      is caught up the next one is paired (A is stopped and seeded with more threads when they
//      run out). At the end every thread of A is on B, each record once.
//   2. a flapping peer: A emits records at a steady rate while, at random intervals, A is stopped
//      (SIGTERM) or killed (SIGKILL) and restarted on its port, or its port is blocked by the
//      proxy B pulls through (connections refused, black-holed, or reset mid-stream). At the end
//      every record A holds is on B, each once.
//
//   pnpm soak                                   (builds first; kill ×100 and 30 minutes of flapping)
//   node scripts/soak.js --kills 5 --flap-seconds 20
//   node scripts/soak.js --phase flap --flap-seconds 120 --seed 7
//
// Options (also as env: SPL_SOAK_KILLS, SPL_SOAK_RECORDS, SPL_SOAK_FLAP_S, SPL_SOAK_EMIT_RATE, SPL_SOAK_SEED):
//   --kills N          SIGKILLs of the puller (100)
//   --records M        records per catch-up thread (20000)
//   --flap-seconds S   how long the peer flaps (1800)
//   --emit-rate R      records per second A emits while flapping (20)
//   --seed S           PRNG seed (random; printed)
//   --phase kill|flap|both (both)
//   --json             print the result as one line `SOAK_RESULT {...}` at the end too
// Exit code 0 when lost = duplicated = 0 in every phase, 1 otherwise.
import { createRequire } from 'node:module'
import net from 'node:net'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { dist, initHome, request, sleep, withCleanup } from '../bench/lib.js'
import { TestDaemon } from '../test-utils/test-daemon.js'

const Database = createRequire(new URL('../apps/daemon/package.json', import.meta.url))('better-sqlite3')

const { values: args } = parseArgs({
  options: {
    kills: { type: 'string' },
    records: { type: 'string' },
    'flap-seconds': { type: 'string' },
    'emit-rate': { type: 'string' },
    seed: { type: 'string' },
    phase: { type: 'string' },
    json: { type: 'boolean' },
  },
})
const env = process.env
const KILLS = Number(args.kills ?? env.SPL_SOAK_KILLS ?? 100)
const RECORDS = Number(args.records ?? env.SPL_SOAK_RECORDS ?? 20_000)
const FLAP_S = Number(args['flap-seconds'] ?? env.SPL_SOAK_FLAP_S ?? 1800)
const EMIT_RATE = Number(args['emit-rate'] ?? env.SPL_SOAK_EMIT_RATE ?? 20)
const SEED = Number(args.seed ?? env.SPL_SOAK_SEED ?? Math.floor(Math.random() * 2 ** 31)) >>> 0
const PHASE = args.phase ?? 'both'
if (!['kill', 'flap', 'both'].includes(PHASE)) throw new Error(`--phase is kill, flap or both, not ${PHASE}`)

/** mulberry32, as test-utils/prng.ts (plain JS here). */
function prng(seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
const random = prng(SEED)
const between = (lo, hi) => lo + Math.floor(random() * (hi - lo + 1))

const t0 = Date.now()
const stamp = () => `+${((Date.now() - t0) / 1000).toFixed(1)}s`
const log = (s) => console.log(`[soak ${stamp()}] ${s}`)

// ---------------------------------------------------------------------------------------------
// Stores, read directly (read-only; WAL lets a reader in beside the daemon).

/** Ids of `thread` in the store at `home`, in store order, and how many rows are duplicates. */
function storeOf(home, thread) {
  const db = new Database(path.join(home, 'spl.db'), { readonly: true, fileMustExist: true })
  try {
    db.exec('BEGIN')
    const ids = db.prepare('SELECT id FROM spl_records WHERE thread = ? ORDER BY seq').pluck().all(thread)
    const dupIds = db
      .prepare('SELECT count(*) FROM (SELECT id FROM spl_records WHERE thread = ? GROUP BY id HAVING count(*) > 1)')
      .pluck()
      .get(thread)
    const dupClocks = db
      .prepare('SELECT count(*) FROM (SELECT actor, clock FROM spl_records WHERE thread = ? GROUP BY actor, clock HAVING count(*) > 1)')
      .pluck()
      .get(thread)
    db.exec('COMMIT')
    return { ids, duplicated: ids.length - new Set(ids).size, dupIds, dupClocks }
  } finally {
    db.close()
  }
}

/** Records of A's `thread` missing on B, and B's rows of it stored more than once. */
function compare(homeA, homeB, thread) {
  const a = storeOf(homeA, thread)
  const b = storeOf(homeB, thread)
  const have = new Set(b.ids)
  const lost = a.ids.filter((id) => !have.has(id)).length
  const known = new Set(a.ids)
  const foreign = b.ids.filter((id) => !known.has(id)).length
  return { source: a.ids.length, stored: b.ids.length, lost, duplicated: b.duplicated + b.dupClocks, foreign }
}

/** Waits until B holds every record of A's `threads` (or `ms` pass); returns how long it took. */
async function waitCaughtUp(homeA, homeB, threads, ms) {
  const start = Date.now()
  while (Date.now() - start < ms) {
    if (threads.every((t) => compare(homeA, homeB, t).lost === 0)) return Date.now() - start
    await sleep(500)
  }
  return Date.now() - start
}

/** Writes `count` records signed by A's key into each of `threads` (A must not run). */
async function seedThreads(home, threads, count) {
  const { Keypair } = await dist('packages/identity/dist/index.js')
  const { RecordStore, signRecord } = await dist('packages/records/dist/index.js')
  const { openDatabase } = await dist('apps/daemon/dist/db.js')
  const { readFileSync } = await import('node:fs')
  const jwk = JSON.parse(readFileSync(path.join(home, 'keys', 'primary.key'), 'utf8'))
  const keypair = Keypair.fromSeed(Buffer.from(jwk.d, 'base64url'))
  const { sqlite, db } = openDatabase(path.join(home, 'spl.db'))
  try {
    const store = await RecordStore.open(db)
    const now = Date.now()
    for (const thread of threads) {
      for (let start = 0; start < count; start += 1000) {
        const batch = []
        for (let clock = start; clock < Math.min(count, start + 1000); clock++) {
          const s = signRecord(keypair, {
            parents: [],
            thread,
            actor: keypair.did,
            act: 'KNOW',
            body: { n: clock, text: `soak ${thread} ${clock}: ${'lorem ipsum dolor sit amet '.repeat(6)}` },
            clock,
            data_type: 'SCALAR',
          })
          batch.push({
            ok: true,
            id: s.id,
            record: s.record,
            canonical: s.canonical,
            sig: s.sig,
            namespace: 'default',
            redacted: false,
            storedAt: null,
          })
        }
        await store.transaction((trx) => store.ingest(batch, { origin: null, now }, trx))
      }
    }
  } finally {
    sqlite.pragma('wal_checkpoint(TRUNCATE)')
    await db.destroy()
  }
}

/** Starts a daemon on `home`, stopped (and its home removed by initHome's cleanup) at the end. */
async function start(home, port) {
  const d = await TestDaemon.start({ home, host: '127.0.0.1', ...(port ? { port } : {}) })
  return d
}

/**
 * `d.restart(port)`, tried again a few times: in a checkout shared with others, `pnpm build` may
 * be rewriting dist/ at the moment of a restart (a half-written bin.js fails to load).
 */
async function restart(d, port) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await d.restart(port)
    } catch (err) {
      if (attempt >= 6) throw err
      log(`restart failed (attempt ${attempt}): ${String(err.message ?? err).split('\n')[0]}; again in 5 s`)
      await sleep(5000)
    }
  }
}

const stopAtEnd = new Set()

// ---------------------------------------------------------------------------------------------
// Phase 1: kill -9 × KILLS during catch-ups.

async function killPhase() {
  log(`kill phase: ${KILLS} SIGKILLs of the puller during catch-ups of ${RECORDS} records per thread`)
  const homeA = await initHome('spl-soak-a-')
  const homeB = await initHome('spl-soak-b-')
  const threads = []
  const more = async (n) => {
    const fresh = Array.from({ length: n }, (_, i) => `th_soak_kill_${threads.length + i}`)
    const ts = Date.now()
    await seedThreads(homeA, fresh, RECORDS)
    threads.push(...fresh)
    log(`seeded ${n} thread(s) of ${RECORDS} records into A in ${Date.now() - ts} ms (${threads.length} in all)`)
  }
  await more(Math.max(1, Math.min(5, Math.ceil(KILLS / 8))))
  let a = await start(homeA)
  stopAtEnd.add(() => a.stop())
  let b = await start(homeB)
  stopAtEnd.add(() => b.stop())
  const aPort = Number(new URL(a.url).port)
  let current = 0
  const paired = []
  const pair = async (i) => {
    await b.api.post('/v1/sync/pairs', { peer_did: a.did, peer_url: a.url, thread_id: threads[i] })
    paired.push(threads[i])
  }
  await pair(0)
  const perKill = []
  let kills = 0
  let reseeds = 0
  while (kills < KILLS) {
    await sleep(between(100, 1500))
    const have = storeOf(homeB, threads[current]).ids.length
    if (have >= RECORDS) {
      // Caught up before this kill: pair the next thread (seed more first when none is left).
      current++
      if (current >= threads.length) {
        await a.stop()
        await more(3)
        reseeds++
        a = await restart(a, aPort)
      }
      await pair(current)
      continue
    }
    const reapMs = await b.kill9()
    kills++
    const s = storeOf(homeB, threads[current])
    perKill.push(s.ids.length)
    if (s.dupIds || s.dupClocks) log(`kill ${kills}: DUPLICATES on B after the kill (${s.dupIds} ids, ${s.dupClocks} clocks)`)
    const tr = Date.now()
    b = await restart(b)
    log(
      `kill ${kills}/${KILLS}: ${threads[current]} had ${s.ids.length}/${RECORDS} on B; gone in ${reapMs} ms, back in ${Date.now() - tr} ms`,
    )
  }
  log(`all kills done; waiting for B to finish ${paired.length} thread(s)`)
  const finishMs = await waitCaughtUp(homeA, homeB, paired, 360_000)
  const per = paired.map((t) => compare(homeA, homeB, t))
  const sum = (k) => per.reduce((s, p) => s + p[k], 0)
  const pairs = await b.api.get('/v1/sync/pairs')
  const totals = pairs.data.reduce(
    (acc, p) => ({
      pulls: acc.pulls + p.totals.pulls,
      duplicates: acc.duplicates + p.totals.duplicates,
      cursor_resets: acc.cursor_resets + p.totals.cursor_resets,
    }),
    { pulls: 0, duplicates: 0, cursor_resets: 0 },
  )
  const result = {
    kills,
    threads: paired.length,
    records: sum('source'),
    stored: sum('stored'),
    lost: sum('lost'),
    duplicated: sum('duplicated'),
    foreign: sum('foreign'),
    reseeds,
    finish_ms: finishMs,
    records_at_kills: perKill,
    pair_totals: totals,
  }
  log(
    `kill phase: ${kills} kills over ${paired.length} catch-up(s) of ${RECORDS}; A holds ${result.records}, B ${result.stored}: ` +
      `lost ${result.lost}, duplicated ${result.duplicated}; B finished ${finishMs} ms after the last restart; ` +
      `re-received after kills (deduplicated) ${totals.duplicates}, pulls ${totals.pulls}`,
  )
  await b.stop()
  await a.stop()
  return result
}

// ---------------------------------------------------------------------------------------------
// Phase 2: a flapping peer.

/** A TCP proxy to 127.0.0.1:`target` that can refuse, black-hole or reset connections. */
class FlakyProxy {
  constructor(target) {
    this.target = target
    this.mode = 'pass'
    this.conns = new Set()
    this.server = net.createServer((client) => this.#accept(client))
  }
  async listen(port = 0) {
    await new Promise((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(port, '127.0.0.1', () => resolve(undefined))
    })
    this.port = this.server.address().port
    return this.port
  }
  #accept(client) {
    const pairOf = { client, upstream: null }
    this.conns.add(pairOf)
    client.on('error', () => {})
    client.on('close', () => {
      pairOf.upstream?.destroy()
      this.conns.delete(pairOf)
    })
    if (this.mode === 'blackhole') return // accepted, never answered
    const up = net.connect(this.target, '127.0.0.1')
    pairOf.upstream = up
    up.on('error', () => client.destroy())
    up.on('close', () => client.destroy())
    client.pipe(up)
    up.pipe(client)
  }
  /** Drops every open connection (a reset in the middle of whatever was going on). */
  resetAll() {
    for (const c of this.conns) {
      c.client.destroy()
      c.upstream?.destroy()
    }
    this.conns.clear()
  }
  async set(mode) {
    if (mode === this.mode) return
    const was = this.mode
    this.mode = mode
    this.resetAll()
    if (mode === 'refuse') await new Promise((resolve) => this.server.close(() => resolve(undefined)))
    else if (was === 'refuse') await this.listen(this.port)
  }
  async close() {
    this.mode = 'closed'
    this.resetAll()
    await new Promise((resolve) => this.server.close(() => resolve(undefined)))
  }
}

async function flapPhase() {
  log(`flap phase: ${FLAP_S} s of a flapping source emitting ${EMIT_RATE} records/s`)
  const THREAD = 'th_soak_flap'
  const homeA = await initHome('spl-soak-fa-')
  const homeB = await initHome('spl-soak-fb-')
  let a = await start(homeA)
  stopAtEnd.add(() => a.stop())
  const b = await start(homeB)
  stopAtEnd.add(() => b.stop())
  const aPort = Number(new URL(a.url).port)
  const proxy = new FlakyProxy(aPort)
  await proxy.listen()
  stopAtEnd.add(() => proxy.close())
  const created = await b.api.post('/v1/sync/pairs', { peer_did: a.did, peer_url: `http://127.0.0.1:${proxy.port}`, thread_id: THREAD })
  const pairId = created.pair_id
  log(`A ${a.url} behind the proxy :${proxy.port}, B ${b.url}, pair ${pairId}`)

  // The emitter: one record at a time at EMIT_RATE; what A acknowledged is counted.
  let aUp = true
  let emitting = true
  let acked = 0
  let emitErrors = 0
  const emitter = (async () => {
    const every = 1000 / EMIT_RATE
    let n = 0
    while (emitting) {
      const next = Date.now() + every
      if (aUp) {
        try {
          await request('POST', `${a.url}/v1/records`, {
            token: a.token,
            body: { act: 'INTEND', thread: THREAD, body: { text: `flap ${n}`, n } },
            timeoutMs: 5000,
          })
          acked++
          n++
        } catch {
          emitErrors++
        }
      }
      await sleep(Math.max(0, next - Date.now()))
    }
  })()

  // The flapper.
  const flaps = { stop: 0, kill: 0, refuse: 0, blackhole: 0, reset: 0 }
  let downMs = 0
  let maxBacklog = 0
  const end = Date.now() + FLAP_S * 1000
  while (Date.now() < end) {
    await sleep(Math.min(between(500, 6000), Math.max(0, end - Date.now())))
    if (Date.now() >= end) break
    const kind = ['stop', 'kill', 'refuse', 'blackhole', 'reset'][Math.floor(random() * 5)]
    const hold = between(200, 5000)
    flaps[kind]++
    const backlog = acked - storeOf(homeB, THREAD).ids.length
    maxBacklog = Math.max(maxBacklog, backlog)
    const td = Date.now()
    if (kind === 'stop' || kind === 'kill') {
      aUp = false
      if (kind === 'stop') await a.stop()
      else await a.kill9()
      await sleep(hold)
      a = await restart(a, aPort)
      aUp = true
    } else if (kind === 'reset') {
      proxy.resetAll()
    } else {
      await proxy.set(kind)
      await sleep(hold)
      await proxy.set('pass')
    }
    downMs += Date.now() - td
    log(
      `flap ${Object.values(flaps).reduce((s, v) => s + v, 0)}: ${kind}${kind === 'reset' ? '' : ` for ${Date.now() - td} ms`}; backlog on B ${backlog}`,
    )
  }
  emitting = false
  await emitter
  // A few records after the last flap: the pair must come back by itself and fetch them too.
  for (let i = 0; i < 10; i++) {
    await request('POST', `${a.url}/v1/records`, {
      token: a.token,
      body: { act: 'INTEND', thread: THREAD, body: { text: `after the flapping ${i}` } },
    })
    acked++
  }
  log(`flapping over: A acknowledged ${acked} records (${emitErrors} emits refused while it was down); waiting for B`)
  const finishMs = await waitCaughtUp(homeA, homeB, [THREAD], 360_000)
  const r = compare(homeA, homeB, THREAD)
  const view = await b.api.get(`/v1/sync/pairs/${pairId}`)
  const result = {
    seconds: FLAP_S,
    flaps,
    down_ms: downMs,
    acked,
    emit_errors: emitErrors,
    records: r.source,
    stored: r.stored,
    lost: r.lost,
    // Acknowledged by A but not in A's store: a loss at the source.
    lost_at_source: Math.max(0, acked - r.source),
    duplicated: r.duplicated,
    foreign: r.foreign,
    max_backlog: maxBacklog,
    finish_ms: finishMs,
    pair_state: view.state,
    pair_totals: view.totals,
  }
  log(
    `flap phase: ${Object.values(flaps).reduce((s, v) => s + v, 0)} flaps ${JSON.stringify(flaps)} over ${FLAP_S} s; A holds ${r.source} ` +
      `(acknowledged ${acked}), B ${r.stored}: lost ${r.lost}, duplicated ${r.duplicated}; B caught up ${finishMs} ms after the last flap (10 records emitted after it); ` +
      `largest backlog ${maxBacklog}; pair ${view.state}, totals ${JSON.stringify(view.totals)}`,
  )
  await proxy.close()
  await b.stop()
  await a.stop()
  return result
}

await withCleanup(async () => {
  log(
    `seed ${SEED} (replay with --seed ${SEED}); phase ${PHASE}; kills ${KILLS}, ${RECORDS} records per thread, ${FLAP_S} s of flapping at ${EMIT_RATE}/s`,
  )
  const result = { seed: SEED }
  try {
    if (PHASE !== 'flap') result.kill = await killPhase()
    if (PHASE !== 'kill') result.flap = await flapPhase()
  } finally {
    for (const fn of [...stopAtEnd].reverse()) await Promise.resolve(fn()).catch(() => {})
  }
  const bad = [result.kill, result.flap].filter(Boolean).some((p) => p.lost !== 0 || p.duplicated !== 0 || (p.lost_at_source ?? 0) !== 0)
  console.log('')
  console.log(`soak summary (seed ${SEED}, ${((Date.now() - t0) / 1000).toFixed(0)} s)`)
  if (result.kill)
    console.log(
      `  kill -9 ×${result.kill.kills} during catch-up: ${result.kill.records} records, lost ${result.kill.lost}, duplicated ${result.kill.duplicated}`,
    )
  if (result.flap)
    console.log(
      `  flapping ${result.flap.seconds} s: ${result.flap.records} records, lost ${result.flap.lost}, duplicated ${result.flap.duplicated}`,
    )
  console.log(`  ${bad ? 'FAIL' : 'ok'}`)
  if (args.json) console.log(`SOAK_RESULT ${JSON.stringify(result)}`)
  if (bad) process.exitCode = 1
})
