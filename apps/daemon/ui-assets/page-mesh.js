import { api } from './api.js'
import { cmd, didCell, empty, every, fill, h, heading } from './dom.js'

const COLUMNS = ['State', 'Direction', 'Peer', 'Thread', 'Rate', 'Lag', 'Last error', 'Pair']

function keyOf(row) {
  return row.direction === 'pull' ? `pull:${row.pair_id}` : `serve:${row.peer_did}:${row.thread_id}`
}

/** The cells of one line of the Federation table, as [text key, node] so that unchanged cells stay. */
function cells(row) {
  const err = row.last_error
  return [
    [row.state, h('span', { class: `state state-${row.state}` }, row.state)],
    [row.direction, row.direction === 'pull' ? '← pulls from' : '→ serves to'],
    [
      row.peer_did + (row.peer_url ?? ''),
      h('span', {}, didCell(row.peer_did), row.peer_url ? h('span', { class: 'muted url' }, ` ${row.peer_url}`) : null),
    ],
    [row.thread_id, h('code', {}, row.thread_id)],
    [String(row.rate_per_minute), `${row.rate_per_minute} rec/min`],
    [String(row.lag_seconds), row.direction === 'pull' ? `${row.lag_seconds ?? 0} s` : '-'],
    [
      err ? `${err.code}${err.message}` : row.notice ? row.notice.code : '',
      err
        ? h('div', { class: 'err-cell' }, h('strong', {}, err.code), `: ${err.message}`, h('div', { class: 'fix' }, 'Fix: ', err.fix))
        : row.notice
          ? h('span', { class: 'muted' }, `${row.notice.code}: ${row.notice.message}`)
          : h('span', { class: 'muted' }, 'none'),
    ],
    [
      row.pair_id ?? '',
      row.pair_id
        ? h(
            'a',
            { href: `#/pair/${encodeURIComponent(row.pair_id)}`, 'aria-label': `Details of pair ${row.pair_id}` },
            row.pair_id.slice(0, 8),
          )
        : h('span', { class: 'muted', title: 'the peer pulls from this daemon: its pair is on the peer' }, 'on the peer'),
    ],
  ]
}

/** Mesh: the Federation block as a live table, asked every second. */
export function mesh(main) {
  const errors = h('div')
  const summary = h('p', { class: 'summary', 'aria-live': 'off' })
  const tbody = h('tbody')
  const tableWrap = h(
    'div',
    { class: 'scroll' },
    h(
      'table',
      { id: 'mesh-table', class: 'stack' },
      h('caption', {}, 'Pairs this daemon pulls (←) and peers pulling from it (→)'),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          COLUMNS.map((c) => h('th', { scope: 'col' }, c)),
        ),
      ),
      tbody,
    ),
  )
  const none = empty(
    'No pairs yet: nothing is pulled from a peer, and no peer pulled from this daemon in the last two minutes.',
    h(
      'span',
      {},
      'Pair with a peer on the ',
      h('a', { href: '#/peers' }, 'Peers'),
      ' page or with ',
      cmd('spl federation pair <peer-url> --thread th_…'),
      '; a peer that asks to pair with this daemon waits under ',
      h('a', { href: '#/requests' }, 'Requests'),
      '.',
    ),
  )
  fill(main, heading('Mesh', 'Updated every second.'), summary, errors, tableWrap, none)
  const rows = new Map()
  return every(
    1000,
    async () => {
      const m = await api('GET', '/v1/sync/mesh')
      const list = [...m.pulls, ...m.serves]
      const seen = new Set()
      list.forEach((row, index) => {
        const key = keyOf(row)
        seen.add(key)
        let tr = rows.get(key)
        if (!tr) {
          tr = h('tr', { 'data-key': key })
          tr._keys = []
          rows.set(key, tr)
        }
        // Pulls, then serves; a row is moved only when out of place (moving it would drop the focus inside it).
        if (tbody.children[index] !== tr) tbody.insertBefore(tr, tbody.children[index] ?? null)
        const cs = cells(row)
        cs.forEach(([k, node], i) => {
          if (tr._keys[i] === k) return
          tr._keys[i] = k
          const td = tr.children[i] ?? tr.appendChild(h('td', { 'data-label': COLUMNS[i] }))
          fill(td, node)
        })
      })
      for (const [key, tr] of rows) {
        if (!seen.has(key)) {
          tr.remove()
          rows.delete(key)
        }
      }
      tableWrap.hidden = list.length === 0
      none.hidden = list.length > 0
      const counts = {}
      for (const r of list) counts[r.state] = (counts[r.state] ?? 0) + 1
      const parts = Object.entries(counts).map(([s, n]) => `${n} ${s}`)
      fill(
        summary,
        `${list.length} line${list.length === 1 ? '' : 's'}${parts.length ? `: ${parts.join(', ')}` : ''}; ${m.links.length} peer link${m.links.length === 1 ? '' : 's'} · updated ${new Date(m.at).toLocaleTimeString()}`,
      )
    },
    errors,
  )
}
