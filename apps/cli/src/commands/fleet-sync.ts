import { SplError, shortDid } from '@spl/transport/identity'
import { Command, Option } from 'clipanion'
import * as t from 'typanion'
import { adminCommand } from '../admin-command.js'
import { BaseCommand } from '../base.js'
import { type DiscoveryAnswer, discoveryQuery } from './peers.js'

interface PairOut {
  pair_id: string
  peer_did: string
  peer_url: string
  thread_id: string
  cursor: string | null
  state: string
  last_error: { code: string; message: string; at: number } | null
  mode: string
  poll_interval_ms: number
  poll_only: boolean
  notice?: { code: string; message: string; at: number } | null
  backoff_ms: number
  attempt: number
  next_attempt_at: number | null
  totals: Record<string, unknown>
  warning?: string
}

function ago(ms: number | null): string {
  if (ms === null) return '-'
  const s = Math.round((Date.now() - ms) / 1000)
  return s < 0 ? `in ${-s}s` : `${s}s ago`
}

function pairLine(p: PairOut): string {
  const err = p.state === 'failing' && p.last_error ? `  ${p.last_error.code}` : ''
  return `${p.pair_id}  ${p.state.padEnd(8)}  ← ${shortDid(p.peer_did)}  ${p.peer_url}  ${p.thread_id}${err}`
}

export class FleetSyncAddCommand extends BaseCommand {
  static override paths = [['fleet', 'sync', 'add']]
  static override usage = Command.Usage({
    description: 'Create a pair: this instance pulls THREAD_ID from PEER (a DID or a link id)',
    details: `
      A pair is one-way and per thread: records flow from the peer to this instance. For both
      directions, add a pair on each side. Creating the same pair twice returns the existing one.
      Without --peer-url the URL comes from an existing pair with that peer, else a peer link
      (whose token the pair then uses), else a discovery sighting whose manifest verified; with
      none of them the command fails with PEER_URL_REQUIRED (an unverified sighting:
      PEER_UNVERIFIED) and creates nothing.
    `,
    examples: [
      ['Pull th_federation_demo from A', 'spl fleet sync add --peer-url http://localhost:9200 "$DID_A" th_federation_demo'],
      ['A peer found by discovery (its URL comes from a verified manifest)', 'spl fleet sync add did:key:z6Mk… th_x'],
      [
        'Poll every 10 s instead of long-polling',
        'spl fleet sync add --peer-url http://host:9100 --mode poll --interval 10000 did:key:z6Mk… th_x',
      ],
    ],
  })
  peerUrl = Option.String('--peer-url', {
    description:
      "The peer daemon URL. Without it: an existing pair's URL with that peer, else its peer link's (and token), else a discovery sighting whose manifest verified (1.5 s); none: PEER_URL_REQUIRED",
  })
  mode = Option.String('--mode', {
    validator: t.isEnum(['longpoll', 'poll']),
    description: 'longpoll (default) or poll',
  })
  interval = Option.String('--interval', {
    validator: t.cascade(t.isNumber(), [t.isInteger(), t.isInInclusiveRange(100, 3_600_000)]),
    description: 'Poll interval in ms (poll mode)',
  })
  peerDid = Option.String({ name: 'PEER' })
  threadId = Option.String({ name: 'THREAD_ID' })

  protected async run() {
    // A link id names the peer too (SPEC 9.2): its DID and URL come from the link.
    if (/^fed_[0-9a-f]{16}$/.test(this.peerDid)) {
      const link = await this.client().get<{ peer_did: string; peer_url: string }>(`/v1/federation/links/${this.peerDid}`)
      this.peerDid = link.peer_did
      this.peerUrl ??= link.peer_url
    }
    const peerUrl = this.peerUrl ?? (await this.resolvePeerUrl())
    const body: Record<string, unknown> = {
      peer_did: this.peerDid,
      peer_url: peerUrl,
      thread_id: this.threadId,
    }
    if (this.mode) body['mode'] = this.mode
    if (this.interval !== undefined) body['poll_interval_ms'] = this.interval
    const pair = await this.client().post<PairOut>('/v1/sync/pairs', body)
    return this.render(pair, () => {
      this.out(`${pair.pair_id}  ${pair.state}  pulling ${pair.thread_id} from ${shortDid(pair.peer_did)} at ${pair.peer_url}`)
      if (pair.warning) this.err(`warning: ${pair.warning}`)
      return undefined
    })
  }

  /**
   * The peer's URL when --peer-url is not given: an existing pair with the peer, else a
   * discovery sighting whose manifest verified (an unverified one is refused: anyone on the LAN
   * can announce any DID).
   */
  private async resolvePeerUrl(): Promise<string> {
    const api = this.client()
    const pairs = await api.get<{ data: PairOut[] }>('/v1/sync/pairs?all=true')
    const known = pairs.data.find((p) => p.peer_did === this.peerDid)?.peer_url
    if (known) return known
    const links = await api.get<{ data: { peer_did: string; peer_url: string; state: string }[] }>('/v1/federation/links')
    const linked = links.data.find((l) => l.peer_did === this.peerDid && l.state !== 'revoked')
    if (linked) {
      this.err(`using the peer link's URL ${linked.peer_url} (and its token)`)
      return linked.peer_url
    }
    const found = await api.get<DiscoveryAnswer>(`/v1/discovery/peers${discoveryQuery({ did: this.peerDid, timeoutMs: 1500 })}`)
    const peer = found.peers.find((p) => p.did === this.peerDid || p.aka?.includes(this.peerDid))
    if (peer?.verified) {
      this.err(`resolved ${shortDid(peer.did)} to ${peer.url} via ${peer.sources.join(', ')} (manifest verified)`)
      // A did:web (or handle) names the peer; the pair holds its did:key, which signs its records.
      if (peer.did !== this.peerDid) {
        this.err(`${this.peerDid} is ${peer.did}`)
        this.peerDid = peer.did
      }
      return peer.url
    }
    if (peer) {
      const why = peer.verify_error ? ` (${peer.verify_error.code}: ${peer.verify_error.message})` : ''
      throw new SplError(
        'PEER_UNVERIFIED',
        `${this.peerDid} was found via ${peer.sources.join(', ')} at ${peer.url}, but its manifest does not prove that DID${why}: not using it.`,
        { fix: `check it with spl discover --peer-url ${peer.url}, or pass --peer-url with a URL you trust` },
      )
    }
    throw new SplError('PEER_URL_REQUIRED', `no pair and no discovery source knows a URL for ${this.peerDid}.`, {
      fix: 'pass --peer-url http://host:port (or see spl fleet sync peers discover)',
    })
  }
}

export class FleetSyncListCommand extends BaseCommand {
  static override paths = [['fleet', 'sync', 'list']]
  static override usage = Command.Usage({
    description: 'List pairs (stopped ones with --all)',
    examples: [
      ['List', 'spl fleet sync list'],
      ['Including removed pairs, as JSON', 'spl fleet sync list --all --json'],
    ],
  })
  all = Option.Boolean('--all', false, { description: 'Include stopped (removed) pairs' })

  protected async run() {
    const res = await this.client().get<{ data: PairOut[] }>(`/v1/sync/pairs${this.all ? '?all=true' : ''}`)
    return this.render(res.data, () => {
      if (res.data.length === 0) this.err('no pairs (create one with spl fleet sync add)')
      return this.lines(res.data.map(pairLine))
    })
  }
}

const pairPath = (id: string) => `/v1/sync/pairs/${encodeURIComponent(id)}`
const stateLine = (p: PairOut) => `${p.pair_id}  ${p.state}`

export const FleetSyncStatusCommand = adminCommand(
  {
    path: ['fleet', 'sync', 'status'],
    usage: {
      description: 'Show one pair: state, cursor, last error, backoff and counters',
      examples: [['By id prefix', 'spl fleet sync status abc1']],
    },
    call: (api, id) => api.get<PairOut>(pairPath(id)),
    human: (p) => [
      `pair       ${p.pair_id}`,
      `state      ${p.state}`,
      `peer       ${p.peer_did}`,
      `peer_url   ${p.peer_url}`,
      `thread     ${p.thread_id}`,
      `mode       ${p.poll_only ? 'poll (peer does not long-poll)' : p.mode}${p.mode === 'poll' || p.poll_only ? `, every ${p.poll_interval_ms} ms` : ''}`,
      `cursor     ${p.cursor ?? '(start)'}`,
      ...(p.last_error ? [`last_error ${p.last_error.code}: ${p.last_error.message} (${ago(p.last_error.at)})`] : []),
      ...(p.notice ? [`notice     ${p.notice.code}: ${p.notice.message} (${ago(p.notice.at)})`] : []),
      ...(p.state === 'failing' ? [`retry      attempt ${p.attempt}, backoff ${p.backoff_ms} ms, next ${ago(p.next_attempt_at)}`] : []),
      `totals     ${JSON.stringify(p.totals)}`,
    ],
  },
  'pair_id',
)

function pairAction(action: 'pause' | 'resume' | 'kick' | 'reset', description: string) {
  return adminCommand(
    {
      path: ['fleet', 'sync', action],
      usage: { description, examples: [[description, `spl fleet sync ${action} abc1`]] },
      call: (api, id) => api.post<PairOut>(`${pairPath(id)}/${action}`),
      human: stateLine,
    },
    'pair_id',
  )
}

export const FleetSyncPauseCommand = pairAction('pause', 'Pause a pair (keeps its cursor)')
export const FleetSyncResumeCommand = pairAction('resume', 'Resume a paused pair')
export const FleetSyncKickCommand = pairAction('kick', 'Pull now, clearing any backoff wait')
export const FleetSyncResetCommand = pairAction('reset', 'Move the cursor back to the start (re-pull; duplicates are no-ops)')

export const FleetSyncRemoveCommand = adminCommand(
  {
    path: ['fleet', 'sync', 'remove'],
    usage: {
      description: 'Stop and remove a pair (kept as a stopped tombstone)',
      examples: [['Remove', 'spl fleet sync remove abc1']],
    },
    call: (api, id) => api.delete<PairOut>(pairPath(id)),
    human: stateLine,
  },
  'pair_id',
)

interface RejectionsOut {
  pair_id: string
  totals: Record<string, number>
  data: { record_id: string | null; code: string; message: string; at: number; final?: boolean; fix?: string }[]
}

export const FleetSyncRejectionsCommand = adminCommand(
  {
    path: ['fleet', 'sync', 'rejections'],
    usage: {
      description: 'List records a pair refused, with the reason code',
      details: `
        Each rejection is either waiting for a fix on this side (NAMESPACE_REJECTED: create the
        namespace, and the records are taken in again by themselves, no reset needed) or final
        (forged, malformed, equivocating: it stays refused).
      `,
      examples: [
        ['Show', 'spl fleet sync rejections abc1'],
        ['As JSON (final: true|false, fix)', 'spl fleet sync rejections abc1 --json'],
      ],
    },
    call: (api, id) => api.get<RejectionsOut>(`${pairPath(id)}/rejections`),
    human: (res) => {
      const totals = Object.entries(res.totals)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ')
      return [
        `${res.pair_id}: ${totals || 'no rejections'}`,
        ...res.data.map(
          (r) =>
            `${new Date(r.at).toISOString()}  ${r.code}  ${r.record_id?.slice(0, 12) ?? '-'}  ${r.final === false ? `waiting (fix: ${r.fix})` : 'final'}  ${r.message}`,
        ),
      ]
    },
  },
  'pair_id',
)
