// The single-process ceiling of ingest for the catch-up records: what one process can do with
// the code the sync engine runs per page, without HTTP, proofs or the pair row: JSON.parse of a
// page as served, the record checks (checkEnvelope: schema, canonical form, SHA-256, actor,
// Ed25519 signature), the known-ids lookup, and RecordStore.ingest into a fresh SQLite file in
// one transaction per page of 1000. Three ways:
//   - inline: every check on the main thread;
//   - threadpool, sequential: threadPoolVerifier (what the daemon uses: prechecks on the main
//     thread, Ed25519 on libuv's threadpool), each page checked then committed before the next;
//   - threadpool, pipelined: as the engine does it, the next page is checked while the current
//     one commits on the main thread.
//
//   node bench/ceiling.js            (after `pnpm build`)
//   BENCH_CEILING_N=20000 node bench/ceiling.js
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { dist, fmt1, fmt2, fmtInt, foreignCpu, header, isMain, openDb, signedRecords, withCleanup } from './lib.js'

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
 * Ingests `pages` into a fresh store, checking records with `verifier`; returns records/s, the
 * CPU per record (worker threads included) and, when not pipelined, the wall time per stage.
 * @param {string[]} pages
 * @param {{ checkMany: (raw: unknown[], thread: string) => Promise<any[]> }} verifier
 * @param {string} label
 * @param {number} lookahead pages checked ahead of the commit (0 = sequential)
 */
async function ingestAll(pages, verifier, label, lookahead = 0) {
  const { RecordStore } = await dist('packages/records/dist/index.js')
  const dir = mkdtempSync(path.join(os.tmpdir(), 'spl-bench-ceiling-'))
  const { db } = await openDb(path.join(dir, 'spl.db'))
  const stages = { parse: 0, check: 0, insert: 0 }
  let n = 0
  try {
    const store = await RecordStore.open(db)
    /** Parse, then checks in the verifier and the known-ids lookup side by side (as the engine does). */
    const prepare = async (text) => {
      let t = performance.now()
      const page = JSON.parse(text)
      stages.parse += performance.now() - t
      t = performance.now()
      const ids = page.records.map((r) => r.id)
      const [checked] = await Promise.all([verifier.checkMany(page.records, THREAD), store.findExisting(ids)])
      stages.check += performance.now() - t
      for (const c of checked) if (!c.ok) throw new Error(`a record was rejected: ${c.code} ${c.message}`)
      return checked
    }
    const commit = async (candidates) => {
      const t = performance.now()
      await store.transaction((trx) => store.ingest(candidates, { origin: 'did:key:bench', now: Date.now() }, trx))
      stages.insert += performance.now() - t
      n += candidates.length
    }
    const t0 = performance.now()
    const cpu0 = process.cpuUsage() // includes the threadpool
    const foreign = foreignCpu()
    if (lookahead === 0) {
      for (const text of pages) await commit(await prepare(text))
    } else {
      /** @type {Promise<any[]>[]} */
      const queue = []
      let next = 0
      const fill = () => {
        while (queue.length < lookahead + 1 && next < pages.length) {
          const p = prepare(pages[next++])
          p.catch(() => {}) // surfaced when awaited
          queue.push(p)
        }
      }
      fill()
      while (queue.length > 0) {
        const checked = await queue.shift()
        fill()
        await commit(checked)
      }
    }
    const seconds = (performance.now() - t0) / 1000
    const cpu = process.cpuUsage(cpu0)
    const cpuUsPerRecord = (cpu.user + cpu.system) / n
    const { otherCores } = foreign.stop(0)
    const stored = await store.count()
    if (stored !== n) throw new Error(`${label}: stored ${stored} of ${n}`)
    return { label, n, seconds, rate: n / seconds, stages, cpuUsPerRecord, otherCores, pipelined: lookahead > 0 }
  } finally {
    await db.destroy()
    rmSync(dir, { recursive: true, force: true })
  }
}

function stageLine(r) {
  const per = (ms) => `${fmt1((ms * 1000) / r.n)} µs`
  const s = r.stages
  const wall = r.pipelined ? '' : `; wall per record: parse ${per(s.parse)}, checks ${per(s.check)}, insert ${per(s.insert)}`
  return `CPU ${fmtInt(r.cpuUsPerRecord)} µs per record${wall}; other processes: ${fmt2(r.otherCores)} cores`
}

/**
 * Runs the ceiling benchmark and returns its figures.
 * @param {{ n?: number, records?: any[], log?: (s: string) => void }} [opts]
 */
export async function runCeiling(opts = {}) {
  const n = opts.records?.length ?? opts.n ?? Number(process.env.BENCH_CEILING_N ?? 100_000)
  const log = opts.log ?? console.log
  const { Keypair } = await dist('packages/identity/dist/index.js')
  const { inlineChecker: inlineVerifier, threadPoolChecker: threadPoolVerifier } = await dist('packages/records/dist/index.js')
  const records = opts.records ?? (await signedRecords(Keypair.generate(), THREAD, n))
  const pages = servedPages(records)
  records.length = 0
  log(
    `  ${fmtInt(n)} records, ${pages.length} pages of ${PAGE} (${fmtInt(pages.reduce((s, p) => s + p.length, 0) / n)} B of JSON per record)`,
  )

  const inline = await ingestAll(pages, inlineVerifier, 'inline checks (main thread only)')
  log(`  ${inline.label}: ${fmtInt(inline.rate)} records/s — ${stageLine(inline)}`)

  const pooled = await ingestAll(pages, threadPoolVerifier, 'threadpool, sequential')
  log(`  ${pooled.label}: ${fmtInt(pooled.rate)} records/s — ${stageLine(pooled)}`)
  const piped = await ingestAll(pages, threadPoolVerifier, 'threadpool, pipelined (1 page ahead)', 1)
  log(`  ${piped.label}: ${fmtInt(piped.rate)} records/s — ${stageLine(piped)}`)
  const best = [inline, pooled, piped].reduce((x, y) => (y.rate > x.rate ? y : x))
  log(`  ceiling: ${fmtInt(best.rate)} records/s (${best.label})`)
  return { n, inline, threadpool: pooled, pipelined: piped, ceiling: best.rate, ceilingLabel: best.label }
}

if (isMain(import.meta.url)) {
  await withCleanup(async () => {
    await header('single-process ingest ceiling (parse + canonicalize + hash + verify + insert)')
    await runCeiling()
  })
}
