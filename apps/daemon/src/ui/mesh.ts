import { LATENCY_BUCKETS, type PairView } from '@spl/sync-engine'
import { PullError, type PullErrorCode } from '@spl/transport'
import type { DaemonContext } from '../context.js'

const MINUTE = 60_000
const HOUR = 3_600_000
/** A subscriber that pulled within this long is shown as a live `→` line (as `spl status` does). */
const SUBSCRIBER_LIVE_MS = 120_000

/** What to do about a pair's last error: the pull error's fix, else where to look. */
export function fixFor(code: string, pairId: string): string {
  const known = new PullError(code as PullErrorCode, '').fix
  return known ?? `see spl fleet sync status ${pairId.slice(0, 8)} and the daemon's log`
}

function errorView(e: PairView['last_error'], pairId: string) {
  return e ? { ...e, fix: fixFor(e.code, pairId) } : null
}

/**
 * The Federation block of `spl status` as one answer (for the console's live table, asked every
 * second): the pairs this daemon pulls (`←`) and the peers pulling from it (`→`).
 */
export function meshView(ctx: DaemonContext, now = Date.now()) {
  const pulls = ctx.engine.listPairs().map((p) => {
    const m = ctx.engine.metricsOf(p.pair_id)
    return {
      direction: 'pull' as const,
      pair_id: p.pair_id,
      state: p.state,
      peer_did: p.peer_did,
      peer_url: p.peer_url,
      thread_id: p.thread_id,
      mode: p.poll_only ? 'poll' : p.mode,
      rate_per_minute: m.stored.sum(MINUTE, now),
      lag_seconds: ctx.engine.lagSeconds(p.pair_id),
      last_error: errorView(p.last_error, p.pair_id),
      notice: p.notice,
      attempt: p.attempt,
      next_attempt_at: p.next_attempt_at,
    }
  })
  const serves = ctx.subscribers
    .list()
    .filter((s) => now - s.last_pull_at < SUBSCRIBER_LIVE_MS)
    .map((s) => ({
      direction: 'serve' as const,
      state: 'running',
      peer_did: s.peer_did,
      thread_id: s.thread_id,
      rate_per_minute: s.window.sum(MINUTE, now),
      last_pull_at: s.last_pull_at,
      served: s.served,
      redacted: s.redacted,
      hidden: s.hidden,
    }))
  const links = ctx.federation.snapshot().filter((l) => l.state !== 'revoked')
  return {
    object: 'sync_mesh',
    at: now,
    did: ctx.keypair.did,
    pulls,
    serves,
    links: links.map((l) => ({ link_id: l.link_id, peer_did: l.peer_did, peer_url: l.peer_url, state: l.state, threads: l.threads })),
  }
}

/** One pair over the last hour: records stored per minute (oldest first) and the latency histogram of the hour. */
export function pairHistory(ctx: DaemonContext, pair: PairView, now = Date.now()) {
  const m = ctx.engine.metricsOf(pair.pair_id)
  const perMinute: { minute_start: number; stored: number }[] = []
  let previous = 0
  for (let k = 1; k <= 60; k++) {
    const upTo = m.stored.sum(k * MINUTE, now)
    perMinute.push({ minute_start: now - k * MINUTE, stored: upTo - previous })
    previous = upTo
  }
  perMinute.reverse()
  const recent = m.latency.recent(now)
  const buckets = [...LATENCY_BUCKETS.map((le) => ({ le: le as number | null, count: 0 })), { le: null, count: 0 }]
  for (const ms of recent) {
    let i = LATENCY_BUCKETS.findIndex((b) => ms <= b)
    if (i < 0) i = LATENCY_BUCKETS.length
    buckets[i]!.count++
  }
  return {
    object: 'sync_pair_history',
    pair_id: pair.pair_id,
    at: now,
    window_ms: HOUR,
    stored_per_minute: perMinute,
    latency_ms: { samples: recent.length, buckets },
    errors_last_hour: m.errors.sum(HOUR, now),
    rejections_last_hour: m.rejections.sum(HOUR, now),
  }
}
