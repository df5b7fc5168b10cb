// Idle pairs: daemon B holds 100 long-poll pairs to daemon A on 100 threads where nothing is
// written. B's CPU (utime + stime from /proc/<pid>/stat, worker threads included) over 30 s and over
// 60 s (two whole long-poll timeouts, so the figure does not depend on where the renewals fall),
// as a percentage of one core. A's CPU (it holds the 100 waiting requests) is printed too.
//
//   node bench/idle.js               (after `pnpm build`)
//   BENCH_IDLE_PAIRS=100 BENCH_IDLE_SECONDS=30 BENCH_IDLE_PERIOD_SECONDS=60 node bench/idle.js
import { cpuSecondsOf, Daemon, fmt1, fmt2, fmtInt, foreignCpu, header, initHomes, isMain, mark, memOf, sleep, withCleanup } from './lib.js'

export const TARGET_CPU_PCT = 2

/**
 * Runs the idle-pairs benchmark and returns its figures.
 * @param {{ pairs?: number, seconds?: number, baseSeconds?: number, period?: number, log?: (s: string) => void }} [opts]
 */
export async function runIdle(opts = {}) {
  const pairs = opts.pairs ?? Number(process.env.BENCH_IDLE_PAIRS ?? 100)
  const seconds = opts.seconds ?? Number(process.env.BENCH_IDLE_SECONDS ?? 30)
  const period = Math.max(seconds, opts.period ?? Number(process.env.BENCH_IDLE_PERIOD_SECONDS ?? 60))
  const log = opts.log ?? console.log
  const [homeA, homeB] = await initHomes(2)
  const [a, b] = await Promise.all([Daemon.start(homeA), Daemon.start(homeB)])
  log(`  A ${a.url} (pid ${a.pid}), B ${b.url} (pid ${b.pid})`)
  // Baseline: the same daemon with no pair at all, so the per-pair cost can be told apart.
  const baseSeconds = opts.baseSeconds ?? Number(process.env.BENCH_IDLE_BASE_SECONDS ?? 5)
  await sleep(2000)
  const bb0 = cpuSecondsOf(b.pid)
  const tb = performance.now()
  await sleep(baseSeconds * 1000)
  const pctBase = ((cpuSecondsOf(b.pid) - bb0) / ((performance.now() - tb) / 1000)) * 100
  log(`  B with no pair: ${fmt2(pctBase)} % of one core over ${baseSeconds} s`)
  const threads = Array.from({ length: pairs }, (_, i) => `th_bench_idle_${String(i).padStart(3, '0')}`)
  // One record per thread on A, so each pair has a real thread to catch up on before it idles.
  for (const thread of threads) await a.post('/v1/records', { act: 'INTEND', thread, body: { text: 'idle' } })
  const ids = []
  for (const thread of threads) {
    const p = await b.post('/v1/sync/pairs', { peer_did: a.did, peer_url: a.url, thread_id: thread, mode: 'longpoll' })
    ids.push(p.pair_id)
  }
  // Every pair caught up: from here on each holds one long poll on A and nothing else happens.
  const deadline = Date.now() + 60_000
  for (;;) {
    const list = await b.get('/v1/sync/pairs')
    const ready = list.data.filter((p) => p.state === 'running' && p.caught_up_at !== null && p.totals.records_stored >= 1).length
    if (ready === pairs) break
    if (Date.now() > deadline) throw new Error(`only ${ready}/${pairs} pairs caught up within 60 s`)
    await sleep(200)
  }
  log(`  ${pairs} pairs caught up; settling 3 s, then measuring ${seconds} s (and ${period} s) without touching either daemon`)
  await sleep(3000)
  const pulls0 = (await b.get('/v1/sync/pairs')).data.reduce((s, p) => s + p.totals.pulls, 0)
  const foreign = foreignCpu()
  const a0 = cpuSecondsOf(a.pid)
  const b0 = cpuSecondsOf(b.pid)
  const t0 = performance.now()
  // The pairs were made together, so their long polls end together: one burst of renewals per
  // long-poll timeout (30 s in the engine). A window shorter or longer than a whole number of
  // timeouts holds one burst more or less depending on the phase; 60 s (two timeouts) gives the
  // average whatever the phase.
  await sleep(seconds * 1000)
  const wall30 = (performance.now() - t0) / 1000
  const cpuB30 = cpuSecondsOf(b.pid) - b0
  await sleep(Math.max(0, period - seconds) * 1000)
  const wall = (performance.now() - t0) / 1000
  const cpuB = cpuSecondsOf(b.pid) - b0
  const cpuA = cpuSecondsOf(a.pid) - a0
  const others = foreign.stop(cpuA + cpuB)
  const list = await b.get('/v1/sync/pairs')
  const pulls = list.data.reduce((s, p) => s + p.totals.pulls, 0) - pulls0
  const pct30 = (cpuB30 / wall30) * 100
  const pctB = (cpuB / wall) * 100
  const pctA = (cpuA / wall) * 100
  const result = {
    pairs,
    seconds: wall,
    cpuB,
    cpuA,
    pctB,
    pct30,
    seconds30: wall30,
    pctA,
    pctBase,
    otherCores: others.otherCores,
    renewals: pulls,
    msPerRenewal: pulls > 0 ? ((cpuB - (pctBase / 100) * wall) * 1000) / pulls : Number.NaN,
    rssB: memOf(b.pid).rssMB,
  }
  log(
    `  ${fmtInt(pulls)} long polls ended and were renewed in ${fmtInt(wall)} s (each waits up to the 30 s long-poll timeout): ~${fmt1(result.msPerRenewal)} ms of B's CPU each`,
  )
  log(`  other processes on this machine used ${fmt2(others.otherCores)} cores on average meanwhile`)
  log(`  B: ${fmt2(cpuB)} CPU s in ${fmt2(wall)} s; A (serving the long polls): ${fmt2(cpuA)} CPU s; B RSS ${fmtInt(result.rssB)} MB`)
  log(`  B idle CPU, first ${seconds} s: ${fmt2(pct30)} % of one core   target < ${TARGET_CPU_PCT} %  ${mark(pct30 < TARGET_CPU_PCT)}`)
  log(
    `  B idle CPU, ${fmtInt(wall)} s (two long-poll timeouts): ${fmt2(pctB)} % of one core   target < ${TARGET_CPU_PCT} %  ${mark(pctB < TARGET_CPU_PCT)}   (A: ${fmt2(pctA)} %)`,
  )
  await Promise.all([a.stop(), b.stop()])
  return result
}

if (isMain(import.meta.url)) {
  await withCleanup(async () => {
    await header('idle pairs: 100 long-poll pairs on one daemon, CPU over 30 s and over 60 s')
    await runIdle()
  })
}
