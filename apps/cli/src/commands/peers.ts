import { shortDid } from '@spl/transport/identity'
import { Command, Option } from 'clipanion'
import * as t from 'typanion'
import { BaseCommand } from '../base.js'

const METHODS = ['mdns', 'did-web', 'did-sync', 'static'] as const
type Method = (typeof METHODS)[number]

/** A peer as GET /v1/discovery/peers answers it. */
export interface DiscoveredPeerOut {
  did: string
  url: string
  handle?: string
  namespace?: string
  aka?: string[]
  sources: Method[]
  found: { source: Method; url: string; last_seen: number }[]
  last_seen: number
  verified: boolean
  verify_error?: { code: string; message: string }
  paired: boolean
  pair_ids: string[]
}

export interface DiscoveryAnswer {
  methods: Method[]
  peers: DiscoveredPeerOut[]
  failures: { method: Method; code: string; message: string; fix?: string }[]
}

/** The query string of a discovery request. */
export function discoveryQuery(q: {
  method?: string | undefined
  domain?: string | undefined
  namespace?: string | undefined
  directory?: string | undefined
  did?: string | undefined
  timeoutMs?: number | undefined
}): string {
  const p = new URLSearchParams()
  if (q.method) p.set('method', q.method)
  if (q.domain) p.set('domain', q.domain)
  if (q.namespace) p.set('namespace', q.namespace)
  if (q.directory) p.set('directory', q.directory)
  if (q.did) p.set('did', q.did)
  if (q.timeoutMs !== undefined) p.set('timeout_ms', String(q.timeoutMs))
  const s = p.toString()
  return s ? `?${s}` : ''
}

function peerLine(p: DiscoveredPeerOut): string {
  const mark = p.verified ? '✓' : '?'
  const name = p.handle ? `${p.handle}  ` : ''
  const ns = p.namespace ? `  ns=${p.namespace}` : ''
  const also = p.sources.length > 1 ? `  (also via ${p.sources.join(', ')})` : ''
  const paired = p.paired ? `  [paired: ${p.pair_ids.length} pair${p.pair_ids.length === 1 ? '' : 's'}]` : ''
  const why = p.verified ? '' : `  not verified${p.verify_error ? `: ${p.verify_error.code}` : ''}`
  return `  ${mark} ${name}${p.did}  ${p.url}${ns}${paired}${also}${why}`
}

export class FleetSyncPeersDiscoverCommand extends BaseCommand {
  static override paths = [['fleet', 'sync', 'peers', 'discover']]
  static override usage = Command.Usage({
    description: 'Find peer daemons by mDNS, did:web, a did:sync directory and static config',
    details: `
      Asks this daemon's discovery sources and lists what they found, grouped by method and
      merged by DID. A peer is marked ✓ (verified) only once its signed manifest was fetched from
      its URL and is signed by the DID it claims; an mDNS announcement or a directory entry alone
      proves nothing. Peers this instance already pulls from are marked [paired]. Discovery never
      creates a pair: the last line is the command that does.
    `,
    examples: [
      ['Try all methods', 'spl fleet sync peers discover'],
      ['LAN broadcast', 'spl fleet sync peers discover --method mdns'],
      ['A domain that publishes did.json', 'spl fleet sync peers discover --method did-web --domain alice.dev'],
      ['A namespace in a directory', 'spl fleet sync peers discover --method did-sync --namespace acme-corp'],
      ['Peers from config, as JSON', 'spl fleet sync peers discover --method static --json'],
    ],
  })
  method = Option.String('--method', { validator: t.isEnum(METHODS), description: 'mdns, did-web, did-sync or static (default: all)' })
  domain = Option.String('--domain', { description: 'did-web: the domain (or did:web DID) to resolve' })
  namespace = Option.String('--namespace', { description: 'did-sync: the namespace to list' })
  directory = Option.String('--directory', { description: 'did-sync: the directory URL (default: [sync.discovery] directory_url)' })
  timeout = Option.String('--timeout', {
    validator: t.cascade(t.isNumber(), [t.isInteger(), t.isInInclusiveRange(0, 30_000)]),
    description: 'How long to wait for answers, in ms (default 1500)',
  })

  protected async run() {
    const query = discoveryQuery({
      method: this.method,
      domain: this.domain,
      namespace: this.namespace,
      directory: this.directory,
      timeoutMs: this.timeout,
    })
    const res = await this.client().get<DiscoveryAnswer>(`/v1/discovery/peers${query}`)
    return this.render(res, () => {
      for (const method of res.methods) {
        const failure = res.failures.find((f) => f.method === method)
        const peers = res.peers.filter((p) => p.sources.includes(method))
        if (failure) {
          this.out(`${method}: ${failure.code}: ${failure.message}${failure.fix ? ` Fix: ${failure.fix}` : ''}`)
          continue
        }
        this.out(`${method} (${peers.length})`)
        if (peers.length === 0) this.out('  none found')
        for (const p of peers) this.out(peerLine(p))
      }
      const next = res.peers.find((p) => p.verified && !p.paired) ?? res.peers.find((p) => p.verified)
      this.out('')
      if (next) {
        this.out(`To pull a thread from ${next.handle ?? shortDid(next.did)}:`)
        this.out(`  spl fleet sync add ${next.did} <THREAD_ID>`)
      } else if (res.peers.length > 0) {
        this.out('No peer is verified yet: check one with spl discover --peer-url <URL>, or pass --peer-url to spl fleet sync add.')
      } else {
        this.out('No peers found. Peers announce on mDNS only with [sync.discovery] mdns_broadcast = true on their side.')
      }
      return undefined
    })
  }
}
