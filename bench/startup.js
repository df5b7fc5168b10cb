// CLI start-up: wall time of `spl version` and of a daemon query (`spl thread list` against a real
// daemon on 127.0.0.1) beside `node -e 0` on the same machine, as the median of N runs each, run
// interleaved so that a drift of the VM's speed hits all three alike. Targets of issue 14:
// `spl version` ≤ 1.5× and `spl thread list` ≤ 2.5× `node -e 0`. Figures only.
//
//   node bench/startup.js                   (after `pnpm build`)
//   BENCH_STARTUP_RUNS=30 node bench/startup.js
import { spawnSync } from 'node:child_process'
import { SPL_BIN } from '../test-utils/test-daemon.js'
import { Daemon, fmt1, fmt2, header, initHome, isMain, mark, quantile, withCleanup } from './lib.js'

export const TARGET_VERSION_X = 1.5
export const TARGET_QUERY_X = 2.5

/** Wall time of one process run, in ms. */
function timeRun(args, env) {
  const t = process.hrtime.bigint()
  const r = spawnSync(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], env })
  const ms = Number(process.hrtime.bigint() - t) / 1e6
  if (r.status !== 0) throw new Error(`node ${args.join(' ')} exited ${r.status}: ${String(r.stderr)}`)
  return ms
}

/**
 * Runs the start-up benchmark and returns medians (ms) and ratios to `node -e 0`.
 * @param {{ runs?: number, log?: (s: string) => void }} [opts]
 */
export async function runStartup(opts = {}) {
  const runs = opts.runs ?? Number(process.env.BENCH_STARTUP_RUNS ?? 20)
  const log = opts.log ?? console.log
  const home = await initHome()
  const d = await Daemon.start(home)
  const env = { ...process.env, SYNCROPEL_HOME: home, SPL_MDNS: 'off' }
  await d.emit('th_startup', 'one record, so the list is not empty')
  const cases = {
    node: ['-e', '0'],
    version: [SPL_BIN, 'version'],
    query: [SPL_BIN, 'thread', 'list'],
  }
  /** @type {Record<string, number[]>} */
  const times = { node: [], version: [], query: [] }
  for (const args of Object.values(cases)) timeRun(args, env) // warm the file cache
  for (let i = 0; i < runs; i++) for (const [k, args] of Object.entries(cases)) times[k].push(timeRun(args, env))
  const med = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, quantile(v, 0.5)]))
  const r = {
    runs,
    node: med.node,
    version: med.version,
    query: med.query,
    versionX: med.version / med.node,
    queryX: med.query / med.node,
  }
  log(`  median of ${runs}: node -e 0 ${fmt1(r.node)} ms, spl version ${fmt1(r.version)} ms, spl thread list ${fmt1(r.query)} ms`)
  log(
    `  spl version ${fmt2(r.versionX)}× node -e 0 (target ≤ ${TARGET_VERSION_X}×) ${mark(r.versionX <= TARGET_VERSION_X)}; ` +
      `spl thread list ${fmt2(r.queryX)}× (target ≤ ${TARGET_QUERY_X}×) ${mark(r.queryX <= TARGET_QUERY_X)}`,
  )
  return r
}

if (isMain(import.meta.url)) {
  await withCleanup(async () => {
    await header('CLI start-up: spl version and spl thread list against node -e 0')
    await runStartup()
  })
}
