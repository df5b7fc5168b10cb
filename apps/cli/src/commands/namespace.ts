import { Command, Option } from 'clipanion'
import { BaseCommand } from '../base.js'

interface NamespaceOut {
  namespace: string
  status: string
  description: string
}

const path = (ns: string) => `/v1/namespaces/${encodeURIComponent(ns)}`

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
    if (this.json) this.printJson(res)
    else this.out(res.created ? `created ${res.namespace}` : `${res.namespace} is already active`)
    return 0
  }
}

export class NamespaceListCommand extends BaseCommand {
  static override paths = [['namespace', 'list']]
  static override usage = Command.Usage({
    description: 'List registered namespaces',
    examples: [['List', 'spl namespace list']],
  })

  protected async run() {
    const res = await this.client().get<{ data: NamespaceOut[] }>('/v1/namespaces')
    if (this.json) this.printJson(res.data)
    else for (const n of res.data) this.out(`${n.namespace}  ${n.status}${n.description ? `  ${n.description}` : ''}`)
    return 0
  }
}

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
    if (this.json) {
      this.printJson(res)
      return 0
    }
    this.out(`${res.namespace}  ${res.status}${res.description ? `  ${res.description}` : ''}`)
    for (const a of res.chain) this.out(`  ${a.active ? '✓' : '✗'} ${a.namespace}  ${a.status}`)
    this.out(res.usable ? 'usable: records may be emitted in it' : 'not usable: create the ✗ ancestors first')
    return res.usable ? 0 : 1
  }
}

export class NamespaceArchiveCommand extends BaseCommand {
  static override paths = [['namespace', 'archive']]
  static override usage = Command.Usage({
    description: 'Archive a namespace (new records in it are refused)',
    examples: [['Archive', 'spl namespace archive acme/ops']],
  })
  namespace = Option.String({ name: 'namespace' })

  protected async run() {
    const res = await this.client().post<NamespaceOut>(`${path(this.namespace)}/archive`)
    if (this.json) this.printJson(res)
    else this.out(`${res.namespace} is ${res.status}`)
    return 0
  }
}

export class NamespaceDeleteCommand extends BaseCommand {
  static override paths = [['namespace', 'delete']]
  static override usage = Command.Usage({
    description: 'Mark a namespace deleted (records stay; new ones are refused)',
    examples: [['Delete', 'spl namespace delete acme/ops']],
  })
  namespace = Option.String({ name: 'namespace' })

  protected async run() {
    const res = await this.client().delete<NamespaceOut>(path(this.namespace))
    if (this.json) this.printJson(res)
    else this.out(`${res.namespace} is ${res.status}`)
    return 0
  }
}
