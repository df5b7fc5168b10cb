// `pnpm bench`: runs every benchmark in turn and prints a summary table with the targets of the
// issue, PouchDB measured beside spl in the same run (bench/pouchdb.js) and the ratios. Figures
// only: nothing here fails on a timing.
//
//   pnpm bench                       (builds first)
//   node bench/run.js                (already built)
//   node bench/run.js catchup live   (a subset: startup, catchup, rss, ceiling, live, idle, audit, batch, import, pg)
//
// PouchDB (pouchdb-node + express-pouchdb, devDependencies of the root) runs when installed;
// without it, or with BENCH_POUCHDB=off, spl's figures are printed alone. PostgreSQL (bench/pg.js:
// catch-up, live and idle pairs on replicas beside SQLite, on a cluster of its own) runs when its
// binaries are installed; without them, or with BENCH_PG=off, it prints why it is skipped.
import os from 'node:os'
import { runAudit } from './audit.js'
import { runBatch, TARGET_BATCH_RATE } from './batch.js'
import { runCatchup, TARGET_RATIO, TARGET_RSS_MB } from './catchup.js'
import { runCeiling } from './ceiling.js'
import { runIdle, TARGET_CPU_PCT } from './idle.js'
import { runImport, TARGET_IMPORT_SHARE } from './import.js'
import { fmt1, fmt2, fmtInt, machine, machineState, mark, median, revision, signedRecords, stateLines, table, withCleanup } from './lib.js'
import { runLive, TARGET_P50_RATIO, TARGET_P95 } from './live.js'
import { DEFAULT_PG_MATRIX, pgSkipReason, pgSummary, runPg } from './pg.js'
import { pouchAvailable, runPouchCatchup, runPouchLive } from './pouchdb.js'
import { runStartup, TARGET_QUERY_X, TARGET_VERSION_X } from './startup.js'

const ALL = ['startup', 'catchup', 'rss', 'ceiling', 'live', 'idle', 'audit', 'batch', 'import', 'pg']
/** Records in the side-by-side catch-up (the comparison: 20,000 of ~500 B). */
const COMPARE_N = Number(process.env.BENCH_COMPARE_N ?? 20_000)
/** Rounds of the side-by-side figures, spl and PouchDB alternating (medians are compared). */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
/** Thread sizes of the pulling side's memory figure. */
const RSS_SIZES = (process.env.BENCH_RSS_SIZES ?? '10000,100000,1000000').split(',').map(Number)

await withCleanup(async () => {
  const chosen = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ALL
  for (const c of chosen) if (!ALL.includes(c)) throw new Error(`unknown benchmark '${c}' (one of ${ALL.join(', ')})`)
  const started = Date.now()
  console.log(`spl benchmarks — ${new Date().toISOString()}`)
  console.log(`machine: ${machine()}`)
  console.log(`revision: ${revision()}`)
  for (const l of stateLines(await machineState())) console.log(l)

  /** @type {Record<string, any>} */
  const r = {}
  /** @type {any[] | undefined} signed catch-up records, reused by the ceiling */
  let shared
  const step = async (name, title, fn) => {
    if (!chosen.includes(name)) return
    console.log(`\n[${name}] ${title}`)
    const t = Date.now()
    r[name] = await fn()
    console.log(`  (${fmt1((Date.now() - t) / 1000)} s)`)
  }
  await step('startup', 'CLI start-up: spl version and spl thread list (real daemon) against node -e 0, medians', () => runStartup())
  const pouch = process.env.BENCH_POUCHDB !== 'off' && (await pouchAvailable())
  if (!pouch) console.log('\nPouchDB: not installed (or BENCH_POUCHDB=off): spl figures alone')
  await step(
    'catchup',
    `catch-up: ${fmtInt(COMPARE_N)} records of ~500 B, A → empty B on 127.0.0.1: spl daemons${pouch ? ' and PouchDB servers, alternating' : ''}, ${ROUNDS} rounds`,
    async () => {
      const { Keypair } = await import('../packages/identity/dist/index.js')
      const records = await signedRecords(Keypair.generate(), 'th_bench_catchup', COMPARE_N)
      shared = records
      const spl = []
      const pdb = []
      for (let i = 0; i < ROUNDS; i++) {
        console.log(`  — round ${i + 1}: spl`)
        spl.push(await runCatchup({ records }))
        if (pouch) {
          console.log(`  — round ${i + 1}: PouchDB`)
          pdb.push(await runPouchCatchup({ records }))
        }
      }
      const out = {
        spl,
        pdb,
        rate: median(spl.map((x) => x.rate)),
        pouchRate: pouch ? median(pdb.map((x) => x.rate)) : Number.NaN,
        hwmMB: Math.max(...spl.map((x) => x.hwmMB)),
        pouchHwmMB: pouch ? Math.max(...pdb.map((x) => x.hwmMB)) : Number.NaN,
        otherCores: Math.max(...spl.map((x) => x.otherCores), ...pdb.map((x) => x.otherCores)),
      }
      out.ratio = out.rate / out.pouchRate
      console.log(
        `  spl ${spl.map((x) => fmtInt(x.rate)).join(' / ')} records/s; PouchDB ${pdb.map((x) => fmtInt(x.rate)).join(' / ') || 'n/a'} docs/s; ratio of the medians ${fmt2(out.ratio)}× (target ≥ ${TARGET_RATIO}×)`,
      )
      return out
    },
  )
  await step('rss', `pulling side's memory: catch-up of threads of ${RSS_SIZES.map(fmtInt).join(', ')} records, B's peak RSS`, async () => {
    const sizes = []
    for (const n of RSS_SIZES) {
      console.log(`  — ${fmtInt(n)} records`)
      const r = await runCatchup({ n })
      sizes.push({ n, hwmMB: r.hwmMB, rssStartMB: r.rssStartMB, rssEndMB: r.rssEndMB, rate: r.rate, otherCores: r.otherCores })
    }
    return { sizes, otherCores: Math.max(...sizes.map((x) => x.otherCores)) }
  })
  await step('ceiling', 'single-process ceiling: parse + canonicalize + hash + verify + insert, same records', () =>
    runCeiling(shared ? { records: shared } : {}),
  )
  await step(
    'live',
    `live latency: 200 records emitted on A at 20/s, B pulls by long poll${pouch ? '; PouchDB: continuous replication' : ''}`,
    async () => {
      const spl = []
      const pdb = []
      for (let i = 0; i < ROUNDS; i++) {
        console.log(`  — round ${i + 1}: spl`)
        spl.push(await runLive())
        if (pouch) {
          console.log(`  — round ${i + 1}: PouchDB`)
          pdb.push(await runPouchLive())
        }
      }
      const out = {
        spl,
        pdb,
        p50: median(spl.map((x) => x.p50)),
        p95: median(spl.map((x) => x.p95)),
        max: Math.max(...spl.map((x) => x.max)),
        pouchP50: pouch ? median(pdb.map((x) => x.p50)) : Number.NaN,
        pouchP95: pouch ? median(pdb.map((x) => x.p95)) : Number.NaN,
        otherCores: Math.max(...spl.map((x) => x.otherCores), ...pdb.map((x) => x.otherCores)),
      }
      out.ratio = out.p50 / out.pouchP50
      console.log(
        `  p50: spl ${spl.map((x) => fmt1(x.p50)).join(' / ')} ms, PouchDB ${pdb.map((x) => fmt1(x.p50)).join(' / ') || 'n/a'} ms; ratio of the medians ${fmt2(out.ratio)} (target ≤ ${TARGET_P50_RATIO})`,
      )
      return out
    },
  )
  await step('idle', 'idle: 100 / 1,000 / 5,000 pairs towards 1 and 10 peers, CPU over two long-poll timeouts (60 s)', () => runIdle())
  await step('audit', 'audit: set reconciliation of one thread, 0 / 10 / 1,000 differences on 100,000 and 1,000,000 ids, in process', () =>
    runAudit(),
  )
  await step('batch', 'batch emit: 20 batches of 1,000 records of ~500 B into one daemon', () => runBatch())
  await step('import', 'import: spl export, then spl import into a fresh home, 10,000 / 100,000 / 1,000,000 records', () => runImport())
  const pgSkip = pgSkipReason()
  if (pgSkip && chosen.includes('pg')) console.log(`\n[pg] PostgreSQL: skipped: ${pgSkip}`)
  else
    await step(
      'pg',
      `PostgreSQL beside SQLite: catch-up of ${fmtInt(COMPARE_N)} records and live latency, ${ROUNDS} rounds; idle pairs × replicas ${process.env.BENCH_PG_MATRIX ?? DEFAULT_PG_MATRIX}`,
      () => runPg(shared ? { records: shared, rounds: ROUNDS } : { rounds: ROUNDS }),
    )

  const rows = [['figure', 'spl', 'target', '', 'PouchDB (same run)']]
  if (r.startup) {
    const s = r.startup
    rows.push(['CLI start, node -e 0', `${fmt1(s.node)} ms`, '', '', ''])
    rows.push([
      'CLI start, spl version',
      `${fmt1(s.version)} ms = ${fmt2(s.versionX)}×`,
      `≤ ${TARGET_VERSION_X}×`,
      mark(s.versionX <= TARGET_VERSION_X),
      '',
    ])
    rows.push([
      'CLI start, spl thread list',
      `${fmt1(s.query)} ms = ${fmt2(s.queryX)}×`,
      `≤ ${TARGET_QUERY_X}×`,
      mark(s.queryX <= TARGET_QUERY_X),
      '',
    ])
  }
  if (r.catchup) {
    const c = r.catchup
    rows.push([
      `catch-up, ${fmtInt(COMPARE_N)} records, median of ${ROUNDS}`,
      `${fmtInt(c.rate)} records/s = ${fmt2(c.ratio)}× PouchDB`,
      `≥ ${TARGET_RATIO}×`,
      Number.isFinite(c.ratio) ? mark(c.ratio >= TARGET_RATIO) : '',
      Number.isFinite(c.pouchRate) ? `${fmtInt(c.pouchRate)} docs/s (no signatures checked)` : 'n/a',
    ])
    rows.push([
      'catch-up, B peak RSS (VmHWM)',
      `${fmtInt(c.hwmMB)} MB`,
      `≤ ${TARGET_RSS_MB} MB`,
      mark(c.hwmMB <= TARGET_RSS_MB),
      Number.isFinite(c.pouchHwmMB) ? `${fmtInt(c.pouchHwmMB)} MB` : 'n/a',
    ])
  }
  if (r.rss) {
    for (const x of r.rss.sizes) {
      rows.push([
        `catch-up of ${fmtInt(x.n)} records, B peak RSS`,
        `${fmtInt(x.hwmMB)} MB (${fmtInt(x.rssStartMB)} before, ${fmtInt(x.rate)} records/s)`,
        `≤ ${TARGET_RSS_MB} MB, flat`,
        mark(x.hwmMB <= TARGET_RSS_MB),
        '',
      ])
    }
    const h = r.rss.sizes.map((x) => x.hwmMB)
    if (h.length > 1) rows.push(['  spread of the peaks over the sizes', `${fmtInt(Math.max(...h) - Math.min(...h))} MB`, '', '', ''])
  }
  if (r.ceiling) {
    rows.push(['ingest ceiling, inline checks', `${fmtInt(r.ceiling.inline.rate)} records/s`, '', '', ''])
    rows.push(['ingest ceiling, threadpool, sequential', `${fmtInt(r.ceiling.threadpool.rate)} records/s`, '', '', ''])
    rows.push(['ingest ceiling, threadpool, pipelined', `${fmtInt(r.ceiling.pipelined.rate)} records/s`, '', '', ''])
  }
  if (r.catchup && r.ceiling) {
    rows.push(['end to end / ceiling (best above)', fmt2(r.catchup.rate / r.ceiling.ceiling), '', '', ''])
    rows.push(['end to end / ceiling with the threadpool, sequential', fmt2(r.catchup.rate / r.ceiling.threadpool.rate), '', '', ''])
  }
  if (r.live) {
    const l = r.live
    rows.push([
      `live emit→visible p50, median of ${ROUNDS}`,
      `${fmt1(l.p50)} ms = ${fmt2(l.ratio)}× PouchDB`,
      `≤ ${TARGET_P50_RATIO}×`,
      Number.isFinite(l.ratio) ? mark(l.ratio <= TARGET_P50_RATIO) : '',
      Number.isFinite(l.pouchP50) ? `${fmt1(l.pouchP50)} ms` : 'n/a',
    ])
    rows.push([
      `live emit→visible p95, median of ${ROUNDS}`,
      `${fmt1(l.p95)} ms`,
      `≤ ${TARGET_P95} ms`,
      mark(l.p95 <= TARGET_P95),
      Number.isFinite(l.pouchP95) ? `${fmt1(l.pouchP95)} ms` : 'n/a',
    ])
    rows.push(['live emit→visible max', `${fmt1(l.max)} ms`, '', '', ''])
  }
  for (const i of r.idle ?? []) {
    rows.push([
      `idle, ${fmtInt(i.pairs)} pairs / ${i.peers} peer${i.peers > 1 ? 's' : ''}${i.watch ? '' : ' (a long poll per pair)'}, B · busiest source`,
      `${fmt2(i.pctB)} % · ${fmt2(i.pctSourceMax)} % of a core`,
      `< ${TARGET_CPU_PCT} %`,
      i.watch ? mark(i.pctB < TARGET_CPU_PCT && i.pctSourceMax < TARGET_CPU_PCT) : '',
      '',
    ])
  }
  if (r.batch) {
    rows.push([
      'batch emit, one daemon',
      `${fmtInt(r.batch.rate)} records/s`,
      `≥ ${fmtInt(TARGET_BATCH_RATE)}`,
      mark(r.batch.rate >= TARGET_BATCH_RATE),
      '12,000 (_bulk_docs, issue)',
    ])
  }
  for (const run of r.import?.runs ?? []) {
    rows.push([
      `import, ${fmtInt(run.n)} records, / ceiling`,
      `${fmtInt(run.rate)} records/s = ${fmt2(run.share)}`,
      `≥ ${fmt2(TARGET_IMPORT_SHARE)}`,
      mark(run.share >= TARGET_IMPORT_SHARE),
      '',
    ])
    rows.push([
      `import, ${fmtInt(run.n)} records, without the process start`,
      `${fmtInt(run.ownRate)} records/s = ${fmt2(run.ownRate / run.ceiling)}`,
      '',
      '',
      '',
    ])
    rows.push([`import, ${fmtInt(run.n)} records, importer peak RSS`, `${fmtInt(run.peakMB)} MB`, 'flat', '', ''])
  }
  for (const a of r.audit ?? []) {
    rows.push([
      `audit, ${fmtInt(a.n)} records, ${fmtInt(a.diffs)} differences`,
      `${fmtInt(a.bytes)} B in ${a.rounds} rounds, ${fmt1(a.ms)} ms`,
      a.diffs === 10 ? '< 1 % of the thread' : '',
      a.diffs === 10 ? mark(a.share < 1) : '',
      '',
    ])
  }
  const busy = Object.entries(r)
    .filter(([, v]) => v && typeof v.otherCores === 'number')
    .map(([k, v]) => `${k} ${fmt2(v.otherCores)}`)
  if (r.ceiling)
    busy.push(`ceiling ${fmt2(Math.max(r.ceiling.inline.otherCores, r.ceiling.threadpool.otherCores, r.ceiling.pipelined.otherCores))}`)
  console.log(`\nsummary (${machine()})`)
  console.log(table(rows))
  console.log(`cores used by other processes during each benchmark: ${busy.join(', ')}`)
  if (r.pg) {
    console.log(`\nPostgreSQL ${r.pg.version} beside SQLite, same run (docs/scale.md)`)
    for (const t of pgSummary(r.pg)) console.log(`${t}\n`)
  }
  console.log(
    `\ntotal ${fmt1((Date.now() - started) / 1000)} s; load average at end: ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  )
})
