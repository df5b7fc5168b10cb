// `pnpm bench`: runs every benchmark in turn and prints a summary table with the targets of the
// issue and the PouchDB figures quoted there. Figures only: nothing here fails on a timing.
//
//   pnpm bench                       (builds first)
//   node bench/run.js                (already built)
//   node bench/run.js catchup live   (a subset: startup, catchup, ceiling, live, idle, audit, batch, import)
import os from 'node:os'
import { runAudit } from './audit.js'
import { runBatch, TARGET_BATCH_RATE } from './batch.js'
import { runCatchup, TARGET_RATE, TARGET_RSS_MB } from './catchup.js'
import { runCeiling } from './ceiling.js'
import { runIdle, TARGET_CPU_PCT } from './idle.js'
import { runImport, TARGET_IMPORT_SHARE } from './import.js'
import { fmt1, fmt2, fmtInt, machine, machineState, mark, POUCHDB, revision, stateLines, table, withCleanup } from './lib.js'
import { runLive, TARGET_P50, TARGET_P95 } from './live.js'
import { runStartup, TARGET_QUERY_X, TARGET_VERSION_X } from './startup.js'

const ALL = ['startup', 'catchup', 'ceiling', 'live', 'idle', 'audit', 'batch', 'import']

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
  await step('catchup', 'catch-up: 100,000 records of ~500 B, A → empty B, real daemons on 127.0.0.1', () =>
    runCatchup({ onRecords: (recs) => (shared = recs) }),
  )
  await step('ceiling', 'single-process ceiling: parse + canonicalize + hash + verify + insert, same records', () =>
    runCeiling(shared ? { records: shared } : {}),
  )
  await step('live', 'live latency: 200 records emitted on A at 20/s, B pulls by long poll', () => runLive())
  await step('idle', 'idle: 100 long-poll pairs on one daemon, CPU over 30 s and over two long-poll timeouts (60 s)', () => runIdle())
  await step('audit', 'audit: set reconciliation of one thread, 0 / 10 / 1,000 differences on 100,000 and 1,000,000 ids, in process', () =>
    runAudit(),
  )
  await step('batch', 'batch emit: 20 batches of 1,000 records of ~500 B into one daemon', () => runBatch())
  await step('import', 'import: spl export, then spl import into a fresh home, 10,000 / 100,000 / 1,000,000 records', () => runImport())

  const rows = [['figure', 'measured', 'target', '', 'PouchDB (issue)']]
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
    rows.push([
      'catch-up, end to end',
      `${fmtInt(r.catchup.rate)} records/s`,
      `≥ ${fmtInt(TARGET_RATE)}`,
      mark(r.catchup.rate >= TARGET_RATE),
      POUCHDB.catchup,
    ])
    rows.push([
      'catch-up, B peak RSS (VmHWM)',
      `${fmtInt(r.catchup.hwmMB)} MB`,
      `≤ ${TARGET_RSS_MB} MB`,
      mark(r.catchup.hwmMB <= TARGET_RSS_MB),
      POUCHDB.rss,
    ])
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
    rows.push(['live emit→visible p50', `${fmt1(r.live.p50)} ms`, `≤ ${TARGET_P50} ms`, mark(r.live.p50 <= TARGET_P50), '14 ms'])
    rows.push(['live emit→visible p95', `${fmt1(r.live.p95)} ms`, `≤ ${TARGET_P95} ms`, mark(r.live.p95 <= TARGET_P95), '22 ms'])
    rows.push(['live emit→visible max', `${fmt1(r.live.max)} ms`, '', '', ''])
  }
  if (r.idle) {
    const t = `< ${TARGET_CPU_PCT} %`
    rows.push([
      `idle, ${r.idle.pairs} pairs, B CPU over ${fmtInt(r.idle.seconds30)} s`,
      `${fmt2(r.idle.pct30)} % of a core`,
      t,
      mark(r.idle.pct30 < TARGET_CPU_PCT),
      '',
    ])
    rows.push([
      `idle, ${r.idle.pairs} pairs, B CPU over ${fmtInt(r.idle.seconds)} s`,
      `${fmt2(r.idle.pctB)} % of a core`,
      t,
      mark(r.idle.pctB < TARGET_CPU_PCT),
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
  console.log(
    `\ntotal ${fmt1((Date.now() - started) / 1000)} s; load average at end: ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  )
})
