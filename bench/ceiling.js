// The single-process ceiling of ingest for the catch-up records: what one process can do with
// the same code the sync engine runs per page (JSON.parse of a served page, precheckEnvelope =
// schema + canonicalize + hash + actor, signature verification, RecordStore.ingest into a fresh
// SQLite file in one transaction per 1000 records), without HTTP, proofs or the pair store.
// Timed twice: verification inline on the main thread, and over 2 worker threads
// (createWorkerVerifier, what the daemon uses).
//
//   node bench/ceiling.js            (after `pnpm build`)
//   BENCH_CEILING_N=20000 node bench/ceiling.js
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { dist, fmt1, fmt2, fmtInt, foreignCpu, header, isMain, onCleanup, openDb, signedRecords, withCleanup } from './lib.js'

const THREAD = 'th_bench_catchup'
const PAGE = 1000

/**
 * The pages of change-feed JSON a source would serve for `records` (1000 envelopes each).
 * @param {Array<{ id: string, record: any, sig: string }>} records
 */
function servedPages(records) {
  const now = Date.now()
  const pages = []
  for (let i = 0; i < records.length; i += PAGE) {
    const env = records.slice(i, i + PAGE).map((r) => ({ id: r.id, record: r.record, sig: r.sig, stored_at: now }))
    pages.push(
      JSON.stringify({
        records: env,
        next_cursor: `c1.0000000000000000.${i + PAGE}`,
        has_more: true,
        server_time: now,
      }),
    )
  }
  return pages
}

/**
 * Ingests `pages` into a fresh store with `verifier`; returns records/s and the time per stage.
 * Sequential (what the sync engine does per page): parse → precheck → known ids → verify →
 * commit, then the next page. With `pipelined`, page n's commit runs on the main thread while
 * the workers verify page n+1 (the commits stay in order).
 * @param {string[]} pages
 * @param {{ verifyMany: Function }} verifier
 * @param {string} label
 * @param {boolean} [pipelined]
 */
async function ingestAll(pages, verifier, label, pipelined = false) {
  const { RecordStore, precheckEnvelope } = await dist('packages/records/dist/index.js')
  const dir = mkdtempSync(path.join(os.tmpdir(), 'spl-bench-ceiling-'))
  const { db } = await openDb(path.join(dir, 'spl.db'))
  const stages = { parse: 0, precheck: 0, known: 0, verify: 0, insert: 0 }
  let n = 0
  try {
    const store = await RecordStore.open(db)
    const commit = async (candidates) => {
      const t = performance.now()
      await store.transaction((trx) => store.ingest(candidates, { origin: 'did:key:bench', now: Date.now() }, trx))
      stages.insert += performance.now() - t
      n += candidates.length
    }
    /** @type {any[] | null} */
    let toCommit = null
    const t0 = performance.now()
    const cpu0 = process.cpuUsage() // includes the worker threads
    const foreign = foreignCpu()
    for (const text of pages) {
      let t = performance.now()
      const page = JSON.parse(text)
      stages.parse += performance.now() - t
      t = performance.now()
      const candidates = []
      for (const raw of page.records) {
        const c = precheckEnvelope(raw, THREAD)
        if (!c.ok) throw new Error(`precheck rejected a record: ${c.code} ${c.message}`)
        candidates.push(c)
      }
      stages.precheck += performance.now() - t
      t = performance.now()
      // The engine asks which ids are already stored before verifying (duplicates skip verification).
      await store.findExisting(candidates.map((c) => c.id))
      stages.known += performance.now() - t
      t = performance.now()
      const verifying = verifier.verifyMany(candidates.map((c) => ({ actor: c.record.actor, canonical: c.canonical, sig: c.sig })))
      if (pipelined && toCommit) {
        // The previous page commits while the workers verify this one.
        const prev = toCommit
        toCommit = null
        const tc = performance.now()
        await commit(prev)
        t += performance.now() - tc
      }
      const ok = await verifying
      if (ok.some((v) => !v)) throw new Error('a signature did not verify')
      stages.verify += performance.now() - t
      if (pipelined) toCommit = candidates
      else await commit(candidates)
    }
    if (toCommit) await commit(toCommit)
    const seconds = (performance.now() - t0) / 1000
    const cpu = process.cpuUsage(cpu0)
    const cpuUsPerRecord = (cpu.user + cpu.system) / n
    const { otherCores } = foreign.stop(0)
    const stored = await store.count()
    if (stored !== n) throw new Error(`${label}: stored ${stored} of ${n}`)
    return { label, n, seconds, rate: n / seconds, stages, cpuUsPerRecord, otherCores }
  } finally {
    await db.destroy()
    rmSync(dir, { recursive: true, force: true })
  }
}

function stageLine(r) {
  const per = (ms) => `${fmt1((ms * 1000) / r.n)} µs`
  const s = r.stages
  return `CPU ${fmtInt(r.cpuUsPerRecord)} µs per record; wall: parse ${per(s.parse)}, precheck ${per(s.precheck)}, known-ids ${per(s.known)}, verify ${per(s.verify)}${r.label.includes('pipelined') ? ' (not overlapped)' : ''}, insert ${per(s.insert)}; other processes: ${fmt2(r.otherCores)} cores`
}

/**
 * Runs the ceiling benchmark and returns its figures.
 * @param {{ n?: number, records?: any[], log?: (s: string) => void }} [opts]
 */
export async function runCeiling(opts = {}) {
  const n = opts.records?.length ?? opts.n ?? Number(process.env.BENCH_CEILING_N ?? 100_000)
  const log = opts.log ?? console.log
  const { Keypair } = await dist('packages/identity/dist/index.js')
  const { inlineVerifier, createWorkerVerifier } = await dist('packages/records/dist/index.js')
  const records = opts.records ?? (await signedRecords(Keypair.generate(), THREAD, n))
  const pages = servedPages(records)
  records.length = 0
  log(
    `  ${fmtInt(n)} records, ${pages.length} pages of ${PAGE} (${fmtInt(pages.reduce((s, p) => s + p.length, 0) / n)} B of JSON per record)`,
  )

  const inline = await ingestAll(pages, inlineVerifier, 'inline verify (1 thread)')
  log(`  ${inline.label}: ${fmtInt(inline.rate)} records/s — ${stageLine(inline)}`)

  const workers = createWorkerVerifier({ threads: 2 })
  const close = onCleanup(() => workers.close())
  let pooled
  let piped
  try {
    pooled = await ingestAll(pages, workers, 'worker verify (2 threads)')
    log(`  ${pooled.label}: ${fmtInt(pooled.rate)} records/s — ${stageLine(pooled)}`)
    piped = await ingestAll(pages, workers, 'worker verify, pipelined', true)
    log(`  ${piped.label}: ${fmtInt(piped.rate)} records/s — ${stageLine(piped)}`)
  } finally {
    close()
    await workers.close()
  }
  const best = [inline, pooled, piped].reduce((x, y) => (y.rate > x.rate ? y : x))
  log(`  ceiling: ${fmtInt(best.rate)} records/s (${best.label})`)
  return { n, inline, workers: pooled, pipelined: piped, ceiling: best.rate, ceilingLabel: best.label }
}

if (isMain(import.meta.url)) {
  await withCleanup(async () => {
    await header('single-process ingest ceiling (parse + canonicalize + hash + verify + insert)')
    await runCeiling()
  })
}
