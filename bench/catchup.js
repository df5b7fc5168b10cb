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
  keypairOfHome,
  mark,
  memOf,
  rssSampler,
  seedHome,
  seedHomeSigned,
  signedRecords,
  sleep,
  threadCpuLine,
  threadCpuOf,
  withCleanup,
} from './lib.js'

/** Catch-up against PouchDB's replication of the same records, in the same run (issue 16). */
export const TARGET_RATIO = 3
/** The pulling side's peak RSS, at every thread size (issue 16). */
export const TARGET_RSS_MB = 100
/** Above this many records, A is seeded record by record without holding them all in memory. */
const STREAM_SEED_ABOVE = 200_000
const THREAD = 'th_bench_catchup'

/**
 * Runs the catch-up benchmark and returns its figures.
 * @param {{ n?: number, records?: any[], log?: (s: string) => void, onRecords?: (records: any[]) => void,
 *   databaseA?: string, databaseB?: string, serverCpu?: () => number }} [opts]
 *   `records`: signed records to seed A with (any did:key actor), e.g. the ones PouchDB gets too;
 *   `databaseA` / `databaseB`: a postgres:// URL to run that daemon on (bench/pg.js), with
 *   `serverCpu` the CPU seconds PostgreSQL has used so far (counted apart from other processes)
 */
export async function runCatchup(opts = {}) {
  const n = opts.records?.length ?? opts.n ?? Number(process.env.BENCH_CATCHUP_N ?? 100_000)
  const log = opts.log ?? console.log
  const [homeA, homeB] = await initHomes(2)
  const keyA = await keypairOfHome(homeA)

  let t = performance.now()
  let bytes
  if (!opts.records && n > STREAM_SEED_ABOVE) {
    const seeded = await seedHomeSigned(homeA, keyA, THREAD, n)
    bytes = seeded.bytes
    log(
      `  signed and seeded ${fmtInt(n)} records (${fmtInt(bytes)} B canonical each) into A's spl.db in ${fmt1((performance.now() - t) / 1000)} s`,
    )
  } else {
    const records = opts.records ?? (await signedRecords(keyA, THREAD, n))
    const signMs = performance.now() - t
    bytes = records.reduce((s, r) => s + r.canonical.length, 0) / n
    if (!opts.records) log(`  signed ${fmtInt(n)} records (${fmtInt(bytes)} B canonical each) in ${fmt1(signMs / 1000)} s`)
    const seedRate = await seedHome(homeA, records, 'default', opts.databaseA)
    log(`  seeded A's ${opts.databaseA ? 'PostgreSQL database' : 'spl.db'} directly at ${fmtInt(seedRate)} records/s`)
    // The ceiling benchmark can reuse them (same records, no second signing pass).
    if (opts.onRecords) opts.onRecords(records)
  }

  const [a, b] = await Promise.all([Daemon.start(homeA, { database: opts.databaseA }), Daemon.start(homeB, { database: opts.databaseB })])
  const on = (db) => (db ? 'PostgreSQL' : 'SQLite')
  log(`  A ${a.url} (pid ${a.pid}, ${on(opts.databaseA)}), B ${b.url} (pid ${b.pid}, ${on(opts.databaseB)})`)
  await sleep(500) // let both settle after start (JIT, migrations done)
  const serverCpu = opts.serverCpu ?? (() => 0)
  const cpuPg0 = serverCpu()

  const rss = rssSampler(b.pid, 50)
  const cpuA0 = cpuSecondsOf(a.pid)
  const cpuB0 = cpuSecondsOf(b.pid)
  const threadsB0 = threadCpuOf(b.pid)
  const memB0 = memOf(b.pid)
  const foreign = foreignCpu()
  t = performance.now()
  const pair = await b.post('/v1/sync/pairs', { peer_did: a.did, peer_url: a.url, thread_id: THREAD })
  let stored = 0
  let firstAt = null
  let last = pair
  const deadline = t + 10 * 60_000
  while (stored < n) {
    if (performance.now() > deadline) throw new Error(`catch-up stalled at ${stored}/${n}`)
    await sleep(25)
    last = await b.get(`/v1/sync/pairs/${pair.pair_id}`)
    stored = last.totals.records_stored
    if (firstAt === null && stored > 0) firstAt = performance.now()
    if (last.state === 'failing') log(`  pair failing: ${JSON.stringify(last.last_error)}`)
  }
  const elapsed = (performance.now() - t) / 1000
  const cpuA = cpuSecondsOf(a.pid) - cpuA0
  const cpuB = cpuSecondsOf(b.pid) - cpuB0
  const threadsB = threadCpuOf(b.pid)
  const { peakMB } = rss.stop()
  const cpuPg = serverCpu() - cpuPg0
  const others = foreign.stop(cpuA + cpuB + cpuPg)
  const { hwmMB, rssMB } = memOf(b.pid)
  const threads = await b.get('/v1/threads')
  const onB = threads.data.find((x) => x.thread === THREAD)?.records ?? 0

  const rate = n / elapsed
  const result = {
    n,
    recordBytes: bytes,
    seconds: elapsed,
    rate,
    firstRecordMs: firstAt === null ? Number.NaN : firstAt - t,
    pulls: last.totals.pulls,
    bytesReceived: last.totals.bytes_received,
    cpuA,
    cpuB,
    cpuPg,
    rssStartMB: memB0.rssMB,
    rssPeakSampledMB: peakMB,
    hwmMB,
    rssEndMB: rssMB,
    storedOnB: onB,
    otherCores: others.otherCores,
  }
  log(
    `  B stored ${fmtInt(onB)} records in ${fmt1(elapsed)} s over ${last.totals.pulls} pulls (${fmt1(last.totals.bytes_received / 1e6)} MB); first record after ${fmtInt(result.firstRecordMs)} ms`,
  )
  log(
    `  CPU during catch-up: B ${fmt1(cpuB)} s (${fmtInt((cpuB / elapsed) * 100)} % of one core), A ${fmt1(cpuA)} s (${fmtInt((cpuA / elapsed) * 100)} %)` +
      (opts.serverCpu ? `, PostgreSQL ${fmt1(cpuPg)} s (${fmtInt((cpuPg / elapsed) * 100)} %)` : ''),
  )
  log(`  B's CPU by thread: ${threadCpuLine(threadsB0, threadsB)}`)
  log(`  other processes on this machine used ${fmt2(others.otherCores)} cores on average meanwhile (steal ${fmt2(others.stealCores)})`)
  log(`  B RSS: ${fmtInt(memB0.rssMB)} MB before, peak sampled ${fmtInt(peakMB)} MB, VmHWM ${fmtInt(hwmMB)} MB, ${fmtInt(rssMB)} MB after`)
  log(
    `  end-to-end: ${fmtInt(rate)} records/s;  B peak RSS ${fmtInt(hwmMB)} MB  target ≤ ${TARGET_RSS_MB} MB  ${mark(hwmMB <= TARGET_RSS_MB)}`,
  )
  await Promise.all([a.stop(), b.stop()])
  return result
}

if (isMain(import.meta.url)) {
  await withCleanup(async () => {
    await header(`catch-up: ${fmtInt(Number(process.env.BENCH_CATCHUP_N ?? 100_000))} records A → empty B over loopback`)
    await runCatchup()
  })
}
