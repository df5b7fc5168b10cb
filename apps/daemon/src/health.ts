import { type PairView, percentile } from '@spl/sync-engine'
import type { DaemonContext } from './context.js'

const MINUTE = 60_000
const HOUR = 3_600_000

/** SPEC 5.2: one pair's figures. */
export function pairStats(ctx: DaemonContext, pair: PairView, now = Date.now()) {
  const m = ctx.engine.metricsOf(pair.pair_id)
  const recent = m.latency.recent(now)
  return {
    object: 'sync_pair_stats',
    pair_id: pair.pair_id,
    peer_did: pair.peer_did,
    thread_id: pair.thread_id,
    state: pair.state,
    last_error: pair.last_error,
    rate_per_minute: m.stored.sum(MINUTE, now),
    rate_per_hour: m.stored.sum(HOUR, now),
    latency_ms: {
      p50: percentile(recent, 50),
      p95: percentile(recent, 95),
      max: recent.length ? recent[recent.length - 1]! : null,
      histogram: m.latency.histogram(),
    },
    errors_last_hour: m.errors.sum(HOUR, now),
    poll: {
      mode: pair.poll_only ? 'poll' : pair.mode,
      interval_ms: pair.poll_interval_ms,
      backoff_ms: pair.backoff_ms,
      attempt: pair.attempt,
      next_attempt_at: pair.next_attempt_at,
    },
    lag_seconds: ctx.engine.lagSeconds(pair.pair_id),
    totals: pair.totals,
  }
}

/** Drift alerts of one pair (SPEC 5.1). */
function driftAlerts(ctx: DaemonContext, pair: PairView, now = Date.now()) {
  const alerts: { pair_id: string; kind: 'stalled' | 'lagging' | 'rejecting' | 'diverged'; detail: string }[] = []
  if (pair.state === 'paused' || pair.state === 'stopped') return alerts
  const m = ctx.engine.metricsOf(pair.pair_id)
  const interval = pair.mode === 'longpoll' && !pair.poll_only ? 25_000 : pair.poll_interval_ms
  const since = m.lastProgressAt ?? pair.created_at
  if (m.sourceHadMore && now - since > 2 * interval) {
    alerts.push({
      pair_id: pair.pair_id,
      kind: 'stalled',
      detail: `the source has more and nothing moved for ${Math.round((now - since) / 1000)} s`,
    })
  }
  const lag = ctx.engine.lagSeconds(pair.pair_id)
  if (lag !== null && lag > 60) alerts.push({ pair_id: pair.pair_id, kind: 'lagging', detail: `lag ${lag} s` })
  const rejected = m.rejections.sum(HOUR, now)
  if (rejected > 0) {
    const codes = Object.entries(pair.totals.rejected)
      .filter(([, n]) => n > 0)
      .map(([code]) => code)
      .join(', ')
    alerts.push({
      pair_id: pair.pair_id,
      kind: 'rejecting',
      detail: `${rejected} record(s) rejected in the last hour (${codes})`,
    })
  }
  // SPEC 13: the last audit, made once the pair was caught up, found records the source serves that are not here.
  const audit = ctx.engine.lastAuditOf(pair.pair_id)
  if (audit && audit.puller_lacks > 0) {
    alerts.push({
      pair_id: pair.pair_id,
      kind: 'diverged',
      detail: `the audit of ${new Date(audit.at).toISOString()} found ${audit.puller_lacks} record(s) the source serves that are missing here; fix: spl fleet sync audit ${pair.pair_id.slice(0, 8)} --heal`,
    })
  }
  return alerts
}

/** SPEC 5.1: the mesh at a glance. */
export function syncHealth(ctx: DaemonContext, now = Date.now()) {
  const pairs = ctx.engine.listPairs({ all: true })
  const byState: Record<string, number> = { starting: 0, running: 0, paused: 0, failing: 0, stopped: 0 }
  const live = pairs.filter((p) => p.state !== 'stopped')
  for (const p of live) byState[p.state] = (byState[p.state] ?? 0) + 1
  const served = ctx.subscribers.list().filter((s) => ctx.subscribers.isLive(s, now)).length
  byState['running'] = (byState['running'] ?? 0) + served
  const all: number[] = []
  let sum = 0
  const slowest: { pair_id: string; peer_did: string; thread_id: string; p95_ms: number }[] = []
  const errored: { pair_id: string; errors_last_hour: number; last_error: unknown }[] = []
  let lastMinute = 0
  let lastHour = 0
  for (const p of live) {
    const m = ctx.engine.metricsOf(p.pair_id)
    const recent = m.latency.recent(now)
    for (const v of recent) {
      all.push(v)
      sum += v
    }
    const p95 = percentile(recent, 95)
    if (p95 !== null) slowest.push({ pair_id: p.pair_id, peer_did: p.peer_did, thread_id: p.thread_id, p95_ms: p95 })
    const errs = m.errors.sum(HOUR, now)
    if (errs > 0 || p.state === 'failing') errored.push({ pair_id: p.pair_id, errors_last_hour: errs, last_error: p.last_error })
    lastMinute += m.stored.sum(MINUTE, now)
    lastHour += m.stored.sum(HOUR, now)
  }
  all.sort((a, b) => a - b)
  const subscribers = ctx.subscribers.list().map((s) => ({
    peer_did: s.peer_did,
    thread_id: s.thread_id,
    last_pull_at: s.last_pull_at,
    live: ctx.subscribers.isLive(s, now),
    records_served_last_hour: s.window.sum(HOUR, now),
    records_served_last_minute: s.window.sum(MINUTE, now),
    served: s.served,
    redacted: s.redacted,
    hidden: s.hidden,
  }))
  const links = ctx.federation.snapshot().map((l) => ({
    link_id: l.link_id,
    peer_did: l.peer_did,
    peer_url: l.peer_url,
    state: l.state,
    threads: l.threads,
    held_token_expires_at: l.tokens.held?.expires_at ?? null,
    renewal_error: l.renewal_error,
  }))
  return {
    object: 'sync_health',
    links,
    // The mesh as `spl status` shows it (decision 87): pairs this instance pulls (removed ones
    // not counted) plus the peers pulling from it now, the latter counted as running.
    pairs_total: live.length + served,
    pairs_pulled: live.length,
    pairs_served: served,
    pairs_by_state: byState,
    records_pulled_last_minute: lastMinute,
    records_pulled_last_hour: lastHour,
    mean_delivery_latency_ms: all.length ? Math.round((sum / all.length) * 10) / 10 : null,
    p50_delivery_latency_ms: percentile(all, 50),
    p95_delivery_latency_ms: percentile(all, 95),
    slowest_pairs: slowest.sort((a, b) => b.p95_ms - a.p95_ms).slice(0, 5),
    most_errored_pairs: errored.sort((a, b) => b.errors_last_hour - a.errors_last_hour).slice(0, 5),
    drift_alerts: live.flatMap((p) => driftAlerts(ctx, p, now)),
    subscribers,
    // On PostgreSQL: which replica of the identity answered, and whether it hears the others.
    // The name it holds pair leases under (one per process) and how many pairs it pulls.
    ...(ctx.replicas
      ? {
          replica: {
            id: ctx.replicas.id,
            listening: ctx.replicas.bus.connected,
            lease_holder: ctx.engine.replica?.id ?? null,
            pairs_held: ctx.engine.replica?.pairs_held ?? 0,
          },
        }
      : {}),
  }
}
