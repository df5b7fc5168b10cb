import { api } from './api.js'
import { barChart } from './charts.js'
import { actionButton, didCell, empty, every, fill, h, heading, region, say, table, when } from './dom.js'

function latencyLabel(le) {
  if (le === null) return '>10s'
  return le >= 1000 ? `≤${le / 1000}s` : `≤${le}`
}

/** Pair detail: state, charts of the last hour, counters, rejections, and the pair's actions. */
export function pair(main, id) {
  if (!id) {
    location.hash = '#/mesh'
    return undefined
  }
  const errors = h('div')
  const actionErrors = h('div')
  const info = region((p) =>
    h(
      'dl',
      { class: 'facts' },
      h('dt', {}, 'State'),
      h('dd', {}, h('span', { class: `state state-${p.state}`, id: 'pair-state' }, p.state)),
      h('dt', {}, 'Peer'),
      h('dd', {}, didCell(p.peer_did), ' ', h('span', { class: 'muted' }, p.peer_url)),
      h('dt', {}, 'Thread'),
      h('dd', {}, h('code', {}, p.thread_id)),
      h('dt', {}, 'Mode'),
      h('dd', {}, p.poll_only ? `poll (the peer does not long-poll), every ${p.poll_interval_ms} ms` : p.mode),
      h('dt', {}, 'Cursor'),
      h('dd', {}, h('code', {}, p.cursor ?? '(start)')),
      h('dt', {}, 'Last error'),
      h(
        'dd',
        {},
        p.last_error
          ? h(
              'span',
              {},
              h('strong', {}, p.last_error.code),
              `: ${p.last_error.message} (`,
              when(p.last_error.at),
              ')',
              p.fix ? h('div', { class: 'fix' }, 'Fix: ', p.fix) : null,
            )
          : 'none',
      ),
      p.state === 'failing'
        ? [h('dt', {}, 'Retry'), h('dd', {}, `attempt ${p.attempt}, backoff ${p.backoff_ms} ms, next `, when(p.next_attempt_at))]
        : null,
    ),
  )
  const counters = region((s) =>
    table(
      'Counters (totals since the pair was made; rate and errors over the last hour)',
      [
        'Pulls',
        'Received',
        'Stored',
        'Duplicates',
        'Cursor resets',
        'Stored last hour',
        'Errors last hour',
        'p50 latency',
        'p95 latency',
        'Lag',
      ],
      [
        [
          s.totals.pulls,
          s.totals.records_received,
          s.totals.records_stored,
          s.totals.duplicates,
          s.totals.cursor_resets,
          s.rate_per_hour,
          s.errors_last_hour,
          s.latency_ms.p50 === null ? '-' : `${s.latency_ms.p50} ms`,
          s.latency_ms.p95 === null ? '-' : `${s.latency_ms.p95} ms`,
          `${s.lag_seconds ?? 0} s`,
        ],
      ],
    ),
  )
  const charts = region((hist) => {
    const perMin = hist.stored_per_minute
    const total = perMin.reduce((a, b) => a + b.stored, 0)
    const buckets = hist.latency_ms.buckets
    return h(
      'div',
      { class: 'charts' },
      h(
        'figure',
        {},
        barChart({
          title: 'Records stored per minute, last hour',
          summary: `${total} records in the last hour; the last minute ${perMin.at(-1)?.stored ?? 0}.`,
          bars: perMin.map((m, i) => ({ label: i === 59 ? 'now' : `-${60 - i}m`, value: m.stored })),
          labelEvery: 10,
        }),
        h('figcaption', {}, `Rate: records stored per minute over the last hour (${total} in all).`),
      ),
      h(
        'figure',
        {},
        barChart({
          title: 'Delivery latency, last hour (ms)',
          summary: `${hist.latency_ms.samples} samples.`,
          bars: buckets.map((b) => ({ label: latencyLabel(b.le), value: b.count })),
        }),
        h('figcaption', {}, `Latency histogram: records by delivery latency in ms, last hour (${hist.latency_ms.samples} samples).`),
      ),
    )
  })
  const rejections = region((r) => {
    const codes = Object.entries(r.totals ?? {}).filter(([, n]) => n > 0)
    return h(
      'div',
      {},
      codes.length
        ? table(
            'Rejected records by code (totals)',
            ['Code', 'Count'],
            codes.map(([c, n]) => [h('strong', {}, c), n]),
          )
        : empty('No record of this pair was rejected.', null),
      r.data.length
        ? table(
            'Most recent rejections',
            ['When', 'Code', 'Record', 'Why'],
            r.data.slice(0, 50).map((e) => [when(e.at), h('strong', {}, e.code), h('code', {}, e.record_id ?? '-'), e.message]),
          )
        : null,
    )
  })
  const refresh = async () => {
    const [p, s, m] = await Promise.all([
      api('GET', `/v1/sync/pairs/${encodeURIComponent(id)}`),
      api('GET', `/v1/sync/pairs/${encodeURIComponent(id)}/stats`),
      api('GET', '/v1/sync/mesh'),
    ])
    // The mesh line carries the fix of the last error.
    const line = m.pulls.find((l) => l.pair_id === p.pair_id)
    info.update({ ...p, fix: line?.last_error?.fix ?? null })
    counters.update(s)
    return p
  }
  const act = (action, label) =>
    actionButton(
      label,
      async () => {
        const p = await api('POST', `/v1/sync/pairs/${encodeURIComponent(id)}/${action}`)
        say(`pair ${p.pair_id.slice(0, 8)}: ${action} done, now ${p.state}`)
        await refresh()
      },
      {
        where: actionErrors,
        danger: action === 'reset',
        confirmText:
          action === 'reset' ? 'Move this pair’s cursor back to the start? It pulls everything again (duplicates are no-ops).' : null,
      },
    )
  const remove = actionButton(
    'Remove',
    async () => {
      const p = await api('DELETE', `/v1/sync/pairs/${encodeURIComponent(id)}`)
      say(`pair ${p.pair_id.slice(0, 8)} removed`)
      location.hash = '#/mesh'
    },
    { where: actionErrors, danger: true, confirmText: 'Stop and remove this pair? Its records stay.' },
  )
  fill(
    main,
    heading(`Pair ${id.slice(0, 8)}`),
    errors,
    info.el,
    h(
      'div',
      { class: 'actions', role: 'group', 'aria-label': 'Pair actions' },
      act('pause', 'Pause'),
      act('resume', 'Resume'),
      act('kick', 'Kick (pull now)'),
      act('reset', 'Reset cursor'),
      remove,
    ),
    actionErrors,
    h('h2', {}, 'Last hour'),
    charts.el,
    h('h2', {}, 'Counters'),
    counters.el,
    h('h2', {}, 'Rejections'),
    rejections.el,
  )
  const stopFast = every(1000, refresh, errors)
  const stopSlow = every(
    5000,
    async () => {
      const [hist, rej] = await Promise.all([
        api('GET', `/v1/sync/pairs/${encodeURIComponent(id)}/history`),
        api('GET', `/v1/sync/pairs/${encodeURIComponent(id)}/rejections`),
      ])
      charts.update({ ...hist, at: 0 })
      rejections.update(rej)
    },
    null,
  )
  return () => {
    stopFast()
    stopSlow()
  }
}
