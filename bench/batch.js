// Batch emit (issue 16): POST /v1/records/batch of 1,000 records of ~500 B, one request after
// another, into one real daemon on 127.0.0.1. Each batch is signed and stored in one transaction.
//
//   node bench/batch.js            (after `pnpm build`)
import { Daemon, fmt1, fmtInt, initHome, isMain, withCleanup } from './lib.js'

export const TARGET_BATCH_RATE = 10_000

export async function runBatch(opts = {}) {
  const n = opts.batches ?? 20
  const log = opts.log ?? console.log
  const d = await Daemon.start(await initHome('spl-bench-batch-'))
  const records = (k) =>
    Array.from({ length: 1000 }, (_, i) => ({
      act: 'KNOW',
      thread: 'th_bench_batch',
      body: { n: k * 1000 + i, text: `record ${k * 1000 + i} `.padEnd(400, '·') },
    }))
  // One warm-up batch (JIT, the first transaction), not counted.
  await d.post('/v1/records/batch', { records: records(n) })
  const t0 = performance.now()
  for (let k = 0; k < n; k++) {
    const r = await d.post('/v1/records/batch', { records: records(k) })
    if (r.created !== 1000) throw new Error(`batch ${k}: ${JSON.stringify(r).slice(0, 300)}`)
  }
  const s = (performance.now() - t0) / 1000
  const rate = (n * 1000) / s
  log(`  ${fmtInt(n * 1000)} records in ${n} batches: ${fmt1(s)} s = ${fmtInt(rate)} records/s`)
  return { rate, records: n * 1000, seconds: s }
}

if (isMain(import.meta.url)) await withCleanup(() => runBatch())
