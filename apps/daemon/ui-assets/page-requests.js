import { api } from './api.js'
import { actionButton, cmd, didCell, empty, every, fill, h, heading, region, say, table, when } from './dom.js'

/** Requests: pairing requests held for the operator (approve, reject, block), and the blocklist. */
export function requests(main) {
  const errors = h('div')
  const actionErrors = h('div')
  let refresh = async () => {}
  const held = region((list) =>
    list.length === 0
      ? empty(
          'No pairing request is waiting.',
          h(
            'span',
            {},
            'A peer that runs ',
            cmd('spl federation pair <this-url>'),
            ' without an invite shows up here (policy ',
            cmd('[federation] accept_pair_requests'),
            '). To let one in without a wait, give it an invite: ',
            cmd('spl federation invite --thread th_…'),
            '.',
          ),
        )
      : table(
          'Held pairing requests',
          ['Request', 'From', 'URL', 'Threads', 'Would bind here', 'Asked', 'Expires', 'Decision'],
          list.map((r) => [
            [
              h('code', {}, r.link_id),
              didCell(r.initiator_did),
              r.initiator_url,
              r.threads.join(', ') || 'any',
              r.namespace_map?.length ? r.namespace_map.map((m) => `${m.peer} → ${m.local}`).join(', ') : 'default',
              when(r.created_at),
              when(r.expires_at),
              h(
                'div',
                { class: 'row-actions', role: 'group', 'aria-label': `Decide on ${r.link_id}` },
                actionButton(
                  'Approve',
                  async () => {
                    await api('POST', `/v1/federation/requests/${r.link_id}/approve`)
                    say(`request ${r.link_id} approved: the link is made; the peer's next poll gets its token`)
                    await refresh()
                  },
                  { where: actionErrors, name: `Approve ${r.link_id}` },
                ),
                actionButton(
                  'Reject',
                  async () => {
                    await api('POST', `/v1/federation/requests/${r.link_id}/reject`)
                    say(`request ${r.link_id} rejected`)
                    await refresh()
                  },
                  { where: actionErrors, name: `Reject ${r.link_id}` },
                ),
                actionButton(
                  'Block',
                  async () => {
                    await api('POST', '/v1/federation/blocklist', { did: r.initiator_did })
                    say(`${r.initiator_did} blocked`)
                    await refresh()
                  },
                  {
                    where: actionErrors,
                    danger: true,
                    name: `Block ${r.initiator_did}`,
                    confirmText: 'Block this DID? Every request it makes from now on is refused at once (unblock later here).',
                  },
                ),
              ),
            ],
            { 'data-request': r.link_id },
          ]),
        ),
  )
  const blocked = region((list) =>
    list.length === 0
      ? empty('No DID is blocked.', null)
      : table(
          'Blocked DIDs',
          ['DID', 'Since', ''],
          list.map((b) => [
            didCell(b.did),
            when(b.blocked_at ?? b.created_at ?? null),
            actionButton(
              'Unblock',
              async () => {
                await api('DELETE', `/v1/federation/blocklist/${encodeURIComponent(b.did)}`)
                say(`${b.did} unblocked`)
                await refresh()
              },
              { where: actionErrors, name: `Unblock ${b.did}` },
            ),
          ]),
        ),
  )
  refresh = async () => {
    const [r, b] = await Promise.all([api('GET', '/v1/federation/requests'), api('GET', '/v1/federation/blocklist')])
    held.update(r.data.filter((x) => x.state === undefined || x.state === 'pending'))
    blocked.update(b.data)
  }
  fill(
    main,
    heading(
      'Requests',
      'Pairing requests held for you. Approve makes the link; reject ends the request; block refuses the DID from now on.',
    ),
    errors,
    actionErrors,
    held.el,
    h('h2', {}, 'Blocklist'),
    blocked.el,
  )
  return every(2000, refresh, errors)
}
