// Import (issue 16): `spl export` of a home holding n records of ~500 B, then `spl import` of the
// bundle into a fresh home, as a real process: records/s (the whole process, verification of
// the bundle included) against the single-process ingest ceiling (bench/ceiling.js, measured on
// the same kind of records just before each import: the machine's speed drifts), and the importer's peak RSS at each size: flat
// memory means the same peak at 10,000 and at 1,000,000.
//
//   node bench/import.js                              (after `pnpm build`; 10k, 100k, 1M)
//   BENCH_IMPORT_SIZES=10000,100000 node bench/import.js
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { SPL_BIN } from '../test-utils/test-daemon.js'
import { runCeiling } from './ceiling.js'
import {
  benchRecord,
  dist,
  fmt1,
  fmt2,
  fmtInt,
  header,
  initHome,
  isMain,
  keypairOfHome,
  onCleanup,
  openDb,
  rssSampler,
  withCleanup,
} from './lib.js'

export const TARGET_IMPORT_SHARE = 0.9
const THREAD = 'th_bench_import'
const CEILING_N = 50_000

/** Signs and stores `n` benchmark records in `home`'s store, 10,000 at a time (never all in memory). */
export async function seed(home, n) {
  const { RecordStore, signRecord } = await dist('packages/records/dist/index.js')
  const keypair = await keypairOfHome(home)
  const { db, sqlite } = await openDb(path.join(home, 'spl.db'))
  try {
    const store = await RecordStore.open(db)
    const now = Date.now()
    for (let i = 0; i < n; i += 1000) {
      const batch = []
      for (let k = i; k < Math.min(n, i + 1000); k++) {
        const s = signRecord(keypair, benchRecord(keypair.did, THREAD, k))
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
      await store.transaction((trx) => store.ingest(batch, { origin: 'did:key:z6MkBenchPeer', now }, trx))
    }
  } finally {
    sqlite.pragma('wal_checkpoint(TRUNCATE)')
    await db.destroy()
  }
}

/** Runs `spl …` on `home` as a child process, sampling its RSS; resolves with its output, wall time and peak. */
function timedSpl(home, args) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now()
    const child = spawn(process.execPath, [SPL_BIN, ...args], {
      env: { ...process.env, SPL_MDNS: 'off', SYNCROPEL_HOME: home },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const rss = rssSampler(child.pid, 50)
    let out = ''
    let err = ''
    child.stdout.on('data', (c) => (out += c))
    child.stderr.on('data', (c) => (err += c))
    child.on('error', reject)
    child.on('exit', (code) => {
      const { peakMB } = rss.stop()
      const seconds = (performance.now() - t0) / 1000
      if (code !== 0) reject(new Error(`spl ${args.join(' ')} exited ${code}: ${err.slice(0, 500)}`))
      else resolve({ json: JSON.parse(out), seconds, peakMB })
    })
  })
}

/**
 * Runs the import benchmark and returns its figures.
 * @param {{ sizes?: number[], log?: (s: string) => void }} [opts]
 */
export async function runImport(opts = {}) {
  const log = opts.log ?? console.log
  const sizes = opts.sizes ?? (process.env.BENCH_IMPORT_SIZES ?? '10000,100000,1000000').split(',').map(Number)
  const { Keypair } = await dist('packages/identity/dist/index.js')
  const { signedRecords } = await import('./lib.js')
  const sample = await signedRecords(Keypair.generate(), 'th_bench_catchup', CEILING_N)
  /** The ceiling, measured again next to each import: the machine's speed drifts within a run. */
  const measureCeiling = async () => {
    const quiet = () => {}
    return (await runCeiling({ records: [...sample], log: quiet })).ceiling
  }
  const runs = []
  for (const n of sizes) {
    const src = await initHome('spl-bench-import-src-')
    await seed(src, n)
    const dir = mkdtempSync(path.join(os.tmpdir(), 'spl-bench-import-'))
    onCleanup(() => rmSync(dir, { recursive: true, force: true }))
    const bundle = path.join(dir, 'bundle.spl')
    const exp = await timedSpl(src, ['export', '--out', bundle, '--json'])
    rmSync(src, { recursive: true, force: true })
    const target = path.join(dir, 'home')
    const ceiling = await measureCeiling()
    const imp = await timedSpl(target, ['import', bundle, '--json'])
    const r = imp.json
    if (r.records.stored !== n) throw new Error(`import of ${n}: stored ${r.records.stored}`)
    const rate = n / imp.seconds
    const run = {
      n,
      bundleMB: statSync(bundle).size / 1e6,
      exportSeconds: exp.seconds,
      exportPeakMB: exp.peakMB,
      seconds: imp.seconds,
      rate,
      ceiling,
      share: rate / ceiling,
      /** The import's own time (its report: verification, ingest, pairs), without node's start and module loading. */
      ownRate: n / r.seconds,
      peakMB: imp.peakMB,
    }
    runs.push(run)
    log(
      `  ${fmtInt(n)} records: bundle ${fmt1(run.bundleMB)} MB, export ${fmt1(exp.seconds)} s (peak RSS ${fmtInt(exp.peakMB)} MB); ` +
        `import ${fmt1(imp.seconds)} s = ${fmtInt(rate)} records/s = ${fmt2(run.share)} of the ceiling measured just before (${fmtInt(ceiling)}/s; ` +
        `${fmtInt(run.ownRate)}/s = ${fmt2(run.ownRate / ceiling)} without the process start), importer peak RSS ${fmtInt(imp.peakMB)} MB`,
    )
    rmSync(dir, { recursive: true, force: true })
  }
  return { runs }
}

if (isMain(import.meta.url)) {
  await withCleanup(async () => {
    await header('import: spl export, then spl import into a fresh home (real processes)')
    await runImport()
  })
}
