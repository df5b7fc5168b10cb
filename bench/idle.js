// Idle pairs: daemon B pulls N threads, spread over P source daemons, where nothing is written.
// The CPU of B and of the sources (utime + stime from /proc/<pid>/stat, worker threads included)
// over a window of two long-poll timeouts (60 s, so the figure does not depend on where the
// renewals fall), as a percentage of one core, and the requests held open at the sources.
// By default B's caught-up pairs wait in one watch per peer (docs/federation.md); `watch: false`
// measures the older way, one long poll per pair, beside it.
//
//   node bench/idle.js                                  (after `pnpm build`: the whole matrix)
//   BENCH_IDLE_MATRIX=1000x1,1000x10 BENCH_IDLE_SECONDS=60 node bench/idle.js
//   BENCH_IDLE_MATRIX=1000x1:nowatch node bench/idle.js   (one long poll per pair, for comparison)
import { readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import {
  cpuSecondsOf,
  Daemon,
  fmt2,
  fmtInt,
  foreignCpu,
  header,
  initHomes,
  isMain,
  mark,
  memOf,
  parseList,
  sleep,
  withCleanup,
} from './lib.js'

export const TARGET_CPU_PCT = 2
/** What `pnpm bench` measures: 100, 1,000 and 5,000 pairs towards one peer and towards ten. */
export const DEFAULT_MATRIX = '100x1,100x10,1000x1,1000x10,5000x1,5000x10,1000x1:nowatch'

/** `"1000x10:nowatch"` → { pairs: 1000, peers: 10, watch: false }. */
export function parseMatrix(text) {
  return parseList(text, /^(\d+)x(\d+)(:nowatch)?$/, 'BENCH_IDLE_MATRIX', '<pairs>x<peers>[:nowatch]').map((m) => ({
    pairs: Number(m[1]),
    peers: Number(m[2]),
    watch: m[3] === undefined,
  }))
}

/** Turns the per-peer watch off in a home's config (the older way: one long poll per pair). */
function noWatch(home) {
  const file = path.join(home, 'config.toml')
  const text = readFileSync(file, 'utf8')
  if (!/^serve_policy = .*$/m.test(text)) throw new Error(`no [sync] serve_policy line in ${file}`)
  writeFileSync(file, text.replace(/^(serve_policy = .*)$/m, '$1\nwatch = false'))
}

/** Held peer requests at a source, from its /metrics: long polls of one thread and watches. */
export async function heldAt(d) {
  const text = await d.get('/metrics')
  const read = (re) => Number(re.exec(typeof text === 'string' ? text : '')?.[1] ?? 0)
  return read(/^spl_feed_held_requests\{door="changes"\} (\d+)$/m) + read(/^spl_feed_held_requests\{door="watch"\} (\d+)$/m)
}

/** Idle thread names, `th_bench_idle_00000`…, `n` of them. */
export function idleThreads(n) {
  return Array.from({ length: n }, (_, i) => `th_bench_idle_${String(i).padStart(5, '0')}`)
}

/** One record in each of `threads` on `source`, 1000 per batch emit, so each pair has something to catch up on first. */
export async function emitIdleThreads(source, threads) {
  for (let i = 0; i < threads.length; i += 1000) {
    const records = threads.slice(i, i + 1000).map((thread) => ({ act: 'INTEND', thread, body: { text: 'idle' } }))
    const r = await source.post('/v1/records/batch', { records })
    if (r.created !== records.length) throw new Error(`batch emit stored ${r.created}/${records.length}`)
  }
}

/** Makes `puller`'s long-poll pairs towards `source`, one per thread, one after the other. */
export async function makeIdlePairs(puller, source, threads) {
  for (const thread of threads)
    await puller.post('/v1/sync/pairs', { peer_did: source.did, peer_url: source.url, thread_id: thread, mode: 'longpoll' })
}

/**
 * Waits until each of the `pairs` pairs runs, has caught up and stored its record, as told by
 * `puller` or, for replicas of one instance (an array), by any of them.
 */
export async function waitIdleCaughtUp(puller, pairs, timeoutMs = 300_000) {
  const pullers = [puller].flat()
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const ready = new Set()
    for (const d of pullers) {
      for (const p of (await d.get('/v1/sync/pairs')).data)
        if (p.state === 'running' && p.caught_up_at !== null && p.totals.records_stored >= 1) ready.add(p.pair_id)
    }
    if (ready.size === pairs) return
    if (Date.now() > deadline) throw new Error(`only ${ready.size}/${pairs} pairs caught up within ${timeoutMs / 1000} s`)
    await sleep(500)
  }
}

/** The sum of the pulls (idle answers included) over the pairs of `puller` (or of replicas: each pair's highest count). */
export async function pullsOf(puller) {
  const pulls = new Map()
  for (const d of [puller].flat()) {
    for (const p of (await d.get('/v1/sync/pairs')).data) pulls.set(p.pair_id, Math.max(pulls.get(p.pair_id) ?? 0, p.totals.pulls))
  }
  return [...pulls.values()].reduce((s, n) => s + n, 0)
}

/**
 * Runs one idle configuration and returns its figures.
 * @param {{ pairs?: number, peers?: number, watch?: boolean, seconds?: number, log?: (s: string) => void }} [opts]
 */
export async function runIdleOne(opts = {}) {
  const pairs = opts.pairs ?? 1000
  const peers = opts.peers ?? 1
  const watch = opts.watch ?? true
  const seconds = opts.seconds ?? Number(process.env.BENCH_IDLE_SECONDS ?? 60)
  const log = opts.log ?? console.log
  const homes = await initHomes(peers + 1)
  if (!watch) noWatch(homes[0])
  const [b, ...sources] = await Promise.all(homes.map((h) => Daemon.start(h)))
  // Baseline: B with no pair at all, so the cost of the pairs can be told apart.
  await sleep(1500)
  const bb0 = cpuSecondsOf(b.pid)
  const tb = performance.now()
  await sleep(3000)
  const pctBase = ((cpuSecondsOf(b.pid) - bb0) / ((performance.now() - tb) / 1000)) * 100
  // Threads spread evenly over the sources.
  const perSource = sources.map(() => [])
  for (const [i, thread] of idleThreads(pairs).entries()) perSource[i % peers].push(thread)
  await Promise.all(sources.map((s, k) => emitIdleThreads(s, perSource[k])))
  const tMake = performance.now()
  await Promise.all(sources.map((s, k) => makeIdlePairs(b, s, perSource[k])))
  await waitIdleCaughtUp(b, pairs)
  log(`  ${fmtInt(pairs)} pairs over ${peers} peer(s) made and caught up in ${fmt2((performance.now() - tMake) / 1000)} s; settling 5 s`)
  await sleep(5000)
  const pulls0 = await pullsOf(b)
  const foreign = foreignCpu()
  const b0 = cpuSecondsOf(b.pid)
  const s0 = sources.map((s) => cpuSecondsOf(s.pid))
  const t0 = performance.now()
  let maxHeld = 0
  // Held requests sampled through the window (a few scrapes: their own cost is small and on both sides).
  const samples = Math.max(2, Math.floor(seconds / 15))
  for (let i = 0; i < samples; i++) {
    await sleep((seconds * 1000) / samples)
    const held = (await Promise.all(sources.map(heldAt))).reduce((n, h) => n + h, 0)
    maxHeld = Math.max(maxHeld, held)
  }
  const wall = (performance.now() - t0) / 1000
  const cpuB = cpuSecondsOf(b.pid) - b0
  const cpuS = sources.map((s, k) => cpuSecondsOf(s.pid) - s0[k])
  const others = foreign.stop(cpuB + cpuS.reduce((n, c) => n + c, 0))
  const renewals = (await pullsOf(b)) - pulls0
  const pctB = (cpuB / wall) * 100
  const pctSources = (cpuS.reduce((n, c) => n + c, 0) / wall) * 100
  const pctSourceMax = (Math.max(...cpuS) / wall) * 100
  const result = {
    pairs,
    peers,
    watch,
    seconds: wall,
    pctB,
    pctBase,
    pctSources,
    pctSourceMax,
    maxHeld,
    renewals,
    otherCores: others.otherCores,
    rssB: memOf(b.pid).rssMB,
  }
  log(
    `  ${watch ? 'watch per peer' : 'long poll per pair'}: B ${fmt2(pctB)} % of a core (no pairs: ${fmt2(pctBase)} %), ` +
      `sources ${fmt2(pctSources)} % together (busiest ${fmt2(pctSourceMax)} %) over ${fmtInt(wall)} s; ` +
      `held at the sources ≤ ${fmtInt(maxHeld)} requests; ${fmtInt(renewals)} idle answers; B RSS ${fmtInt(result.rssB)} MB; ` +
      `other processes ${fmt2(others.otherCores)} cores   ${mark(pctB < TARGET_CPU_PCT && pctSourceMax < TARGET_CPU_PCT)}`,
  )
  await Promise.all([b, ...sources].map((d) => d.stop()))
  return result
}

/** Runs the matrix (BENCH_IDLE_MATRIX or `matrix`) and returns each configuration's figures. */
export async function runIdle(opts = {}) {
  const log = opts.log ?? console.log
  const out = []
  for (const c of parseMatrix(opts.matrix ?? process.env.BENCH_IDLE_MATRIX ?? DEFAULT_MATRIX)) {
    log(`  — ${fmtInt(c.pairs)} idle pairs towards ${c.peers} peer(s)${c.watch ? '' : ', one long poll per pair'}`)
    out.push(await runIdleOne({ ...c, log, seconds: opts.seconds }))
  }
  return out
}

if (isMain(import.meta.url)) {
  await withCleanup(async () => {
    await header('idle pairs: CPU of the puller and of the sources over two long-poll timeouts')
    await runIdle()
  })
}
