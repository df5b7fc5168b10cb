import { api } from './api.js'
import { actionButton, cmd, didCell, empty, errorBox, every, fill, h, heading, region, say, table } from './dom.js'

const threadsOf = (text) =>
  text
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean)

function outcomeBox(o) {
  return h(
    'div',
    { class: 'outcome', role: 'status' },
    h('p', {}, h('strong', {}, o.outcome), o.link ? ` — link ${o.link.link_id} ${o.link.state}` : ''),
    o.steps?.length
      ? h(
          'ul',
          { class: 'steps' },
          o.steps.map((s) => h('li', {}, s)),
        )
      : null,
  )
}

/** The actions of one discovered peer: pair (the federation handshake) and add thread (a pull pair). */
function peerActions(peer) {
  const out = h('div')
  const thread = h('input', {
    type: 'text',
    id: `t-${peer.did.slice(-10)}-${Math.random().toString(36).slice(2, 6)}`,
    placeholder: 'th_…',
    size: 14,
    'aria-label': `Thread for ${peer.did}`,
  })
  const pairB = actionButton(
    'Pair',
    async () => {
      const o = await api('POST', '/v1/federation/links', { peer_url: peer.url, threads: threadsOf(thread.value) })
      fill(out, outcomeBox(o))
      say(`pairing with ${peer.url}: ${o.outcome}`)
    },
    { where: out, name: `Pair with ${peer.did}` },
  )
  const addB = actionButton(
    'Add thread',
    async () => {
      const t = threadsOf(thread.value)[0]
      if (!t)
        throw {
          code: 'INVALID_ARGUMENT',
          message: 'name the thread to pull from this peer',
          fix: 'type a thread id such as th_ops, then Add thread',
        }
      const p = await api('POST', '/v1/sync/pairs', { peer_did: peer.did, peer_url: peer.url, thread_id: t })
      fill(
        out,
        h(
          'p',
          { role: 'status' },
          'pulling ',
          h('code', {}, t),
          ' from this peer: pair ',
          h('a', { href: `#/pair/${p.pair_id}` }, p.pair_id.slice(0, 8)),
          p.warning ? ` — ${p.warning}` : '',
        ),
      )
      say(`pair ${p.pair_id.slice(0, 8)} made`)
    },
    { where: out, name: `Add a thread pulled from ${peer.did}` },
  )
  return h('div', { class: 'row-actions' }, thread, pairB, addB, out)
}

function verified(peer) {
  return peer.verified
    ? h('span', { class: 'ok' }, '✓ verified')
    : h(
        'span',
        { class: 'warn' },
        '✗ not verified',
        peer.verify_error ? h('div', { class: 'fix' }, `${peer.verify_error.code}: ${peer.verify_error.message}`) : null,
      )
}

/** Peers: the discovery roster by source, verified or not, with pair and add-thread actions. */
export function peers(main) {
  const errors = h('div')
  const byUrl = h('div')
  const urlIn = h('input', { type: 'url', id: 'pair-url', required: true, placeholder: 'http://10.0.0.5:9100' })
  const thIn = h('input', { type: 'text', id: 'pair-threads', placeholder: 'th_a, th_b' })
  const inviteIn = h('input', { type: 'text', id: 'pair-invite', placeholder: 'spl-…' })
  const form = h(
    'form',
    { class: 'inline-form', 'aria-labelledby': 'pair-url-h' },
    h('h2', { id: 'pair-url-h' }, 'Pair by URL'),
    h('div', { class: 'field' }, h('label', { for: 'pair-url' }, 'Peer URL'), urlIn),
    h('div', { class: 'field' }, h('label', { for: 'pair-threads' }, 'Threads (comma-separated)'), thIn),
    h('div', { class: 'field' }, h('label', { for: 'pair-invite' }, 'Invite code (if the peer gave one)'), inviteIn),
    h('button', { type: 'submit' }, 'Pair'),
    byUrl,
  )
  form.addEventListener('submit', async (e) => {
    e.preventDefault()
    byUrl.replaceChildren()
    try {
      const body = { peer_url: urlIn.value.trim(), threads: threadsOf(thIn.value) }
      if (inviteIn.value.trim()) body.invite = inviteIn.value.trim()
      fill(byUrl, outcomeBox(await api('POST', '/v1/federation/links', body)))
    } catch (err) {
      fill(byUrl, errorBox(err))
    }
  })
  const roster = region(({ mdns, found }) => {
    const all = new Map()
    for (const p of [...mdns.peers, ...found.peers]) {
      const prev = all.get(p.did)
      all.set(p.did, prev ? { ...prev, ...p, sources: [...new Set([...(prev.sources ?? []), ...(p.sources ?? [])])] } : p)
    }
    const sources = new Map()
    for (const p of all.values())
      for (const s of p.sources?.length ? p.sources : ['unknown']) sources.set(s, [...(sources.get(s) ?? []), p])
    const failures = found.failures ?? []
    return h(
      'div',
      {},
      h(
        'p',
        { class: 'muted' },
        `mDNS: ${mdns.listen ? 'listening' : 'not listening'}${mdns.broadcast ? ', announcing' : ''}. Asked: ${(found.methods ?? []).join(', ') || 'none'}.`,
      ),
      failures.map((f) => errorBox({ code: `${f.method}: ${f.code}`, message: f.message, fix: f.fix })),
      sources.size === 0
        ? empty(
            'No peer discovered.',
            h(
              'span',
              {},
              'Turn on mDNS on the LAN, list peers under ',
              cmd('[sync.discovery] static'),
              ' in config.toml, or set a directory with ',
              cmd('directory_url'),
              '; or pair by URL above.',
            ),
          )
        : [...sources.entries()].map(([source, list]) =>
            h(
              'section',
              { 'aria-label': `Found by ${source}` },
              h('h2', {}, `Found by ${source}`),
              table(
                `${list.length} peer${list.length === 1 ? '' : 's'} found by ${source}`,
                ['Peer', 'URL', 'Handle', 'Verified', 'Pairs here', 'Actions'],
                list.map((p) => [
                  didCell(p.did),
                  p.url,
                  p.handle ?? '-',
                  verified(p),
                  p.pair_ids?.length ? p.pair_ids.map((id) => h('a', { href: `#/pair/${id}` }, `${id.slice(0, 8)} `)) : 'none',
                  peerActions(p),
                ]),
              ),
            ),
          ),
    )
  })
  const again = h('button', { type: 'button' }, 'Look again')
  let stop = () => {}
  const start = () => {
    stop()
    stop = every(
      15_000,
      async () => {
        const [mdns, found] = await Promise.all([api('GET', '/v1/discovery/mdns'), api('GET', '/v1/discovery/peers?timeout_ms=1500')])
        // Sighting times change at every look: left out, so that the table (and a thread being typed) stays.
        const still = (list) => list.map(({ last_seen: _l, found: _f, ...p }) => p)
        roster.update({ mdns: { ...mdns, peers: still(mdns.peers) }, found: { ...found, peers: still(found.peers) } })
      },
      errors,
    )
  }
  again.addEventListener('click', () => {
    roster.force()
    start()
  })
  fill(
    main,
    heading('Peers', 'Instances that discovery found, by the source that found them. Discovery never pairs by itself.'),
    h('div', { class: 'actions' }, again),
    errors,
    roster.el,
    form,
  )
  start()
  return () => stop()
}
