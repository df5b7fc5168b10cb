// spl on PostgreSQL beside SQLite, in the same run (issue 15, docs/scale.md). Starts its own
// throw-away cluster (bench/pg-cluster.js: a temporary directory, a free loopback port, removed at
// the end, also after an error or Ctrl-C), then:
//   - catch-up: the records of bench/catchup.js (20,000 of ~500 B) pulled by a daemon, (a) source
//     and puller on SQLite, (b) the source on PostgreSQL, (c) the puller on PostgreSQL; rounds
//     alternate the three, medians are compared;
//   - live: bench/live.js with both daemons on SQLite, then both on PostgreSQL (their own databases);
//   - idle: R replicas of a puller A on one PostgreSQL database (same home key: bench/lib.js
//     replicaHome) with P idle long-poll pairs towards a peer B (SQLite) holding P threads of one
//     record each. Over a window after a settle: CPU of each replica, of B and of the whole
//     cluster (/proc), and the database's round trips per second: transactions
//     (pg_stat_database.xact_commit + xact_rollback of A's database) and, when the cluster has
//     pg_stat_statements, statements (the sum of `calls` of A's database; every statement,
//     BEGIN and COMMIT included, is one round trip on the wire). The connections the replicas
//     hold open are read from pg_stat_activity.
//
//   node bench/pg.js                              (after `pnpm build`: catch-up, live, idle)
//   node bench/pg.js idle                         (a part: catchup, live, idle)
//   BENCH_PG_MATRIX=1000x1,1000x2,1000x4,10000x1,10000x2,10000x4 node bench/pg.js idle   (the full matrix)
//   BENCH_PG=off node bench/run.js                (pnpm bench without PostgreSQL)
import { runCatchup } from './catchup.js'
import { emitIdleThreads, heldAt, idleThreads, makeIdlePairs, pullsOf, waitIdleCaughtUp } from './idle.js'
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
  median,
  memOf,
  parseList,
  replicaHome,
  signedRecords,
  sleep,
  table,
  withCleanup,
} from './lib.js'
import { runLive } from './live.js'
import { pgBinDir, startPgCluster } from './pg-cluster.js'

/** `<pairs>x<replicas>`: what `pnpm bench` measures (≈ 8 minutes); the full matrix is in the header. */
export const DEFAULT_PG_MATRIX = '1000x1,1000x2,1000x4'
/** The pair count the idle figures are extrapolated to (docs/scale.md). */
export const EXTRAPOLATE_PAIRS = 100_000
const THREAD = 'th_bench_catchup'

/** Why the PostgreSQL figures are not measured here, or null when they are. */
export function pgSkipReason() {
  if (process.env.BENCH_PG === 'off') return 'BENCH_PG=off'
  if (pgBinDir() === null) return 'PostgreSQL not installed'
  return null
}

/** `"1000x2"` → { pairs: 1000, replicas: 2 }. */
export function parsePgMatrix(text) {
  return parseList(text, /^(\d+)x([1-9]\d*)$/, 'BENCH_PG_MATRIX', '<pairs>x<replicas>').map((m) => ({
    pairs: Number(m[1]),
    replicas: Number(m[2]),
  }))
}

let dbCounter = 0
/** A new database; its URL and its name. */
async function newDatabase(cluster, what) {
  const name = `spl_bench_${what}_${++dbCounter}`
  return { url: await cluster.createDatabase(name), name }
}

/**
 * Catch-up with each side on SQLite or PostgreSQL, `rounds` rounds alternating the three.
 * @param {{ cluster: any, records: any[], rounds: number, log?: (s: string) => void }} opts
 */
export async function runPgCatchup({ cluster, records, rounds, log = console.log }) {
  const variants = [
    ['sqlite', 'source and puller on SQLite', {}],
    ['sourcePg', 'source on PostgreSQL, puller on SQLite', { databaseA: true }],
    ['pullerPg', 'source on SQLite, puller on PostgreSQL', { databaseB: true }],
  ]
  /** @type {Record<string, any[]>} */
  const runs = { sqlite: [], sourcePg: [], pullerPg: [] }
  // What an empty database weighs, to tell the records' bytes on disk apart.
  const empty = await cluster.sizeOf((await newDatabase(cluster, 'empty')).name)
  const bytesPerRecord = []
  for (let i = 0; i < rounds; i++) {
    for (const [key, title, v] of variants) {
      log(`  — round ${i + 1}: ${title}`)
      /** @type {Parameters<typeof runCatchup>[0]} */
      const opts = { records, log }
      const pgSide = v.databaseA || v.databaseB ? await newDatabase(cluster, v.databaseA ? 'catchup_a' : 'catchup_b') : null
      if (pgSide) opts[v.databaseA ? 'databaseA' : 'databaseB'] = pgSide.url
      if (pgSide) opts.serverCpu = () => cluster.cpuSeconds()
      runs[key].push(await runCatchup(opts))
      if (v.databaseB && pgSide) bytesPerRecord.push(((await cluster.sizeOf(pgSide.name)) - empty) / records.length)
    }
  }
  const rate = (k) => median(runs[k].map((x) => x.rate))
  const out = {
    n: records.length,
    rounds,
    runs,
    sqlite: rate('sqlite'),
    sourcePg: rate('sourcePg'),
    pullerPg: rate('pullerPg'),
    bytesPerRecord: median(bytesPerRecord),
  }
  out.otherCores = Math.max(...Object.values(runs).flatMap((xs) => xs.map((x) => x.otherCores)))
  log(
    `  records/s: SQLite ${runs.sqlite.map((x) => fmtInt(x.rate)).join(' / ')}; source on PostgreSQL ${runs.sourcePg.map((x) => fmtInt(x.rate)).join(' / ')} ` +
      `(${fmt2(out.sourcePg / out.sqlite)}×); puller on PostgreSQL ${runs.pullerPg.map((x) => fmtInt(x.rate)).join(' / ')} (${fmt2(out.pullerPg / out.sqlite)}×); ` +
      `B's database grew by ${fmtInt(out.bytesPerRecord)} B per record stored`,
  )
  return out
}

/**
 * Live latency with both daemons on SQLite, then both on PostgreSQL, `rounds` rounds.
 * @param {{ cluster: any, rounds: number, log?: (s: string) => void }} opts
 */
export async function runPgLive({ cluster, rounds, log = console.log }) {
  const sqlite = []
  const pg = []
  for (let i = 0; i < rounds; i++) {
    log(`  — round ${i + 1}: both on SQLite`)
    sqlite.push(await runLive({ log }))
    log(`  — round ${i + 1}: both on PostgreSQL`)
    const [databaseA, databaseB] = [(await newDatabase(cluster, 'live_a')).url, (await newDatabase(cluster, 'live_b')).url]
    pg.push(await runLive({ log, databaseA, databaseB, serverCpu: () => cluster.cpuSeconds() }))
  }
  const m = (xs, k) => median(xs.map((x) => x[k]))
  const out = {
    rounds,
    sqlite,
    pg,
    p50: m(sqlite, 'p50'),
    p95: m(sqlite, 'p95'),
    pgP50: m(pg, 'p50'),
    pgP95: m(pg, 'p95'),
    otherCores: Math.max(...[...sqlite, ...pg].map((x) => x.otherCores)),
  }
  log(
    `  p50 / p95: SQLite ${fmt1(out.p50)} / ${fmt1(out.p95)} ms, PostgreSQL ${fmt1(out.pgP50)} / ${fmt1(out.pgP95)} ms (medians of ${rounds})`,
  )
  return out
}

/**
 * Counters of `database` so far: round trips (transactions, and statements when
 * pg_stat_statements is loaded), rows written (inserted, updated, deleted) and the cluster's WAL
 * position in bytes.
 */
async function roundTrips(cluster, database) {
  const [x] = await cluster.query(
    `select xact_commit + xact_rollback as n, tup_inserted + tup_updated + tup_deleted as rows,
       pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0') as wal from pg_stat_database where datname = $1`,
    [database],
  )
  let statements = Number.NaN
  if (cluster.statements) {
    const [s] = await cluster.query(
      'select coalesce(sum(calls), 0) as n from pg_stat_statements s join pg_database d on d.oid = s.dbid where d.datname = $1',
      [database],
    )
    statements = Number(s.n)
  }
  return { xacts: Number(x.n), statements, rows: Number(x.rows), wal: Number(x.wal) }
}

/** Connections open on `database` (pg_stat_activity), and how many of them wait in LISTEN. */
async function connectionsOn(cluster, database) {
  const [r] = await cluster.query(
    "select count(*) as n, count(*) filter (where query ilike 'listen%') as listen from pg_stat_activity where datname = $1",
    [database],
  )
  return { n: Number(r.n), listen: Number(r.listen) }
}

/** How many pairs each replica holds the lease of (GET /v1/sync/health; null on a daemon without leases). */
async function pairsHeld(reps) {
  return Promise.all(reps.map(async (r) => (await r.get('/v1/sync/health')).replica?.pairs_held ?? null))
}

/**
 * Waits until the replicas hold every pair between them, each its fair share (live pairs ÷
 * replicas, rounded up); after `timeoutMs`, says what is missing and goes on (the figures then
 * count the pairs that are pulled).
 */
async function waitSpread(cluster, database, reps, pairs, log, timeoutMs = 60_000) {
  const share = Math.ceil(pairs / reps.length)
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const held = await pairsHeld(reps)
    if (held.some((h) => h === null)) return held
    const sum = held.reduce((n, h) => n + h, 0)
    if (sum === pairs && held.every((h) => h <= share)) return held
    if (Date.now() > deadline) {
      const rows = await cluster.queryIn(
        database,
        'select holder, count(*) as n from spl_pair_leases where expires_at >= $1 group by holder order by holder',
        [Date.now()],
      )
      log(
        `  WARNING: after ${timeoutMs / 1000} s the replicas say they hold ${held.join(' / ')} (${fmtInt(pairs - sum)} of ${fmtInt(pairs)} pulled by none); ` +
          `unexpired lease rows by holder: ${rows.map((r) => r.n).join(' / ')}`,
      )
      return held
    }
    await sleep(1000)
  }
}

/**
 * `pairs` idle pairs of a puller run by `replicas` replicas on one PostgreSQL database, towards
 * a peer B on SQLite; the figures of one window.
 * @param {{ cluster: any, pairs: number, replicas: number, seconds?: number, settle?: number, log?: (s: string) => void }} opts
 */
export async function runPgIdleOne({ cluster, pairs, replicas, seconds, settle, log = console.log }) {
  const window = seconds ?? Number(process.env.BENCH_PG_IDLE_SECONDS ?? 60)
  const settleS = settle ?? Number(process.env.BENCH_PG_IDLE_SETTLE ?? 20)
  const name = `spl_bench_idle_${pairs}x${replicas}_${++dbCounter}`
  const database = await cluster.createDatabase(name)
  const [homeA, homeB] = await initHomes(2)
  const first = await Daemon.start(homeA, { database })
  const reps = [first, ...(await Promise.all(Array.from({ length: replicas - 1 }, () => Daemon.start(replicaHome(homeA)))))]
  const b = await Daemon.start(homeB)
  log(`  A: ${replicas} replica(s) on database ${name} (pids ${reps.map((r) => r.pid).join(', ')}); B ${b.url} (SQLite)`)
  const cpuOf = () => ({ reps: reps.map((r) => cpuSecondsOf(r.pid)), b: cpuSecondsOf(b.pid), pg: cluster.cpuSeconds() })
  const measure = async (ms) => {
    const foreign = foreignCpu()
    const c0 = cpuOf()
    const q0 = await roundTrips(cluster, name)
    const t0 = performance.now()
    let conns = { n: 0, listen: 0 }
    let held = 0
    const steps = Math.max(1, Math.floor(ms / 15_000))
    for (let i = 0; i < steps; i++) {
      await sleep(ms / steps)
      const c = await connectionsOn(cluster, name)
      if (c.n > conns.n) conns = c
      held = Math.max(held, await heldAt(b))
    }
    const wall = (performance.now() - t0) / 1000
    const c1 = cpuOf()
    const q1 = await roundTrips(cluster, name)
    const pct = (s) => (s / wall) * 100
    const perReplica = c1.reps.map((c, k) => pct(c - c0.reps[k]))
    const own = c1.reps.reduce((s, c, k) => s + c - c0.reps[k], 0) + c1.b - c0.b + c1.pg - c0.pg
    return {
      wall,
      perReplica,
      replicasTotal: perReplica.reduce((s, x) => s + x, 0),
      pctB: pct(c1.b - c0.b),
      pctPg: pct(c1.pg - c0.pg),
      xactsPerSec: (q1.xacts - q0.xacts) / wall,
      statementsPerSec: (q1.statements - q0.statements) / wall,
      rowsPerSec: (q1.rows - q0.rows) / wall,
      walBytesPerSec: (q1.wal - q0.wal) / wall,
      conns,
      held,
      otherCores: foreign.stop(own).otherCores,
    }
  }
  // Past PostgreSQL's 10 s idle flush of the start's statistics (the migrations), then 5 s with no pair.
  await sleep(10_000)
  const base = await measure(5000)
  const size0 = await cluster.sizeOf(name)
  log(
    `  no pairs yet: replicas ${base.perReplica.map(fmt2).join(' / ')} % of a core, PostgreSQL ${fmt2(base.pctPg)} %, ` +
      `${fmt1(base.xactsPerSec)} transactions/s, ${fmt1(base.statementsPerSec)} statements/s`,
  )
  const threads = idleThreads(pairs)
  await emitIdleThreads(b, threads)
  const tMake = performance.now()
  await makeIdlePairs(first, b, threads)
  await waitIdleCaughtUp(reps, pairs, 900_000)
  const makeSeconds = (performance.now() - tMake) / 1000
  const held = await waitSpread(cluster, name, reps, pairs, log)
  log(`  pairs held by the replicas: ${held.map((h) => (h === null ? 'no leases' : fmtInt(h))).join(' / ')}`)
  log(`  ${fmtInt(pairs)} pairs made through the first replica and caught up in ${fmt1(makeSeconds)} s; settling ${settleS} s`)
  await sleep(settleS * 1000)
  const pulls0 = await pullsOf(reps)
  const m = await measure(window * 1000)
  const renewals = (await pullsOf(reps)) - pulls0
  const rssMB = reps.map((r) => memOf(r.pid).rssMB)
  const bytesPerPair = ((await cluster.sizeOf(name)) - size0) / pairs
  const heldAfter = await pairsHeld(reps)
  const result = { pairs, replicas, base, ...m, makeSeconds, held: heldAfter, rssMB, bytesPerPair, renewalsPerSec: renewals / m.wall }
  log(
    `  over ${fmtInt(m.wall)} s: replicas ${m.perReplica.map(fmt2).join(' / ')} % of a core (together ${fmt2(m.replicasTotal)} %), B ${fmt2(m.pctB)} %, ` +
      `PostgreSQL ${fmt2(m.pctPg)} %; ${fmt1(m.xactsPerSec)} transactions/s, ${fmt1(m.statementsPerSec)} statements/s on A's database, ` +
      `${fmt1(m.rowsPerSec)} rows written/s, WAL ${fmtInt(m.walBytesPerSec)} B/s; ` +
      `≤ ${m.conns.n} connections (${m.conns.listen} in LISTEN); ≤ ${m.held} requests held at B; ${fmt1(result.renewalsPerSec)} idle answers/s; ` +
      `pairs held ${heldAfter.map((h) => h ?? 'n/a').join(' / ')}; replicas' RSS ${rssMB.map(fmtInt).join(' / ')} MB; the database grew by ${fmtInt(bytesPerPair)} B per pair; ` +
      `other processes ${fmt2(m.otherCores)} cores`,
  )
  await Promise.all([...reps, b].map((d) => d.stop()))
  return result
}

/**
 * Least squares of y ≈ r·replicas + p·pairs over the rows (null when they do not tell the two apart).
 * @returns {{ perReplica: number, perPair: number } | null}
 */
export function fitIdle(rows, y) {
  let rr = 0
  let rp = 0
  let pp = 0
  let ry = 0
  let py = 0
  for (const x of rows) {
    const v = y(x)
    if (!Number.isFinite(v)) return null
    rr += x.replicas * x.replicas
    rp += x.replicas * x.pairs
    pp += x.pairs * x.pairs
    ry += x.replicas * v
    py += x.pairs * v
  }
  const det = rr * pp - rp * rp
  if (Math.abs(det) < 1e-9 * rr * pp || rows.length < 2) return null
  return { perReplica: (ry * pp - py * rp) / det, perPair: (py * rr - ry * rp) / det }
}

/** What the rows imply, per quantity: the fitted costs and the figure at `EXTRAPOLATE_PAIRS` pairs on 1, 2 and 4 replicas. */
export function idleModel(rows) {
  const quantities = [
    ['spl CPU (all replicas), % of a core', (x) => x.replicasTotal],
    ['PostgreSQL CPU, % of a core', (x) => x.pctPg],
    ['transactions/s', (x) => x.xactsPerSec],
    ['statements/s', (x) => x.statementsPerSec],
    ['rows written/s', (x) => x.rowsPerSec],
  ]
  return quantities.map(([what, y]) => {
    const f = fitIdle(rows, y)
    return { what, fit: f, at: f ? [1, 2, 4].map((r) => f.perReplica * r + f.perPair * EXTRAPOLATE_PAIRS) : null }
  })
}

/** Runs the idle matrix (BENCH_PG_MATRIX or DEFAULT_PG_MATRIX). */
export async function runPgIdle({ cluster, matrix, log = console.log }) {
  const rows = []
  for (const c of parsePgMatrix(matrix ?? process.env.BENCH_PG_MATRIX ?? DEFAULT_PG_MATRIX)) {
    log(`  — ${fmtInt(c.pairs)} idle pairs, ${c.replicas} replica(s) on PostgreSQL`)
    rows.push(await runPgIdleOne({ cluster, ...c, log }))
  }
  return { rows, model: idleModel(rows), otherCores: Math.max(0, ...rows.map((x) => x.otherCores)) }
}

/** The PostgreSQL tables of the summary: catch-up and live beside SQLite, the idle rows and what they imply. */
export function pgSummary(r) {
  const out = []
  const rows = [['figure', 'SQLite', 'PostgreSQL', 'PostgreSQL / SQLite']]
  if (r.catchup) {
    const c = r.catchup
    const title = `catch-up, ${fmtInt(c.n)} records, median of ${c.rounds}`
    rows.push([
      `${title}, source on PostgreSQL`,
      `${fmtInt(c.sqlite)} records/s`,
      `${fmtInt(c.sourcePg)} records/s`,
      `${fmt2(c.sourcePg / c.sqlite)}×`,
    ])
    rows.push([
      `${title}, puller on PostgreSQL`,
      `${fmtInt(c.sqlite)} records/s`,
      `${fmtInt(c.pullerPg)} records/s`,
      `${fmt2(c.pullerPg / c.sqlite)}×`,
    ])
    rows.push(["catch-up, the puller's database per record stored", '', `${fmtInt(c.bytesPerRecord)} B`, ''])
  }
  if (r.live) {
    const l = r.live
    rows.push([
      `live p50, both on one kind, median of ${l.rounds}`,
      `${fmt1(l.p50)} ms`,
      `${fmt1(l.pgP50)} ms`,
      `${fmt2(l.pgP50 / l.p50)}×`,
    ])
    rows.push([
      `live p95, both on one kind, median of ${l.rounds}`,
      `${fmt1(l.p95)} ms`,
      `${fmt1(l.pgP95)} ms`,
      `${fmt2(l.pgP95 / l.p95)}×`,
    ])
  }
  if (rows.length > 1) out.push(table(rows))
  if (r.idle?.rows.length) {
    const idle = [
      [
        'idle pairs × replicas',
        'pairs held',
        'CPU per replica',
        'B (SQLite)',
        'PostgreSQL',
        'transactions/s',
        'statements/s',
        'rows written/s',
        'WAL',
        'connections',
        'RSS per replica',
        'database per pair',
      ],
    ]
    for (const x of r.idle.rows) {
      idle.push([
        `${fmtInt(x.pairs)} × ${x.replicas}`,
        x.held.map((h) => (h === null ? 'n/a' : fmtInt(h))).join(' / '),
        `${x.perReplica.map(fmt2).join(' / ')} %`,
        `${fmt2(x.pctB)} %`,
        `${fmt2(x.pctPg)} %`,
        fmt1(x.xactsPerSec),
        fmt1(x.statementsPerSec),
        fmt1(x.rowsPerSec),
        `${fmtInt(x.walBytesPerSec / 1000)} kB/s`,
        `${x.conns.n} (${x.conns.listen} LISTEN)`,
        `${x.rssMB.map(fmtInt).join(' / ')} MB`,
        `${fmtInt(x.bytesPerPair)} B`,
      ])
    }
    out.push(table(idle))
    const model = [
      [
        'fitted: y ≈ r·replicas + p·pairs',
        'r (per replica)',
        'p (per 1,000 pairs)',
        ...[1, 2, 4].map((n) => `${fmtInt(EXTRAPOLATE_PAIRS)} pairs, ${n} repl.`),
      ],
    ]
    for (const m of r.idle.model) {
      model.push(
        m.fit
          ? [m.what, fmt2(m.fit.perReplica), fmt2(m.fit.perPair * 1000), ...m.at.map(fmt1)]
          : [m.what, 'n/a (too few rows)', '', '', '', ''],
      )
    }
    out.push(table(model))
  }
  return out
}

/**
 * Catch-up, live and idle on a cluster of its own (the parts in `parts`).
 * @param {{ records?: any[], rounds?: number, parts?: string[], log?: (s: string) => void }} [opts]
 */
export async function runPg(opts = {}) {
  const log = opts.log ?? console.log
  const parts = opts.parts ?? ['catchup', 'live', 'idle']
  const rounds = opts.rounds ?? Number(process.env.BENCH_ROUNDS ?? 3)
  const cluster = await startPgCluster()
  const [{ server_version: version }] = await cluster.query('show server_version')
  log(
    `  PostgreSQL ${version} on 127.0.0.1:${cluster.port} (fsync off; pg_stat_statements ${cluster.statements ? 'loaded' : 'not available'})`,
  )
  /** @type {Record<string, any>} */
  const r = { version }
  if (parts.includes('catchup')) {
    let records = opts.records
    if (!records) {
      const { Keypair } = await import('../packages/identity/dist/index.js')
      records = await signedRecords(Keypair.generate(), THREAD, Number(process.env.BENCH_COMPARE_N ?? 20_000))
    }
    log(`  catch-up: ${fmtInt(records.length)} records, SQLite and PostgreSQL alternating, ${rounds} rounds`)
    r.catchup = await runPgCatchup({ cluster, records, rounds, log })
  }
  if (parts.includes('live')) {
    log(`  live: 200 records at 20/s, both daemons on SQLite, then both on PostgreSQL, ${rounds} rounds`)
    r.live = await runPgLive({ cluster, rounds, log })
  }
  if (parts.includes('idle')) {
    log('  idle: replicas of a puller on one PostgreSQL database, idle pairs towards a peer on SQLite')
    r.idle = await runPgIdle({ cluster, log })
  }
  r.otherCores = Math.max(0, ...['catchup', 'live', 'idle'].map((k) => r[k]?.otherCores ?? 0))
  return r
}

if (isMain(import.meta.url)) {
  await withCleanup(async () => {
    await header('spl on PostgreSQL beside SQLite: catch-up, live latency, idle pairs on replicas')
    const skip = pgSkipReason()
    if (skip) {
      console.log(`skipped: ${skip}`)
      return
    }
    const parts = process.argv.slice(2)
    for (const p of parts) if (!['catchup', 'live', 'idle'].includes(p)) throw new Error(`unknown part '${p}' (catchup, live, idle)`)
    const r = await runPg(parts.length > 0 ? { parts } : {})
    for (const t of pgSummary(r)) console.log(`\n${t}`)
  })
}
