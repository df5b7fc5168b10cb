import { Command, Option } from 'clipanion'
import { adminCommand } from '../admin-command.js'
import { BaseCommand } from '../base.js'

interface NamespaceOut {
  namespace: string
  status: string
  description: string
}

const path = (ns: string) => `/v1/namespaces/${encodeURIComponent(ns)}`
const nsLine = (n: NamespaceOut) => `${n.namespace}  ${n.status}${n.description ? `  ${n.description}` : ''}`
const statusLine = (n: NamespaceOut) => `${n.namespace} is ${n.status}`

export class NamespaceCreateCommand extends BaseCommand {
  static override paths = [['namespace', 'create']]
  static override usage = Command.Usage({
    description: 'Register a namespace (its parent must already be active)',
    details:
      'Namespaces are never created implicitly. The registry is a list of LEARN records on th_namespace_registry signed by this instance.',
    examples: [
      ['A top-level namespace', 'spl namespace create acme --description "Acme"'],
      ['A child', 'spl namespace create acme/ops'],
    ],
  })
  namespace = Option.String({ name: 'namespace' })
  description = Option.String('--description', { description: 'What it is for' })

  protected async run() {
    const res = await this.client().post<NamespaceOut & { created: boolean }>('/v1/namespaces', {
      namespace: this.namespace,
      ...(this.description === undefined ? {} : { description: this.description }),
    })
    return this.render(res, res.created ? `created ${res.namespace}` : `${res.namespace} is already active`)
  }
}

export const NamespaceListCommand = adminCommand({
  path: ['namespace', 'list'],
  usage: {
    description: 'List registered namespaces',
    examples: [['List', 'spl namespace list']],
  },
  call: (api) => api.get<{ data: NamespaceOut[] }>('/v1/namespaces'),
  json: (res) => res.data,
  human: (res) => res.data.map(nsLine),
})

export class NamespaceShowCommand extends BaseCommand {
  static override paths = [['namespace', 'show']]
  static override usage = Command.Usage({
    description: 'Show a namespace and its ancestor chain (✓ active, ✗ not)',
    examples: [['Show', 'spl namespace show acme/ops']],
  })
  namespace = Option.String({ name: 'namespace' })

  protected async run() {
    const res = await this.client().get<
      NamespaceOut & { usable: boolean; chain: { namespace: string; status: string; active: boolean }[] }
    >(path(this.namespace))
    // Only the text mode says "not usable" through the exit code; the JSON carries `usable`.
    return this.render(res, () => {
      this.out(nsLine(res))
      for (const a of res.chain) this.out(`  ${a.active ? '✓' : '✗'} ${a.namespace}  ${a.status}`)
      this.out(res.usable ? 'usable: records may be emitted in it' : 'not usable: create the ✗ ancestors first')
      return res.usable ? 0 : 1
    })
  }
}

export const NamespaceArchiveCommand = adminCommand(
  {
    path: ['namespace', 'archive'],
    usage: {
      description: 'Archive a namespace (new records in it are refused)',
      examples: [['Archive', 'spl namespace archive acme/ops']],
    },
    call: (api, ns) => api.post<NamespaceOut>(`${path(ns)}/archive`),
    human: statusLine,
  },
  'namespace',
)

export const NamespaceDeleteCommand = adminCommand(
  {
    path: ['namespace', 'delete'],
    usage: {
      description: 'Mark a namespace deleted (records stay; new ones are refused)',
      examples: [['Delete', 'spl namespace delete acme/ops']],
    },
    call: (api, ns) => api.delete<NamespaceOut>(path(ns)),
    human: statusLine,
  },
  'namespace',
)
