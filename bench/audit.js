// Audit cost (SPEC 13): range-based set reconciliation of one thread's ids, puller against
// source, for 0, 10 and 1,000 differences on 100,000 and 1,000,000 records. In process: the
// reconcile door's algorithm (packages/sync-engine ranges.js, what both ends run) with the
// JSON bodies each round would carry, without HTTP or SQLite (apps/cli/test/audit.e2e.test.ts
// prints the figure of real daemons on 100,000 records). Thread bytes: ~500 B per record.
//
//   node bench/audit.js            (after `pnpm build`)
import crypto from 'node:crypto'
import { dist, fmt1, fmt2, fmtInt, isMain, table } from './lib.js'

const RECORD_BYTES = 500

export async function runAudit(opts = {}) {
  const log = opts.log ?? console.log
  const { answerRange, askFor, foldAnswers } = await dist('packages/sync-engine/dist/ranges.js')
  const results = []
  for (const n of opts.sizes ?? [100_000, 1_000_000]) {
    const source = Array.from({ length: n }, () => crypto.randomBytes(32).toString('hex')).sort()
    for (const diffs of [0, 10, 1000]) {
      const step = Math.floor(n / Math.max(1, diffs))
      const missing = new Set()
      for (let i = 0; i < diffs; i++) missing.add(source[i * step + 3])
      const puller = diffs ? source.filter((x) => !missing.has(x)) : source
      const t0 = performance.now()
      const found = { pullerLacks: [], sourceLacks: [] }
      let ranges = [{ lower: '', upper: null }]
      let rounds = 0
      let sent = 0
      let received = 0
      while (ranges.length > 0) {
        rounds++
        const asks = ranges.map((r) => askFor(puller, r.lower, r.upper))
        const answers = asks.map((a) => answerRange(source, a))
        sent += JSON.stringify({ thread: 'th_bench', ranges: asks }).length
        received += JSON.stringify({ object: 'reconcile', thread: 'th_bench', ranges: answers }).length
        ranges = foldAnswers(puller, answers, found)
      }
      const ms = performance.now() - t0
      if (found.pullerLacks.length !== diffs) throw new Error(`found ${found.pullerLacks.length} of ${diffs} differences`)
      const bytes = sent + received
      const share = (100 * bytes) / (n * RECORD_BYTES)
      results.push({ n, diffs, rounds, bytes, ms, share })
      log(
        `  ${fmtInt(n)} records, ${fmtInt(diffs)} differences: ${rounds} rounds, ${fmtInt(bytes)} B (${fmt2(share)} % of the thread), ${fmt1(ms)} ms`,
      )
    }
  }
  return results
}

if (isMain(import.meta.url)) {
  const r = await runAudit()
  console.log(
    table([
      ['records', 'differences', 'rounds', 'bytes', '% of thread', 'ms'],
      ...r.map((x) => [fmtInt(x.n), fmtInt(x.diffs), String(x.rounds), fmtInt(x.bytes), fmt2(x.share), fmt1(x.ms)]),
    ]),
  )
}
