import { api } from './api.js'
import { actionButton, cmd, empty, errorBox, every, fill, h, heading, region, say, table } from './dom.js'

/** Namespaces: the registry; create, archive, delete. */
export function namespaces(main) {
  const errors = h('div')
  const actionErrors = h('div')
  let refresh = async () => {}
  const list = region((data) =>
    data.length <= 1
      ? h(
          'div',
          {},
          table(
            'Namespaces',
            ['Namespace', 'Status', 'Description', ''],
            data.map((n) => [n.namespace, n.status, n.description || '-', '']),
          ),
          empty(
            'Only the default namespace exists.',
            h('span', {}, 'Create one below or with ', cmd('spl namespace create <ns>'), ', then grant consent to share across.'),
          ),
        )
      : table(
          'Namespaces',
          ['Namespace', 'Status', 'Description', ''],
          data.map((n) => [
            h('code', {}, n.namespace),
            h('span', { class: `state state-${n.status}` }, n.status),
            n.description || '-',
            n.namespace === 'default' || n.status !== 'active'
              ? ''
              : h(
                  'div',
                  { class: 'row-actions' },
                  actionButton(
                    'Archive',
                    async () => {
                      await api('POST', `/v1/namespaces/${encodeURIComponent(n.namespace)}/archive`)
                      say(`${n.namespace} archived`)
                      await refresh()
                    },
                    { where: actionErrors, name: `Archive ${n.namespace}` },
                  ),
                  actionButton(
                    'Delete',
                    async () => {
                      await api('DELETE', `/v1/namespaces/${encodeURIComponent(n.namespace)}`)
                      say(`${n.namespace} deleted`)
                      await refresh()
                    },
                    {
                      where: actionErrors,
                      danger: true,
                      name: `Delete ${n.namespace}`,
                      confirmText: `Delete the namespace ${n.namespace}?`,
                    },
                  ),
                ),
          ]),
        ),
  )
  const out = h('div')
  const ns = h('input', { id: 'ns-name', type: 'text', required: true, placeholder: 'acme/ops' })
  const desc = h('input', { id: 'ns-desc', type: 'text' })
  const form = h(
    'form',
    { class: 'inline-form', 'aria-labelledby': 'ns-h' },
    h('h2', { id: 'ns-h' }, 'Create'),
    h('div', { class: 'field' }, h('label', { for: 'ns-name' }, 'Namespace'), ns),
    h('div', { class: 'field' }, h('label', { for: 'ns-desc' }, 'Description'), desc),
    h('button', { type: 'submit' }, 'Create'),
    out,
  )
  form.addEventListener('submit', async (e) => {
    e.preventDefault()
    out.replaceChildren()
    try {
      const body = { namespace: ns.value.trim() }
      if (desc.value.trim()) body.description = desc.value.trim()
      const r = await api('POST', '/v1/namespaces', body)
      fill(out, h('p', { role: 'status' }, `${r.namespace}: ${r.created ? 'created' : 'already active'}`))
      await refresh()
    } catch (err) {
      fill(out, errorBox(err))
    }
  })
  refresh = async () => list.update((await api('GET', '/v1/namespaces')).data)
  fill(
    main,
    heading('Namespaces', 'The registry of this instance (SPEC 6.1). A namespace is usable when it and its ancestors are active.'),
    errors,
    actionErrors,
    list.el,
    form,
  )
  return every(3000, refresh, errors)
}
