import { Command, Option } from 'clipanion'
import { adminCommand } from '../admin-command.js'
import { BaseCommand } from '../base.js'

interface GrantOut {
  grant_id: string
  source_namespace: string
  target_namespace: string
  hash_levels: string[]
  threads: '*' | string[]
  purpose?: string
  expires_at?: string
  status: string
}

function grantLine(g: GrantOut): string {
  const threads = g.threads === '*' ? 'all threads' : g.threads.join(',')
  const extra = [g.purpose ? `purpose: ${g.purpose}` : '', g.expires_at ? `expires ${g.expires_at}` : ''].filter(Boolean).join(', ')
  return `${g.grant_id}  ${g.source_namespace} → ${g.target_namespace}  ${g.hash_levels.join(',')}  ${threads}  ${g.status}${extra ? `  (${extra})` : ''}`
}

const csv = (v: string | undefined) =>
  v === undefined
    ? undefined
    : v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)

export class ConsentGrantCommand extends BaseCommand {
  static override paths = [['consent', 'grant']]
  static override usage = Command.Usage({
    description: 'Let callers of another namespace receive records of one of ours',
    details: `
      Without L0 in --hash-levels (the default is L1,L2,L3) records are served as redacted stubs:
      the id stays, the body becomes {"redacted": true} and the signature is dropped. With L0
      they are served whole. Takes effect on the next pull; no cursor is reset.
    `,
    examples: [
      ['Share default records whole with partner-team', 'spl consent grant --to-namespace partner-team --hash-levels L0,L1,L2,L3'],
      [
        'Share stubs of acme/ops on two threads until a date',
        'spl consent grant --from-namespace acme/ops --to-namespace partner-team --threads th_a,th_b --expires 2027-01-01T00:00:00Z',
      ],
    ],
  })
  to = Option.String('--to-namespace', {
    required: true,
    description: 'The namespace of the callers that may receive',
  })
  from = Option.String('--from-namespace', 'default', {
    description: 'The namespace of the records shared (default: default)',
  })
  levels = Option.String('--hash-levels', {
    description: 'Comma-separated L0..L3 (default L1,L2,L3: no bodies)',
  })
  threads = Option.String('--threads', { description: 'Comma-separated thread ids (default: all threads)' })
  purpose = Option.String('--purpose', { description: 'Why, for the record' })
  expires = Option.String('--expires', { description: 'ISO 8601 expiry' })

  protected async run() {
    const body: Record<string, unknown> = { source_namespace: this.from, target_namespace: this.to }
    if (this.levels !== undefined) body['hash_levels'] = csv(this.levels)
    if (this.threads !== undefined) body['threads'] = csv(this.threads)
    if (this.purpose !== undefined) body['purpose'] = this.purpose
    if (this.expires !== undefined) body['expires_at'] = this.expires
    const g = await this.client().post<GrantOut>('/v1/consent/grants', body)
    return this.render(g, grantLine(g))
  }
}

export class ConsentListCommand extends BaseCommand {
  static override paths = [['consent', 'list']]
  static override usage = Command.Usage({
    description: 'List active grants (and caller bindings)',
    examples: [
      ['Active grants', 'spl consent list'],
      ['Everything, revoked and expired too', 'spl consent list --all --json'],
    ],
  })
  namespace = Option.String('--namespace', { description: 'Only grants from or to this namespace' })
  all = Option.Boolean('--all', false, { description: 'Include revoked and expired grants' })

  protected async run() {
    const q = new URLSearchParams()
    if (this.namespace) q.set('namespace', this.namespace)
    if (this.all) q.set('all', 'true')
    const api = this.client()
    const grants = await api.get<{ data: GrantOut[] }>(`/v1/consent/grants?${q}`)
    const bindings = await api.get<{ data: { did: string; namespace: string }[] }>('/v1/consent/bindings')
    return this.render({ grants: grants.data, bindings: bindings.data }, () => {
      if (grants.data.length === 0) this.out('no grants: records are visible only within their own namespace')
      for (const g of grants.data) this.out(grantLine(g))
      if (bindings.data.length > 0) {
        this.out('bindings:')
        for (const b of bindings.data) this.out(`  ${b.did} → ${b.namespace}`)
      }
      return undefined
    })
  }
}

export const ConsentRevokeCommand = adminCommand(
  {
    path: ['consent', 'revoke'],
    usage: {
      description: 'Revoke a grant (takes effect on the next pull)',
      examples: [['Revoke', 'spl consent revoke cg_0123456789ab']],
    },
    call: (api, id) => api.delete<GrantOut>(`/v1/consent/grants/${encodeURIComponent(id)}`),
    human: grantLine,
  },
  'grant_id',
)

export class ConsentBindCommand extends BaseCommand {
  static override paths = [['consent', 'bind']]
  static override usage = Command.Usage({
    description: 'Allow a caller DID to pull as a namespace other than default',
    details: 'A caller may claim a namespace other than `default` only when this source has bound its DID to exactly that namespace.',
    examples: [['Bind B to partner-team', 'spl consent bind did:key:z6Mk… --namespace partner-team']],
  })
  did = Option.String({ name: 'DID' })
  namespace = Option.String('--namespace', {
    required: true,
    description: 'The namespace the caller may claim',
  })

  protected async run() {
    const b = await this.client().post<{ did: string; namespace: string }>('/v1/consent/bindings', {
      did: this.did,
      namespace: this.namespace,
    })
    return this.render(b, `${b.did} → ${b.namespace}`)
  }
}

export const ConsentUnbindCommand = adminCommand(
  {
    path: ['consent', 'unbind'],
    usage: {
      description: 'Remove a caller binding',
      examples: [['Unbind', 'spl consent unbind did:key:z6Mk…']],
    },
    call: (api, did) => api.delete<{ did: string }>(`/v1/consent/bindings/${encodeURIComponent(did)}`),
    human: (b) => `${b.did} unbound`,
  },
  'DID',
)
