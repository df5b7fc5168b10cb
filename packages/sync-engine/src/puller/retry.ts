import { PullError } from '@spl/transport'
import type { Pair } from '../pair.js'
import { RETRYABLE_REJECTIONS } from '../stores.js'
import { ingestDelivered, type PullContext } from './pull-loop.js'

/** What a retry of rejected records did. */
export interface RetryResult {
  pairs: number
  asked: number
  stored: number
  rejected: number
}

/**
 * Takes in again what was rejected for a cause fixed on this side since (SPEC 7.2: a namespace
 * now created here): for each pair with such rejections, the records are asked of the source by
 * id (its reconcile door, filtered as its feed filters) and go through the pair's ingest; what
 * still fails is rejected again, with its reason. The cursor does not move.
 */
export async function retryRejected(ctx: PullContext, pairs: readonly Pair[]): Promise<RetryResult> {
  const out = { pairs: 0, asked: 0, stored: 0, rejected: 0 }
  const reconcile = ctx.c.transport.reconcile?.bind(ctx.c.transport)
  if (!reconcile) return out
  for (const pair of pairs) {
    if (pair.state === 'stopped' || pair.state === 'paused') continue
    if (!pair.totals.rejected['NAMESPACE_REJECTED']) continue
    const waiting = (await ctx.c.pairs.listRejections(pair.pair_id, 1000)).filter(
      (r) => RETRYABLE_REJECTIONS.has(r.code) && r.record_id !== null,
    )
    const ids = [...new Set(waiting.map((r) => r.record_id!))]
    if (ids.length === 0) continue
    out.pairs++
    try {
      for (let i = 0; i < ids.length; i += 200) {
        const want = ids.slice(i, i + 200)
        const a = await reconcile({
          peerUrl: pair.peer_url,
          peerDid: pair.peer_did,
          bearer: ctx.c.credentials?.(pair.peer_did) ?? null,
          body: {
            thread: pair.thread_id,
            target_namespace: ctx.c.targetNamespaceFor?.(pair.peer_did) ?? ctx.o.targetNamespace,
            want,
          },
        })
        const records = (a.json as { records?: unknown[] }).records
        if (!Array.isArray(records)) throw new PullError('PARSE_ERROR', 'the source answered a records request of another shape')
        // The old entries go; a record that still fails is logged again by the ingest below.
        await ctx.c.pairs.dropRejections(pair.pair_id, 'NAMESPACE_REJECTED', want)
        const r = await ingestDelivered(ctx, pair.pair_id, records, ctx.c.leases?.holds(pair.pair_id) ?? true)
        out.asked += want.length
        out.stored += r.stored
        out.rejected += r.rejected
      }
      ctx.c.logger.info(
        { pair_id: pair.pair_id, asked: ids.length, stored: out.stored },
        'took in records rejected before, now that their cause is fixed',
      )
    } catch (err) {
      ctx.c.logger.warn({ err, pair_id: pair.pair_id }, 'could not take in the records rejected before')
    }
  }
  return out
}
