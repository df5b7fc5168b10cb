// Live latency: records emitted on A (POST /v1/records) at 20/s, pulled by B through a long-poll
// pair; for each record, the time from the start of A's POST to the moment a watcher polling
// B's GET /v1/threads/{thread}/records?after=<seq> every ~2 ms first sees it.
//
//   node bench/live.js               (after `pnpm build`)
//   BENCH_LIVE_N=200 BENCH_LIVE_RATE=20 node bench/live.js
import {
  cpuSecondsOf,
  Daemon,
  fmt1,
  fmt2,
  fmtInt,
  foreignCpu,
  header,
  initHomes,
  isMain,
  mark,
  quantile,
  request,
  sleep,
  withCleanup,
} from './lib.js'

/** spl's live p50 against PouchDB's continuous replication in the same run (issue 16). */
export const TARGET_P50_RATIO = 0.7
export const TARGET_P95 = 20
const THREAD = 'th_bench_live'

/** Waits until B's pair has caught up once (its next pull is a long poll). */
async function waitLongpolling(b, pairId) {
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline) {
    const p = await b.get(`/v1/sync/pairs/${pairId}`)
    if (p.state === 'running' && p.caught_up_at !== null) return p
    await sleep(20)
  }
  throw new Error('the pair did not catch up within 30 s')
}

/**
 * Runs the live-latency benchmark and returns its figures.
 * @param {{ n?: number, rate?: number, warmup?: number, log?: (s: string) => void,
 *   databaseA?: string, databaseB?: string, serverCpu?: () => number }} [opts]
 *   `databaseA` / `databaseB`: a postgres:// URL to run that daemon on (bench/pg.js), with
 *   `serverCpu` the CPU seconds PostgreSQL has used so far (counted apart from other processes)
 */
export async function runLive(opts = {}) {
  const n = opts.n ?? Number(process.env.BENCH_LIVE_N ?? 200)
  const rate = opts.rate ?? Number(process.env.BENCH_LIVE_RATE ?? 20)
  const warmup = opts.warmup ?? 20
  const log = opts.log ?? console.log
  const [homeA, homeB] = await initHomes(2)
  const [a, b] = await Promise.all([Daemon.start(homeA, { database: opts.databaseA }), Daemon.start(homeB, { database: opts.databaseB })])
  const ownCpu = () => cpuSecondsOf(a.pid) + cpuSecondsOf(b.pid) + (opts.serverCpu?.() ?? 0)
  log(`  A ${a.url} (pid ${a.pid}), B ${b.url} (pid ${b.pid})`)
  // One record before pairing so the thread exists and the first pull has something to do.
  await a.post('/v1/records', { act: 'INTEND', thread: THREAD, body: { n: -1, text: 'start' } })
  const pair = await b.post('/v1/sync/pairs', {
    peer_did: a.did,
    peer_url: a.url,
    thread_id: THREAD,
    mode: 'longpoll',
  })
  await waitLongpolling(b, pair.pair_id)

  /** n → ms timestamps */
  const sentAt = new Map()
  const ackAt = new Map()
  const seenAt = new Map()
  const total = warmup + n
  let watching = true
  let after = 0
  let polls = 0

  // The watcher: GET B's thread after the last seen seq, a fresh request ~2 ms after the last answer.
  const watcher = (async () => {
    while (watching) {
      const { json } = await request('GET', `${b.url}/v1/threads/${THREAD}/records?after=${after}&limit=1000`, { token: b.token })
      const now = performance.now()
      polls++
      for (const env of json.data) {
        const k = env.record.body.n
        if (!seenAt.has(k)) seenAt.set(k, now)
        after = Math.max(after, env.seq)
      }
      if (seenAt.size >= total + 1) break
      await sleep(2)
    }
  })()

  const foreign = foreignCpu()
  const cpu0 = ownCpu()
  const t0 = performance.now()
  const period = 1000 / rate
  const posts = []
  for (let i = 0; i < total; i++) {
    const due = t0 + i * period
    const wait = due - performance.now()
    if (wait > 0) await sleep(wait)
    sentAt.set(i, performance.now())
    posts.push(
      a
        .post('/v1/records', { act: 'INTEND', thread: THREAD, body: { n: i, text: `live record ${i}` } })
        .then(() => ackAt.set(i, performance.now())),
    )
  }
  await Promise.all(posts)
  const deadline = performance.now() + 30_000
  while (seenAt.size < total + 1 && performance.now() < deadline) await sleep(10)
  watching = false
  await watcher
  const others = foreign.stop(ownCpu() - cpu0)

  const lat = []
  const emit = []
  let missing = 0
  for (let i = warmup; i < total; i++) {
    const s = seenAt.get(i)
    if (s === undefined) {
      missing++
      continue
    }
    lat.push(s - sentAt.get(i))
    emit.push(ackAt.get(i) - sentAt.get(i))
  }
  const stats = await b.get(`/v1/sync/pairs/${pair.pair_id}/stats`).catch(() => null)
  const result = {
    n,
    rate,
    p50: quantile(lat, 0.5),
    p95: quantile(lat, 0.95),
    p99: quantile(lat, 0.99),
    max: Math.max(...lat),
    min: Math.min(...lat),
    emitP50: quantile(emit, 0.5),
    missing,
    otherCores: others.otherCores,
    polls,
    pairStats: stats,
  }
  log(`  ${n} records at ${rate}/s after ${warmup} warm-up records; watcher made ${fmtInt(polls)} polls of B`)
  log(`  other processes on this machine used ${fmt2(others.otherCores)} cores on average meanwhile`)
  log(`  A's POST /v1/records answered in p50 ${fmt1(result.emitP50)} ms`)
  log(
    `  emit → visible on B: min ${fmt1(result.min)}  p50 ${fmt1(result.p50)}  p95 ${fmt1(result.p95)}  p99 ${fmt1(result.p99)}  max ${fmt1(result.max)} ms${missing ? `  (${missing} never seen)` : ''}`,
  )
  if (stats?.latency_ms) {
    const m = stats.latency_ms
    log(`  B's own delivery-latency metric (commit − stored_at, skew-corrected): p50 ${m.p50} ms, p95 ${m.p95} ms, max ${m.max} ms`)
  }
  log(`  p50 ${fmt1(result.p50)} ms;  p95 ${fmt1(result.p95)} ms  target ≤ ${TARGET_P95}  ${mark(result.p95 <= TARGET_P95)}`)
  await Promise.all([a.stop(), b.stop()])
  return result
}

if (isMain(import.meta.url)) {
  await withCleanup(async () => {
    await header('live latency: A emits at 20/s, B pulls by long poll')
    await runLive()
  })
}
