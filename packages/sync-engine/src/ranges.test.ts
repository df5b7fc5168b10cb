import crypto from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { answerRange, askFor, foldAnswers, type RangeAsk, rangeAskSchema } from './ranges.js'

const id = () => crypto.randomBytes(32).toString('hex')
const sorted = (xs: string[]) => [...xs].sort()

/** Runs the puller's rounds against a source in memory; returns the differences and what went over the wire. */
function reconcile(puller: string[], source: string[]) {
  const found = { pullerLacks: [] as string[], sourceLacks: [] as string[] }
  let ranges = [{ lower: '', upper: null as string | null }]
  let rounds = 0
  let bytes = 0
  while (ranges.length > 0) {
    rounds++
    const asks: RangeAsk[] = ranges.map((r) => askFor(puller, r.lower, r.upper))
    for (const a of asks) expect(rangeAskSchema.safeParse(a).success).toBe(true)
    const answers = asks.map((a) => answerRange(source, a))
    bytes += JSON.stringify(asks).length + JSON.stringify(answers).length
    ranges = foldAnswers(puller, answers, found)
    expect(rounds).toBeLessThan(30)
  }
  return { ...found, rounds, bytes }
}

describe('range-based set reconciliation', () => {
  it('finds exactly what each side lacks, for sets small and large', () => {
    for (const [shared, onlyP, onlyS] of [
      [0, 0, 0],
      [10, 0, 3],
      [1000, 0, 0],
      [20_000, 10, 0],
      [20_000, 0, 10],
      [20_000, 7, 13],
      [5, 200, 300],
    ] as const) {
      const common = Array.from({ length: shared }, id)
      const p = Array.from({ length: onlyP }, id)
      const s = Array.from({ length: onlyS }, id)
      const r = reconcile(sorted([...common, ...p]), sorted([...common, ...s]))
      expect(sorted(r.pullerLacks)).toEqual(sorted(s))
      expect(sorted(r.sourceLacks)).toEqual(sorted(p))
    }
  })

  it('sends a small fraction of the set for a few differences (cost grows with the differences)', () => {
    const common = sorted(Array.from({ length: 100_000 }, id))
    const missing = new Set(common.filter((_, i) => i % 10_000 === 7))
    const r = reconcile(
      common.filter((x) => !missing.has(x)),
      common,
    )
    expect(r.pullerLacks.length).toBe(10)
    // The ids alone are 6.4 MB; ten differences cost well under 1 % of that.
    expect(r.bytes).toBeLessThan(64_000)
    const same = reconcile(common, common)
    expect(same.rounds).toBe(1)
    expect(same.bytes).toBeLessThan(500)
  })

  it('refuses malformed ranges', () => {
    for (const bad of [
      { lower: 'x', upper: null, ids: [] },
      { lower: '', upper: null },
      { lower: '', upper: null, ids: [], fp: '0'.repeat(32), count: 1 },
      { lower: 'f'.repeat(64), upper: 'a'.repeat(64), ids: [] },
      { lower: '', upper: null, count: -1, fp: '0'.repeat(32) },
      { lower: '', upper: null, ids: ['zz'] },
    ]) {
      expect(rangeAskSchema.safeParse(bad).success).toBe(false)
    }
  })
})
