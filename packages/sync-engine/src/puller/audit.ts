import { PullError, type ReconcileAnswer, type ReconcileRequest } from '@spl/transport'
import type { Pair } from '../pair.js'
import { askFor, foldAnswers, MAX_RANGE_IDS, MAX_RANGES, type RangeAnswer } from '../ranges.js'
import type { PullContext } from './pull-loop.js'
import { ingestDelivered } from './pull-loop.js'

/** What an audit found (SPEC 13): only ids the caller may see are ever named. */
export interface AuditReport {
  object: 'audit'
  pair_id: string
  peer_did: string
  thread_id: string
  /** Records the source would serve this instance that it does not hold. */
  puller_lacks: string[]
  /** Records this instance holds in the thread that the source does not serve it (its own, or from elsewhere). */
  source_lacks: string[]
  rounds: number
  requests: number
  bytes_sent: number
  bytes_received: number
  ms: number
  at: number
  /** With heal: what pulling the missing records did. */
  healed: { requested: number; received: number; stored: number; duplicates: number; rejected: number } | null
}

/** Reconcile rounds before an audit gives up (a round at least halves what differs by 16). */
const MAX_ROUNDS = 24

/** Where an audit sends its requests (PeerClient fits). */
export type ReconcileFn = (req: ReconcileRequest) => Promise<ReconcileAnswer>

/**
 * Reconciles the ids this instance holds for the pair's thread with the ids the source would
 * serve it; with `heal`, asks the source for what is missing and stores it as a page of the
 * pair's pull would be (checks, plan, counters; the cursor does not move).
 */
export async function auditPair(
  ctx: PullContext,
  pair: Pair,
  deps: { reconcile: ReconcileFn; threadIds: (thread: string) => Promise<string[]> },
  heal: boolean,
): Promise<AuditReport> {
  const t0 = ctx.c.clock.now()
  const mine = await deps.threadIds(pair.thread_id)
  const found = { pullerLacks: [] as string[], sourceLacks: [] as string[] }
  const base = {
    peerUrl: pair.peer_url,
    peerDid: pair.peer_did,
    bearer: ctx.c.credentials?.(pair.peer_did) ?? null,
  }
  const targetNamespace = ctx.c.targetNamespaceFor?.(pair.peer_did) ?? ctx.o.targetNamespace
  let sent = 0
  let received = 0
  let requests = 0
  let rounds = 0
  let todo: { lower: string; upper: string | null }[] = [{ lower: '', upper: null }]
  while (todo.length > 0) {
    if (++rounds > MAX_ROUNDS) throw new PullError('PARSE_ERROR', `the source kept answering differences after ${MAX_ROUNDS} rounds`)
    const answers: RangeAnswer[] = []
    // One round may take several requests (at most MAX_RANGES ranges and MAX_RANGE_IDS ids each).
    let batch: ReturnType<typeof askFor>[] = []
    let batchIds = 0
    const flush = async () => {
      if (batch.length === 0) return
      const a = await deps.reconcile({ ...base, body: { thread: pair.thread_id, target_namespace: targetNamespace, ranges: batch } })
      requests++
      sent += a.bytesSent
      received += a.bytesReceived
      const got = (a.json as { ranges?: RangeAnswer[] }).ranges
      if (!Array.isArray(got) || got.length !== batch.length)
        throw new PullError('PARSE_ERROR', 'the source answered a reconcile round of another shape')
      answers.push(...got)
      batch = []
      batchIds = 0
    }
    for (const r of todo) {
      const ask = askFor(mine, r.lower, r.upper)
      const n = ask.ids?.length ?? 0
      if (batch.length >= MAX_RANGES || batchIds + n > MAX_RANGE_IDS) await flush()
      batch.push(ask)
      batchIds += n
    }
    await flush()
    todo = foldAnswers(mine, answers, found)
  }
  let healed: AuditReport['healed'] = null
  if (heal && found.pullerLacks.length > 0) {
    healed = { requested: found.pullerLacks.length, received: 0, stored: 0, duplicates: 0, rejected: 0 }
    for (let i = 0; i < found.pullerLacks.length; i += 200) {
      const want = found.pullerLacks.slice(i, i + 200)
      const a = await deps.reconcile({ ...base, body: { thread: pair.thread_id, target_namespace: targetNamespace, want } })
      requests++
      sent += a.bytesSent
      received += a.bytesReceived
      const records = (a.json as { records?: unknown[] }).records
      if (!Array.isArray(records)) throw new PullError('PARSE_ERROR', 'the source answered a records request of another shape')
      const r = await ingestDelivered(ctx, pair.pair_id, records, ctx.c.leases?.holds(pair.pair_id) ?? true)
      healed.received += r.received
      healed.stored += r.stored
      healed.duplicates += r.duplicates
      healed.rejected += r.rejected
    }
  }
  return {
    object: 'audit',
    pair_id: pair.pair_id,
    peer_did: pair.peer_did,
    thread_id: pair.thread_id,
    puller_lacks: found.pullerLacks.sort(),
    source_lacks: found.sourceLacks.sort(),
    rounds,
    requests,
    bytes_sent: sent,
    bytes_received: received,
    ms: ctx.c.clock.now() - t0,
    at: t0,
    healed,
  }
}
