import { api } from './api.js'
import { actionButton, cmd, didCell, empty, errorBox, every, fill, h, heading, region, say, table } from './dom.js'

const csv = (v) =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)

/** The body `spl consent grant` sends for the same choices; the daemon validates it (one schema for both). */
export function grantBody({ to, from, levels, threads, purpose, expires }) {
  const body = { source_namespace: from || 'default', target_namespace: to }
  body.hash_levels = levels
  if (threads.trim()) body.threads = csv(threads)
  if (purpose.trim()) body.purpose = purpose.trim()
  if (expires.trim()) body.expires_at = expires.trim()
  return body
}

function grantForm(onDone) {
  const out = h('div')
  const to = h('input', { id: 'g-to', type: 'text', required: true, placeholder: 'partner-team', 'aria-describedby': 'g-to-hint' })
  const from = h('input', { id: 'g-from', type: 'text', value: 'default' })
  const threads = h('input', { id: 'g-threads', type: 'text', placeholder: 'th_a, th_b', 'aria-describedby': 'g-threads-hint' })
  const purpose = h('input', { id: 'g-purpose', type: 'text' })
  const expires = h('input', { id: 'g-expires', type: 'text', placeholder: '2027-01-01T00:00:00Z', 'aria-describedby': 'g-expires-hint' })
  const levels = ['L0', 'L1', 'L2', 'L3'].map((l) => h('input', { type: 'checkbox', id: `g-${l}`, value: l, checked: l !== 'L0' }))
  const form = h(
    'form',
    { class: 'inline-form', 'aria-labelledby': 'grant-h' },
    h('h2', { id: 'grant-h' }, 'Grant'),
    h(
      'div',
      { class: 'field' },
      h('label', { for: 'g-to' }, 'To namespace (the callers that may receive)'),
      to,
      h('p', { class: 'hint', id: 'g-to-hint' }, 'as --to-namespace'),
    ),
    h('div', { class: 'field' }, h('label', { for: 'g-from' }, 'From namespace (the records shared)'), from),
    h(
      'fieldset',
      {},
      h('legend', {}, 'Hash levels (without L0 records are served as redacted stubs)'),
      levels.map((cb) => h('span', { class: 'check' }, cb, h('label', { for: cb.id }, cb.value))),
    ),
    h(
      'div',
      { class: 'field' },
      h('label', { for: 'g-threads' }, 'Threads'),
      threads,
      h('p', { class: 'hint', id: 'g-threads-hint' }, 'comma-separated; empty: all threads'),
    ),
    h('div', { class: 'field' }, h('label', { for: 'g-purpose' }, 'Purpose'), purpose),
    h(
      'div',
      { class: 'field' },
      h('label', { for: 'g-expires' }, 'Expires'),
      expires,
      h('p', { class: 'hint', id: 'g-expires-hint' }, 'ISO 8601; empty: never'),
    ),
    h('button', { type: 'submit' }, 'Grant'),
    out,
  )
  form.addEventListener('submit', async (e) => {
    e.preventDefault()
    out.replaceChildren()
    try {
      const g = await api(
        'POST',
        '/v1/consent/grants',
        grantBody({
          to: to.value.trim(),
          from: from.value.trim(),
          levels: levels.filter((c) => c.checked).map((c) => c.value),
          threads: threads.value,
          purpose: purpose.value,
          expires: expires.value,
        }),
      )
      fill(out, h('p', { role: 'status' }, `granted ${g.grant_id}: ${g.source_namespace} → ${g.target_namespace}`))
      say(`grant ${g.grant_id} made`)
      await onDone()
    } catch (err) {
      fill(out, errorBox(err))
    }
  })
  return form
}

function bindForm(onDone) {
  const out = h('div')
  const did = h('input', { id: 'b-did', type: 'text', required: true, placeholder: 'did:key:z6Mk…' })
  const ns = h('input', { id: 'b-ns', type: 'text', required: true, placeholder: 'partner-team' })
  const form = h(
    'form',
    { class: 'inline-form', 'aria-labelledby': 'bind-h' },
    h('h2', { id: 'bind-h' }, 'Bind a caller'),
    h('div', { class: 'field' }, h('label', { for: 'b-did' }, 'Caller DID'), did),
    h('div', { class: 'field' }, h('label', { for: 'b-ns' }, 'Namespace it may claim'), ns),
    h('button', { type: 'submit' }, 'Bind'),
    out,
  )
  form.addEventListener('submit', async (e) => {
    e.preventDefault()
    out.replaceChildren()
    try {
      const b = await api('POST', '/v1/consent/bindings', { did: did.value.trim(), namespace: ns.value.trim() })
      fill(out, h('p', { role: 'status' }, `bound ${b.did} → ${b.namespace}`))
      await onDone()
    } catch (err) {
      fill(out, errorBox(err))
    }
  })
  return form
}

/** Consent: grants and caller bindings; grant, revoke, bind, unbind (the daemon's validation, as for the CLI). */
export function consent(main) {
  const errors = h('div')
  const actionErrors = h('div')
  let refresh = async () => {}
  const grants = region((list) =>
    list.length === 0
      ? empty(
          'No grants: records are visible only within their own namespace.',
          h('span', {}, 'Grant below, or run ', cmd('spl consent grant --to-namespace <ns>'), '.'),
        )
      : table(
          'Grants (revoked and expired ones too)',
          ['Grant', 'From → to', 'Hash levels', 'Threads', 'Purpose', 'Expires', 'Status', ''],
          list.map((g) => [
            [
              h('code', {}, g.grant_id),
              `${g.source_namespace} → ${g.target_namespace}`,
              g.hash_levels.join(','),
              g.threads === '*' ? 'all' : g.threads.join(', '),
              g.purpose ?? '-',
              g.expires_at ?? 'never',
              h('span', { class: `state state-${g.status}` }, g.status),
              g.status === 'active'
                ? actionButton(
                    'Revoke',
                    async () => {
                      await api('DELETE', `/v1/consent/grants/${g.grant_id}`)
                      say(`grant ${g.grant_id} revoked`)
                      await refresh()
                    },
                    {
                      where: actionErrors,
                      danger: true,
                      name: `Revoke ${g.grant_id}`,
                      confirmText: `Revoke ${g.grant_id}? It takes effect on the next pull.`,
                    },
                  )
                : '',
            ],
            { 'data-grant': g.grant_id },
          ]),
        ),
  )
  const bindings = region((list) =>
    list.length === 0
      ? empty('No caller bindings: every caller reads as the default namespace.', null)
      : table(
          'Caller bindings',
          ['Caller', 'Namespace', ''],
          list.map((b) => [
            didCell(b.did),
            b.namespace,
            actionButton(
              'Unbind',
              async () => {
                await api('DELETE', `/v1/consent/bindings/${encodeURIComponent(b.did)}`)
                say(`${b.did} unbound`)
                await refresh()
              },
              { where: actionErrors, name: `Unbind ${b.did}` },
            ),
          ]),
        ),
  )
  refresh = async () => {
    const [g, b] = await Promise.all([api('GET', '/v1/consent/grants?all=true'), api('GET', '/v1/consent/bindings')])
    grants.update(g.data)
    bindings.update(b.data)
  }
  fill(
    main,
    heading('Consent', 'Which namespaces may receive records of which (SPEC 6), and which callers may claim a namespace.'),
    errors,
    actionErrors,
    grants.el,
    grantForm(() => refresh()),
    h('h2', {}, 'Bindings'),
    bindings.el,
    bindForm(() => refresh()),
  )
  return every(3000, refresh, errors)
}
