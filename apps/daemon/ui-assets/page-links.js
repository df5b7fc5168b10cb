import { api } from './api.js'
import { actionButton, cmd, didCell, empty, every, fill, h, heading, region, say, table, when } from './dom.js'

function token(t) {
  return t ? h('span', {}, h('code', {}, t.jti), h('div', { class: 'muted' }, `${t.scope}, expires `, when(t.expires_at))) : '-'
}

/** Links: peer links with their state, token ids and expiry; pause, resume, refresh, revoke. */
export function links(main) {
  const errors = h('div')
  const actionErrors = h('div')
  let refresh = async () => {}
  const act = (l, action, label, extra = {}) =>
    actionButton(
      label,
      async () => {
        const r = await api('POST', `/v1/federation/links/${l.link_id}/${action}`)
        say(
          `link ${l.link_id}: ${action} done${r?.state ? `, now ${r.state}` : ''}${r?.notified === false ? ' (the peer could not be told)' : ''}`,
        )
        await refresh()
      },
      { where: actionErrors, name: `${label} ${l.link_id}`, ...extra },
    )
  const list = region((data) =>
    data.length === 0
      ? empty(
          'No peer link yet.',
          h(
            'span',
            {},
            'Pair on the ',
            h('a', { href: '#/peers' }, 'Peers'),
            ' page, or run ',
            cmd('spl federation pair <peer-url> --thread th_…'),
            '.',
          ),
        )
      : table(
          'Peer links (token ids only: a token itself is never shown)',
          ['Link', 'State', 'Peer', 'Role', 'Threads', 'Token issued to the peer', 'Token held from the peer', 'Actions'],
          data.map((l) => [
            h('code', {}, l.link_id),
            h(
              'span',
              {},
              h('span', { class: `state state-${l.state}` }, l.state),
              l.revoked_by ? ` (by ${l.revoked_by === 'local' ? 'this instance' : 'the peer'})` : '',
              l.renewal_error
                ? h(
                    'div',
                    { class: 'err-cell' },
                    h('strong', {}, `renewal failed ${l.renewal_error.code}`),
                    `: ${l.renewal_error.message}`,
                    h('div', { class: 'fix' }, 'Fix: Refresh to renew now; if it keeps failing, check the peer is up'),
                  )
                : null,
            ),
            h('span', {}, didCell(l.peer_did), h('div', { class: 'muted' }, l.peer_url)),
            l.role,
            l.threads.join(', ') || '-',
            token(l.tokens.issued),
            token(l.tokens.held),
            l.state === 'revoked'
              ? '-'
              : h(
                  'div',
                  { class: 'row-actions', role: 'group', 'aria-label': `Actions of ${l.link_id}` },
                  act(l, 'pause', 'Pause'),
                  act(l, 'resume', 'Resume'),
                  act(l, 'refresh', 'Refresh token'),
                  act(l, 'revoke', 'Revoke', {
                    danger: true,
                    confirmText: `Revoke ${l.link_id}? Its token is revoked, its pairs removed and the peer told. This cannot be undone (pair again later).`,
                  }),
                ),
          ]),
        ),
  )
  refresh = async () => list.update((await api('GET', '/v1/federation/links')).data)
  fill(
    main,
    heading('Links', 'Each link is the two-way trust with one peer: one token each way, pairs both ways.'),
    errors,
    actionErrors,
    list.el,
  )
  return every(2000, refresh, errors)
}
