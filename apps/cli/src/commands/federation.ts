import { setTimeout as sleep } from 'node:timers/promises'
import { SplError, shortDid } from '@spl/transport/identity'
import { Command, Option } from 'clipanion'
import { adminCommand } from '../admin-command.js'
import { BaseCommand, EXIT } from '../base.js'

interface TokenOut {
  jti: string
  scope: string
  expires_at: string
}

/** A peer link as the daemon shows it (never a token, only its id). */
export interface LinkOut {
  link_id: string
  peer_did: string
  peer_url: string
  role: 'initiator' | 'responder'
  state: string
  threads: string[]
  local_namespace: string | null
  peer_namespace: string | null
  tokens: { issued: TokenOut; held: TokenOut | null }
  renewal_error: { code: string; message: string; at: number } | null
  revoked_by: 'local' | 'peer' | null
  pair_ids: string[]
  created_at: number
  notified?: boolean
  notice?: string
}

interface PairOutcomeOut {
  outcome: 'linked' | 'pending' | 'existing' | 'rejected'
  link: LinkOut | null
  steps: string[]
  pairs: string[]
}

interface RequestOut {
  link_id: string
  initiator_did: string
  initiator_url: string
  threads: string[]
  namespace_map: { local: string; peer: string }[]
  created_at: number
  expires_at: number
  state: string
}

/** `--map local:peer` → the body's namespace_map entry. */
function parseMaps(maps: string[] | undefined): { local: string; peer: string }[] {
  return (maps ?? []).map((m) => {
    const [local, peer, ...rest] = m.split(':')
    if (!local || !peer || rest.length) {
      throw new SplError('INVALID_ARGUMENT', `--map ${m} is not local:peer`, {
        fix: "--map acme:partner (this side's namespace, then the peer's)",
      })
    }
    return { local, peer }
  })
}

const linkPath = (ref: string) => `/v1/federation/links/${encodeURIComponent(ref)}`

function linkLines(l: LinkOut): string[] {
  const held = l.tokens.held
  return [
    `link        ${l.link_id}`,
    `state       ${l.state}${l.revoked_by ? ` (by ${l.revoked_by === 'local' ? 'this instance' : 'the peer'})` : ''}`,
    `peer        ${l.peer_did}`,
    `peer_url    ${l.peer_url}`,
    `role        ${l.role}`,
    `threads     ${l.threads.join(', ') || '-'}`,
    `namespaces  ${l.local_namespace ? `peer bound to ${l.local_namespace} here` : 'no mapping here'}${l.peer_namespace ? `; this instance reads as ${l.peer_namespace} there` : ''}`,
    `issued      token ${l.tokens.issued.jti}  scope ${l.tokens.issued.scope}  expires ${l.tokens.issued.expires_at}`,
    `held        ${held ? `token ${held.jti}  scope ${held.scope}  expires ${held.expires_at}` : '-'}`,
    ...(l.renewal_error ? [`renewal     FAILED ${l.renewal_error.code}: ${l.renewal_error.message}`] : []),
    `pairs       ${l.pair_ids.join(', ') || '-'}`,
  ]
}

const linkLine = (l: LinkOut) =>
  `${l.link_id}  ${l.state.padEnd(12)}  ${shortDid(l.peer_did)}  ${l.peer_url}  ${l.threads.join(',') || '-'}${l.renewal_error ? `  RENEWAL FAILED: ${l.renewal_error.code}` : ''}`

export class FederationPairCommand extends BaseCommand {
  static override paths = [['federation', 'pair']]
  static override usage = Command.Usage({
    description: 'Pair with a peer daemon in one command: manifest, handshake, tokens, pairs both ways',
    details: `
      Fetches and verifies the peer's signed manifest, sends a pairing request signed with
      SPL-Proof carrying the token this instance issues to the peer, and, once the peer accepts,
      stores the link with the peer's token, records it on th_federation_pairs and makes one
      pull pair per --thread on each side, so records flow both ways at once.

      The peer decides by its federation.accept_pair_requests: "invite" (the default: pass the
      code its operator made with spl federation invite), "manual" (its operator approves with
      spl federation approve; this command asks every 2 s for up to 60 s, then tells you how to
      resume), "auto", or "never". Running it again for an existing link changes nothing and
      prints the link.
    `,
    examples: [
      ['With an invite code', 'spl federation pair http://10.0.0.5:9250 --thread th_a --invite spl-…'],
      ['Map a namespace on both sides', 'spl federation pair https://hub.example.com --thread th_ops --map acme:partner'],
      ['As JSON', 'spl federation pair http://localhost:9250 --thread th_a --json'],
    ],
  })
  peerUrl = Option.String({ name: 'PEER_URL' })
  threads = Option.Array('--thread', { description: 'A thread to sync both ways (repeatable)' })
  maps = Option.Array('--map', { description: 'local:peer namespace mapping (SPEC 9.3)' })
  invite = Option.String('--invite', { description: "The code from the peer's spl federation invite" })
  wait = Option.String('--wait', '60', { description: 'Seconds to wait for a held request (0: do not wait)' })

  protected async run() {
    const api = this.client()
    const waitS = Number(this.wait)
    if (!Number.isInteger(waitS) || waitS < 0 || waitS > 3600)
      throw new SplError('INVALID_ARGUMENT', `--wait ${this.wait} is not a number of seconds (0-3600)`, { fix: '--wait 60' })
    const body = {
      peer_url: this.peerUrl,
      threads: this.threads ?? [],
      namespace_map: parseMaps(this.maps),
      ...(this.invite ? { invite: this.invite } : {}),
    }
    let res = await api.post<PairOutcomeOut>('/v1/federation/links', body)
    const printed = new Set<string>()
    const show = () => {
      if (this.json) return
      for (const step of res.steps)
        if (!printed.has(step)) {
          printed.add(step)
          this.err(`» ${step}`)
        }
    }
    show()
    const deadline = Date.now() + waitS * 1000
    while (res.outcome === 'pending' && res.link && Date.now() < deadline) {
      await sleep(2000)
      res = await api.post<PairOutcomeOut>(`${linkPath(res.link.link_id)}/poll`, {})
      if (res.outcome !== 'pending') show()
    }
    if (res.outcome === 'rejected') {
      show()
      throw new SplError('PAIR_REJECTED', `the peer at ${this.peerUrl} refused the pairing request.`, {
        fix: "ask the peer's operator, or for an invite code",
      })
    }
    return this.render(res, () => {
      const l = res.link
      if (res.outcome === 'pending' && l) {
        this.out(`${l.link_id}  pending  the peer's operator has not decided yet`)
        this.err(
          `Resume with the same command (it asks again without a new request), or ask them to run: spl federation approve ${l.link_id}`,
        )
        return EXIT.OK
      }
      if (l) this.out(`${l.link_id}  ${l.state}  ${l.peer_did}  ${l.peer_url}  threads: ${l.threads.join(', ') || '-'}`)
      return EXIT.OK
    })
  }
}

export class FederationInviteCommand extends BaseCommand {
  static override paths = [['federation', 'invite']]
  static override usage = Command.Usage({
    description: 'Make a single-use invite code for a peer to pair with this instance',
    details:
      'Prints the code and the one-line command for the other operator to paste. The code is used once and expires (24 h by default).',
    examples: [
      ['For thread th_a, valid 24 h', 'spl federation invite --thread th_a'],
      ['Valid 1 h, with a mapping', 'spl federation invite --thread th_ops --map partner:acme --expires 1h'],
    ],
  })
  threads = Option.Array('--thread', { description: 'Threads the invite covers (repeatable; none: any)' })
  maps = Option.Array('--map', { description: 'local:peer namespace mapping, from this side' })
  expires = Option.String('--expires', { description: 'How long the code is valid: 10m, 24h, 7d (default 24h)' })

  protected async run() {
    const res = await this.client().post<{ code: string; expires_at: string; command: string }>('/v1/federation/invites', {
      threads: this.threads ?? [],
      namespace_map: parseMaps(this.maps),
      ...(this.expires ? { expires: this.expires } : {}),
    })
    return this.render(res, [
      `invite code  ${res.code}  (single use, expires ${res.expires_at})`,
      '',
      'On the other instance, run:',
      `  ${res.command}`,
    ])
  }
}

export class FederationRequestsCommand extends BaseCommand {
  static override paths = [['federation', 'requests']]
  static override usage = Command.Usage({
    description: 'List held pairing requests (they expire after 7 days)',
    examples: [
      ['List', 'spl federation requests'],
      ['As JSON', 'spl federation requests --json'],
    ],
  })
  protected async run() {
    const res = await this.client().get<{ data: RequestOut[] }>('/v1/federation/requests')
    return this.render(res.data, () => {
      if (res.data.length === 0) this.err('no held pairing requests')
      for (const r of res.data) {
        this.out(
          `${r.link_id}  ${r.initiator_did}  ${r.initiator_url}  threads: ${r.threads.join(',') || '-'}${r.namespace_map[0] ? `  binds it here to namespace ${r.namespace_map[0].peer}` : ''}  expires ${new Date(r.expires_at).toISOString()}`,
        )
      }
      if (res.data.length) this.err('Decide with spl federation approve|reject <id>, or spl federation block <DID>')
      return undefined
    })
  }
}

function decision(action: 'approve' | 'reject', description: string) {
  return adminCommand(
    {
      path: ['federation', action],
      usage: { description, examples: [[description, `spl federation ${action} fed_0123456789abcdef`]] },
      call: (api, id) => api.post<LinkOut & RequestOut>(`/v1/federation/requests/${encodeURIComponent(id)}/${action}`),
      human: (r) =>
        action === 'approve' ? `${r.link_id}  ${r.state}  ${r.peer_did}  pairs: ${r.pair_ids.join(', ') || '-'}` : `${r.link_id}  rejected`,
    },
    'REQUEST_ID',
  )
}
export const FederationApproveCommand = decision('approve', 'Approve a held pairing request')
export const FederationRejectCommand = decision('reject', 'Reject a held pairing request')

export const FederationBlockCommand = adminCommand(
  {
    path: ['federation', 'block'],
    usage: {
      description: 'Block a DID: its pairing requests are refused at once and never listed (unlike reject, it persists)',
      examples: [['Block', 'spl federation block did:key:z6Mk…']],
    },
    call: (api, did) => api.post<{ did: string }>('/v1/federation/blocklist', { did }),
    human: (r) => `${r.did}  blocked`,
  },
  'DID',
)

export const FederationUnblockCommand = adminCommand(
  {
    path: ['federation', 'unblock'],
    usage: { description: 'Take a DID off the blocklist', examples: [['Unblock', 'spl federation unblock did:key:z6Mk…']] },
    call: (api, did) => api.delete<{ did: string }>(`/v1/federation/blocklist/${encodeURIComponent(did)}`),
    human: (r) => `${r.did}  unblocked`,
  },
  'DID',
)

export const FederationBlocklistCommand = adminCommand({
  path: ['federation', 'blocklist'],
  usage: { description: 'List blocked DIDs', examples: [['List', 'spl federation blocklist']] },
  call: (api) => api.get<{ data: { did: string; blocked_at: number }[] }>('/v1/federation/blocklist'),
  human: (r) => (r.data.length ? r.data.map((b) => `${b.did}  since ${new Date(b.blocked_at).toISOString()}`) : ['no blocked DIDs']),
  json: (r) => r.data,
})

export const FederationListCommand = adminCommand({
  path: ['federation', 'list'],
  usage: {
    description: 'List peer links',
    examples: [
      ['List', 'spl federation list'],
      ['As JSON', 'spl federation list --json'],
    ],
  },
  call: (api) => api.get<{ data: LinkOut[] }>('/v1/federation/links'),
  human: (r) => (r.data.length ? r.data.map(linkLine) : ['no peer links (make one with spl federation pair <peer-url>)']),
  json: (r) => r.data,
})

export const FederationShowCommand = adminCommand(
  {
    path: ['federation', 'show'],
    usage: {
      description: 'Show one link: state, token ids, scopes and expiry (never a token), pairs',
      examples: [['By id, peer DID or URL', 'spl federation show fed_0123456789abcdef']],
    },
    call: (api, ref) => api.get<LinkOut>(linkPath(ref)),
    human: linkLines,
  },
  'LINK',
)

function linkAction(action: 'pause' | 'resume' | 'revoke' | 'refresh', description: string) {
  return adminCommand(
    {
      path: ['federation', action],
      usage: { description, examples: [[description, `spl federation ${action} fed_0123456789abcdef`]] },
      call: (api, ref) => api.post<LinkOut>(`${linkPath(ref)}/${action}`),
      human: (l) => [
        `${l.link_id}  ${l.state}`,
        ...(action === 'revoke' ? [l.notified ? 'the peer was told' : `the peer was not told: ${l.notice ?? ''}`] : []),
        ...(action === 'refresh' ? [l.tokens.held ? `held token ${l.tokens.held.jti} expires ${l.tokens.held.expires_at}` : ''] : []),
      ],
    },
    'LINK',
  )
}
export const FederationPauseCommand = linkAction('pause', 'Pause a link: its pairs stop pulling (tokens stay valid)')
export const FederationResumeCommand = linkAction('resume', 'Resume a paused link')
export const FederationRevokeCommand = linkAction(
  'revoke',
  "Revoke a link for good: the peer's token is refused, pairs stop, the peer is told",
)
export const FederationRefreshCommand = linkAction('refresh', 'Renew the token the peer issued to this instance now')
