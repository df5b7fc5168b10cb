import { type Candidate, type Checked, isDuplicate, type KnownId, type Rejection } from '@spl/records'
import type { ChangesPage } from '@spl/transport'
import type { Pair } from '../pair.js'

/** A page once checked: its raw records are dropped (the checks hold what is needed, in order). */
export type PageHead = Omit<ChangesPage, 'records'>

/** A page's checked records sorted before the commit. */
export interface ClassifiedPage {
  /** Verified, not held yet, namespace usable: for the sink. */
  accepted: Candidate[]
  rejected: Rejection[]
  /** Records held already (known before the commit). */
  duplicates: number
}

/** Sorts checked records into accepted, rejected and already held ones. */
export function classifyPage(
  checked: readonly Checked[],
  known: ReadonlyMap<string, KnownId>,
  namespaceGate: (record: Candidate['record']) => string | null,
): ClassifiedPage {
  const rejected: Rejection[] = []
  const accepted: Candidate[] = []
  let duplicates = 0
  for (const c of checked) {
    if (!c.ok) {
      // A stored record's copy whose signature fails is still the record we have: a duplicate.
      if (c.code === 'SIGNATURE_INVALID' && c.id !== null && known.get(c.id)?.redacted === false) duplicates++
      else rejected.push(c)
      continue
    }
    if (isDuplicate(known.get(c.id), c.redacted)) {
      duplicates++
      continue
    }
    const bad = c.redacted ? null : namespaceGate(c.record)
    if (bad !== null) {
      rejected.push({
        ok: false,
        code: 'NAMESPACE_REJECTED',
        message: `NAMESPACE_REJECTED: ancestor '${bad}' is not Active in the registry. Fix: spl namespace create ${bad}`,
        id: c.id,
      })
      continue
    }
    accepted.push(c)
  }
  return { accepted, rejected, duplicates }
}

/** The pair after a page, before the sink folds in what storing found. */
export function pairAfterPage(pair: Pair, page: PageHead, received: number, classified: ClassifiedPage, now: number): Pair {
  const totals = structuredClone(pair.totals)
  totals.pulls++
  totals.records_received += received
  totals.bytes_received += page.bytes
  totals.duplicates += classified.duplicates
  if (page.cursor_reset) totals.cursor_resets++
  for (const r of classified.rejected) totals.rejected[r.code] = (totals.rejected[r.code] ?? 0) + 1
  return {
    ...pair,
    cursor: page.next_cursor,
    state: 'running',
    last_error: null,
    updated_at: now,
    last_success_at: now,
    caught_up_at: page.has_more ? pair.caught_up_at : now,
    totals,
  }
}

/** The id an envelope claims, if it has one (before anything about it is checked). */
export function claimedId(raw: unknown): string | null {
  const id = raw !== null && typeof raw === 'object' ? (raw as { id?: unknown }).id : undefined
  return typeof id === 'string' && id.length === 64 ? id : null
}
