// PouchDB as the peer to compare with: two PouchDB servers (express-pouchdb over pouchdb-node's
// LevelDB adapter, bench/pouchdb-server.cjs), each its own process on 127.0.0.1, like two spl
// daemons.
//   - catch-up: A holds the same signed records as spl's catch-up (one document per envelope:
//     `_id` = the record's id, `record` and `sig` as served), loaded through `_bulk_docs`; B
//     replicates them with `POST /_replicate` (source A's URL, local target, PouchDB's default
//     batches: what a CouchDB-protocol peer does); timed from the POST until it answers, then
//     B's doc_count is checked. PouchDB checks no signature.
//   - live: B runs a continuous `POST /_replicate` from A; documents are PUT on A at the same
//     rate as spl's live benchmark, and a watcher asks B's `_changes?since=` again ~2 ms after
//     each answer: latency = first seen on B − start of the PUT on A.
//
//   node bench/pouchdb.js             (PouchDB alone: catch-up of 20,000 records and live)
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { Keypair } from '../packages/identity/dist/index.js'
import {
  cpuSecondsOf,
  fmt1,
  fmt2,
  fmtInt,
  foreignCpu,
  header,
  isMain,
  memOf,
  onCleanup,
  quantile,
  ROOT,
  request,
  rssSampler,
  signedRecords,
  sleep,
  withCleanup,
} from './lib.js'

const DB = 'bench'
const SERVER = path.join(ROOT, 'bench', 'pouchdb-server.cjs')

/** True when pouchdb-node and express-pouchdb can be loaded (devDependencies of the root). */
export async function pouchAvailable() {
  try {
    const { createRequire } = await import('node:module')
    const req = createRequire(SERVER)
    req.resolve('pouchdb-node')
    req.resolve('express-pouchdb')
    return true
  } catch {
    return false
  }
}

/** One PouchDB server on a fresh directory, stopped and removed at cleanup. */
export async function startPouch() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'spl-bench-pouch-'))
  const child = spawn(process.execPath, [SERVER, dir], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (c) => {
    stderr += c
  })
  const exited = new Promise((resolve) => child.once('exit', resolve))
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      const t = setTimeout(() => child.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(t)
    }
    rmSync(dir, { recursive: true, force: true })
  }
  const unregister = onCleanup(stop)
  const port = await new Promise((resolve, reject) => {
    const rl = createInterface({ input: child.stdout })
    rl.once('line', (line) => {
      try {
        resolve(JSON.parse(line).port)
      } catch (err) {
        reject(err)
      }
    })
    child.once('exit', (code) => reject(new Error(`the PouchDB server exited (${code}): ${stderr.slice(0, 500)}`)))
  })
  const url = `http://127.0.0.1:${port}`
  return {
    url,
    pid: child.pid,
    dir,
    get: async (p) => (await request('GET', url + p)).json,
    put: async (p, body) => (await request('PUT', url + p, { body })).json,
    post: async (p, body, timeoutMs) => (await request('POST', url + p, { body, timeoutMs })).json,
    async stop() {
      unregister()
      await stop()
    },
  }
}

/**
 * Loads `records` into `db` of `server` as documents, 1000 per `_bulk_docs`.
 * @returns {Promise<number>} documents per second
 */
async function loadDocs(server, records) {
  await server.put(`/${DB}`)
  const t0 = performance.now()
  for (let i = 0; i < records.length; i += 1000) {
    const docs = records.slice(i, i + 1000).map((r) => ({ _id: r.id, record: r.record, sig: r.sig }))
    const res = await server.post(`/${DB}/_bulk_docs`, { docs }, 120_000)
    const bad = res.filter((x) => x.error)
    if (bad.length > 0) throw new Error(`_bulk_docs: ${JSON.stringify(bad[0])}`)
  }
  return records.length / ((performance.now() - t0) / 1000)
}

/**
 * PouchDB catch-up: B replicates A's database of `records` (or `n` fresh ones).
 * @param {{ records?: any[], n?: number, batchSize?: number, log?: (s: string) => void }} [opts]
 */
export async function runPouchCatchup(opts = {}) {
  const log = opts.log ?? console.log
  const records = opts.records ?? (await signedRecords(Keypair.generate(), 'th_bench_catchup', opts.n ?? 20_000))
  const n = records.length
  const [a, b] = await Promise.all([startPouch(), startPouch()])
  try {
    const loadRate = await loadDocs(a, records)
    const info = await a.get(`/${DB}`)
    log(
      `  PouchDB A ${a.url} (pid ${a.pid}), B ${b.url} (pid ${b.pid}); A loaded ${fmtInt(info.doc_count)} documents at ${fmtInt(loadRate)}/s`,
    )
    await sleep(500)
    const rss = rssSampler(b.pid, 50)
    const memB0 = memOf(b.pid)
    const cpuA0 = cpuSecondsOf(a.pid)
    const cpuB0 = cpuSecondsOf(b.pid)
    const foreign = foreignCpu()
    const body = { source: `${a.url}/${DB}`, target: DB, create_target: true }
    if (opts.batchSize) Object.assign(body, { batch_size: opts.batchSize })
    const t = performance.now()
    const res = await b.post('/_replicate', body, 30 * 60_000)
    const elapsed = (performance.now() - t) / 1000
    const cpuA = cpuSecondsOf(a.pid) - cpuA0
    const cpuB = cpuSecondsOf(b.pid) - cpuB0
    const { peakMB } = rss.stop()
    const others = foreign.stop(cpuA + cpuB)
    const { hwmMB, rssMB } = memOf(b.pid)
    const onB = (await b.get(`/${DB}`)).doc_count
    if (onB !== n)
      throw new Error(`PouchDB B holds ${onB} documents after the replication, expected ${n} (${JSON.stringify(res).slice(0, 300)})`)
    const rate = n / elapsed
    log(
      `  PouchDB B replicated ${fmtInt(onB)} documents in ${fmt1(elapsed)} s (${res.docs_written} written${opts.batchSize ? `, batch_size ${opts.batchSize}` : ', default batches'})`,
    )
    log(
      `  CPU: B ${fmt1(cpuB)} s (${fmtInt((cpuB / elapsed) * 100)} % of one core), A ${fmt1(cpuA)} s (${fmtInt((cpuA / elapsed) * 100)} %); other processes ${fmt2(others.otherCores)} cores`,
    )
    log(
      `  PouchDB B RSS: ${fmtInt(memB0.rssMB)} MB before, peak sampled ${fmtInt(peakMB)} MB, VmHWM ${fmtInt(hwmMB)} MB, ${fmtInt(rssMB)} MB after`,
    )
    log(`  PouchDB catch-up: ${fmtInt(rate)} docs/s`)
    return {
      n,
      seconds: elapsed,
      rate,
      cpuA,
      cpuB,
      hwmMB,
      rssStartMB: memB0.rssMB,
      rssPeakSampledMB: peakMB,
      otherCores: others.otherCores,
    }
  } finally {
    await Promise.all([a.stop(), b.stop()])
  }
}

/**
 * PouchDB live latency: continuous replication A → B, documents PUT on A at `rate` per second.
 * @param {{ n?: number, rate?: number, warmup?: number, log?: (s: string) => void }} [opts]
 */
export async function runPouchLive(opts = {}) {
  const n = opts.n ?? Number(process.env.BENCH_LIVE_N ?? 200)
  const rate = opts.rate ?? Number(process.env.BENCH_LIVE_RATE ?? 20)
  const warmup = opts.warmup ?? 20
  const log = opts.log ?? console.log
  const [a, b] = await Promise.all([startPouch(), startPouch()])
  try {
    log(`  PouchDB A ${a.url} (pid ${a.pid}), B ${b.url} (pid ${b.pid})`)
    await a.put(`/${DB}`)
    await a.put(`/${DB}/start`, { n: -1, text: 'start' })
    await b.post('/_replicate', { source: `${a.url}/${DB}`, target: DB, create_target: true, continuous: true })
    const deadline0 = Date.now() + 30_000
    for (;;) {
      const info = await b.get(`/${DB}`).catch(() => null)
      if (info && info.doc_count >= 1) break
      if (Date.now() > deadline0) throw new Error('PouchDB B did not receive the first document within 30 s')
      await sleep(20)
    }
    await sleep(200)

    const sentAt = new Map()
    const seenAt = new Map()
    const total = warmup + n
    let watching = true
    let since = (await b.get(`/${DB}`)).update_seq
    let polls = 0
    const watcher = (async () => {
      while (watching) {
        const { json } = await request('GET', `${b.url}/${DB}/_changes?since=${encodeURIComponent(since)}&include_docs=true`)
        const now = performance.now()
        polls++
        for (const ch of json.results) {
          const k = ch.doc?.n
          if (typeof k === 'number' && !seenAt.has(k)) seenAt.set(k, now)
        }
        since = json.last_seq
        if (seenAt.size >= total) break
        await sleep(2)
      }
    })()

    const foreign = foreignCpu()
    const cpu0 = cpuSecondsOf(a.pid) + cpuSecondsOf(b.pid)
    const t0 = performance.now()
    const period = 1000 / rate
    const puts = []
    for (let i = 0; i < total; i++) {
      const due = t0 + i * period
      const wait = due - performance.now()
      if (wait > 0) await sleep(wait)
      sentAt.set(i, performance.now())
      puts.push(a.put(`/${DB}/live-${String(i).padStart(6, '0')}`, { n: i, text: `live record ${i}` }))
    }
    await Promise.all(puts)
    const deadline = performance.now() + 30_000
    while (seenAt.size < total && performance.now() < deadline) await sleep(10)
    watching = false
    await watcher
    const others = foreign.stop(cpuSecondsOf(a.pid) + cpuSecondsOf(b.pid) - cpu0)
    const lat = []
    let missing = 0
    for (let i = warmup; i < total; i++) {
      const s = seenAt.get(i)
      if (s === undefined) missing++
      else lat.push(s - sentAt.get(i))
    }
    const result = {
      n,
      rate,
      p50: quantile(lat, 0.5),
      p95: quantile(lat, 0.95),
      p99: quantile(lat, 0.99),
      max: Math.max(...lat),
      min: Math.min(...lat),
      missing,
      polls,
      otherCores: others.otherCores,
    }
    log(`  PouchDB: ${n} documents at ${rate}/s after ${warmup} warm-up documents; watcher made ${fmtInt(polls)} polls of B`)
    log(
      `  PouchDB PUT on A → visible on B: min ${fmt1(result.min)}  p50 ${fmt1(result.p50)}  p95 ${fmt1(result.p95)}  p99 ${fmt1(result.p99)}  max ${fmt1(result.max)} ms${missing ? `  (${missing} never seen)` : ''}; other processes ${fmt2(others.otherCores)} cores`,
    )
    return result
  } finally {
    await Promise.all([a.stop(), b.stop()])
  }
}

if (isMain(import.meta.url)) {
  await withCleanup(async () => {
    await header('PouchDB: catch-up of 20,000 records and live latency, two servers on 127.0.0.1')
    await runPouchCatchup({ n: Number(process.env.BENCH_COMPARE_N ?? 20_000) })
    await runPouchLive()
  })
}
