import { api } from './api.js'
import { empty, every, fill, h, heading, region, table } from './dom.js'

const KIND = { stalled: 'Stalled', lagging: 'Lagging', rejecting: 'Rejecting' }
const WHAT = {
  stalled: 'kick the pair, then look at its last error',
  lagging: 'look at the pair’s rate and the peer’s load',
  rejecting: 'see the rejected records by code on the pair’s page',
}

/** Health: drift alerts, the mesh's figures, and the daemon's own checks (doctor). */
export function health(main) {
  const errors = h('div')
  const alerts = region((list) =>
    list.length === 0
      ? empty('No drift alerts: no pair is stalled, lagging over 60 s or rejecting records.', null)
      : table(
          'Drift alerts',
          ['Pair', 'Alert', 'Detail', 'What to do'],
          list.map((a) => [
            h('a', { href: `#/pair/${a.pair_id}` }, a.pair_id.slice(0, 8)),
            h('strong', {}, KIND[a.kind] ?? a.kind),
            a.detail,
            WHAT[a.kind] ?? '-',
          ]),
        ),
  )
  const figures = region((hl) =>
    table(
      'The mesh at a glance',
      ['Pairs', 'Running', 'Paused', 'Failing', 'Pulled last minute', 'Pulled last hour', 'p50 latency', 'p95 latency'],
      [
        [
          hl.pairs_total,
          hl.pairs_by_state.running ?? 0,
          hl.pairs_by_state.paused ?? 0,
          hl.pairs_by_state.failing ?? 0,
          hl.records_pulled_last_minute,
          hl.records_pulled_last_hour,
          hl.p50_delivery_latency_ms === null ? '-' : `${hl.p50_delivery_latency_ms} ms`,
          hl.p95_delivery_latency_ms === null ? '-' : `${hl.p95_delivery_latency_ms} ms`,
        ],
      ],
    ),
  )
  const checks = region((list) =>
    table(
      'Checks of this daemon (spl doctor, daemon side)',
      ['Check', 'Status', 'Message', 'Fix'],
      list.map((c) => [c.name, h('span', { class: `state state-${c.status}` }, c.status), c.message, c.fix ?? '-']),
    ),
  )
  fill(
    main,
    heading('Health', 'Drift alerts (SPEC 5.1) and the daemon’s checks.'),
    errors,
    h('h2', {}, 'Drift alerts'),
    alerts.el,
    h('h2', {}, 'Figures'),
    figures.el,
    h('h2', {}, 'Checks'),
    checks.el,
  )
  const stopFast = every(
    2000,
    async () => {
      const hl = await api('GET', '/v1/sync/health')
      alerts.update(hl.drift_alerts)
      figures.update(hl)
    },
    errors,
  )
  const stopSlow = every(15_000, async () => checks.update((await api('GET', '/v1/doctor')).checks), errors)
  return () => {
    stopFast()
    stopSlow()
  }
}
