import crypto from 'node:crypto'
import { z } from 'zod'

/**
 * Range-based set reconciliation of record ids (SPEC 13; the idea of Negentropy / NIP-77): both
 * sides sort the ids of one thread; the puller sends a fingerprint of a range, the source answers
 * `same`, or the ids it holds there when few, or the range split in parts with their
 * fingerprints; the puller recurses into the parts that differ. Cost grows with the number of
 * differences (≈ log16 of the thread per difference), not with the thread.
 *
 * A range is [lower, upper): `lower` a hex bound (or "" for the start), `upper` one or null for
 * the end; a bound between two parts is the shortest prefix of the first id of the upper part
 * that is above the last id of the lower one. A fingerprint is the first 16 bytes of SHA-256 over the 32-byte ids of the range in
 * order, hex; with the count it names a set with overwhelming certainty.
 */

/** A range small enough is sent as its ids instead of a fingerprint. */
export const LEAF_IDS = 32
/** A source range that differs is split in this many parts. */
export const SPLIT_PARTS = 16
/** At most this many ranges per reconcile request, and ids over all of them. */
export const MAX_RANGES = 512
export const MAX_RANGE_IDS = 8192

const idHex = z.string().regex(/^[0-9a-f]{64}$/, 'a record id (64 hex)')
/** A bound is a hex prefix (the shortest one that falls between two neighbouring ids), "" for the start. */
const hexBound = z.string().regex(/^[0-9a-f]{1,64}$/, 'a hex bound (1 to 64 hex)')
const bound = z.union([z.literal(''), hexBound])

/** What the puller asks of one range: its fingerprint and count, or (when few) its ids. */
export const rangeAskSchema = z
  .object({
    lower: bound,
    upper: hexBound.nullable(),
    count: z.number().int().min(0).optional(),
    fp: z
      .string()
      .regex(/^[0-9a-f]{32}$/)
      .optional(),
    ids: z.array(idHex).max(MAX_RANGE_IDS).optional(),
  })
  .strict()
  .refine((r) => (r.ids !== undefined) !== (r.fp !== undefined && r.count !== undefined), 'a range carries ids, or count and fp')
  .refine((r) => r.upper === null || r.lower < r.upper, 'lower must be below upper')
export type RangeAsk = z.output<typeof rangeAskSchema>

export interface RangePart {
  lower: string
  upper: string | null
  count: number
  fp: string
}

/** The source's answer for one range. `diff` answers a range the puller sent as ids. */
export type RangeAnswer =
  | { lower: string; upper: string | null; result: 'same' }
  | { lower: string; upper: string | null; result: 'ids'; ids: string[] }
  | { lower: string; upper: string | null; result: 'diff'; puller_lacks: string[]; source_lacks: string[] }
  | { lower: string; upper: string | null; result: 'split'; parts: RangePart[] }

/** First index of `ids` (sorted) that is ≥ `key` ("" → 0). */
function lowerIndex(ids: readonly string[], key: string): number {
  let lo = 0
  let hi = ids.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (ids[mid]! < key) lo = mid + 1
    else hi = mid
  }
  return lo
}

/** The slice [from, to) of sorted `ids` that falls in [lower, upper). */
export function rangeIndexes(ids: readonly string[], lower: string, upper: string | null): [number, number] {
  return [lower === '' ? 0 : lowerIndex(ids, lower), upper === null ? ids.length : lowerIndex(ids, upper)]
}

/** The fingerprint of ids[from, to). */
export function fingerprint(ids: readonly string[], from: number, to: number): string {
  const h = crypto.createHash('sha256')
  for (let i = from; i < to; i++) h.update(Buffer.from(ids[i]!, 'hex'))
  return h.digest('hex').slice(0, 32)
}

/** The shortest prefix of `hi` that is above `lo` (lo < hi): a bound between them. */
function between(lo: string, hi: string): string {
  let i = 0
  while (i < hi.length && lo[i] === hi[i]) i++
  return hi.slice(0, i + 1)
}

/** What a source holding sorted `ids` answers for `ask`. */
export function answerRange(ids: readonly string[], ask: RangeAsk): RangeAnswer {
  const { lower, upper } = ask
  const [from, to] = rangeIndexes(ids, lower, upper)
  const n = to - from
  if (ask.ids !== undefined) {
    if (n <= MAX_RANGE_IDS / 4) {
      const theirs = new Set(ask.ids)
      const mine = ids.slice(from, to)
      const mineSet = new Set(mine)
      const puller_lacks = mine.filter((id) => !theirs.has(id))
      const source_lacks = ask.ids.filter((id) => !mineSet.has(id) && id >= lower && (upper === null || id < upper))
      if (puller_lacks.length === 0 && source_lacks.length === 0) return { lower, upper, result: 'same' }
      return { lower, upper, result: 'diff', puller_lacks, source_lacks }
    }
  } else if (n === ask.count && fingerprint(ids, from, to) === ask.fp) return { lower, upper, result: 'same' }
  if (n <= LEAF_IDS) return { lower, upper, result: 'ids', ids: ids.slice(from, to) }
  const parts: RangePart[] = []
  for (let k = 0; k < SPLIT_PARTS; k++) {
    const a = from + Math.floor((k * n) / SPLIT_PARTS)
    const b = from + Math.floor(((k + 1) * n) / SPLIT_PARTS)
    parts.push({
      lower: k === 0 ? lower : between(ids[a - 1]!, ids[a]!),
      upper: k === SPLIT_PARTS - 1 ? upper : between(ids[b - 1]!, ids[b]!),
      count: b - a,
      fp: fingerprint(ids, a, b),
    })
  }
  return { lower, upper, result: 'split', parts }
}

/** What the puller sends for [lower, upper) of its own sorted `ids`. */
export function askFor(ids: readonly string[], lower: string, upper: string | null): RangeAsk {
  const [from, to] = rangeIndexes(ids, lower, upper)
  if (to - from <= LEAF_IDS) return { lower, upper, ids: ids.slice(from, to) }
  return { lower, upper, count: to - from, fp: fingerprint(ids, from, to) }
}

/** Folds the source's answers into the differences found and the ranges still to look at. */
export function foldAnswers(
  ids: readonly string[],
  answers: readonly RangeAnswer[],
  found: { pullerLacks: string[]; sourceLacks: string[] },
): { lower: string; upper: string | null }[] {
  const next: { lower: string; upper: string | null }[] = []
  for (const a of answers) {
    if (a.result === 'same') continue
    if (a.result === 'diff') {
      found.pullerLacks.push(...a.puller_lacks)
      found.sourceLacks.push(...a.source_lacks)
    } else if (a.result === 'ids') {
      const [from, to] = rangeIndexes(ids, a.lower, a.upper)
      const mine = new Set(ids.slice(from, to))
      const theirs = new Set(a.ids)
      for (const id of a.ids) if (!mine.has(id)) found.pullerLacks.push(id)
      for (const id of mine) if (!theirs.has(id)) found.sourceLacks.push(id)
    } else {
      for (const p of a.parts) {
        const [from, to] = rangeIndexes(ids, p.lower, p.upper)
        if (to - from === p.count && fingerprint(ids, from, to) === p.fp) continue
        next.push({ lower: p.lower, upper: p.upper })
      }
    }
  }
  return next
}
