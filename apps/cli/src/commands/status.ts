import { homePaths, readDaemonInfo } from '@spl/daemon/home'
import { SplClient } from '@spl/transport/client'
import { shortDid } from '@spl/transport/identity'
import { Command } from 'clipanion'
import { BaseCommand } from '../base.js'

interface PairOut {
  pair_id: string
  peer_did: string
  peer_url: string
  thread_id: string
  state: string
  last_error: { code: string } | null
}
interface StatsOut {
  rate_per_minute: number
  lag_seconds: number | null
}
interface HealthOut {
  links: {
    link_id: string
    peer_did: string
    peer_url: string
    state: string
    threads: string[]
    renewal_error: { code: string; message: string } | null
  }[]
  subscribers: {
    peer_did: string
    thread_id: string
    last_pull_at: number
    /** Pulling now (a long poll open, or answered lately and not hung up since); older daemons lack it. */
    live?: boolean
    records_served_last_minute: number
  }[]
  drift_alerts?: { pair_id: string; kind: string; detail: string }[]
}

/** A subscriber counts as a live (running) pair when it pulled within this window. */
const SUBSCRIBER_LIVE_MS = 120_000

async function handleOf(url: string): Promise<string | null> {
  try {
    const id = await new SplClient(url, undefined, 800).get<{ handle?: string | null }>('/v1/identity')
    return typeof id.handle === 'string' && id.handle ? id.handle : null
  } catch {
    return null
  }
}

export class StatusCommand extends BaseCommand {
  static override paths = [['status']]
  static override usage = Command.Usage({
    description: 'Is anything wrong right now? The daemon line and every pair on one line each',
    details: `
      \`←\` marks pairs this instance pulls; \`→\` marks peers pulling from it now (a long poll open,
      or a pull in the last 2 minutes and no hang-up since: a peer that paused its pair is gone at once).
      The count covers both directions, as \`pairs_total\` of GET /v1/sync/health does
      (\`pairs_pulled\` + \`pairs_served\` there); removed pairs are not counted.
      Exit 1 when the daemon is not running.
    `,
    examples: [
      ['At a glance', 'spl status'],
      ['For scripts', 'spl status --json'],
    ],
  })

  protected async run() {
    const api = this.client()
    let health: { did: string; version: string; uptime_s: number }
    try {
      health = await api.get('/health')
    } catch {
      const url = this.daemonUrl()
      return this.render(
        { object: 'status', running: false, url },
        `spl daemon is not running (expected at ${url}). Start it with: spl serve --daemon`,
        1,
      )
    }
    const [identity, threads, pairs, mesh, relay] = await Promise.all([
      api.get<{ handle: string | null; namespace: string }>('/v1/identity'),
      api.get<{ data: { records: number }[] }>('/v1/threads'),
      api.get<{ data: PairOut[] }>('/v1/sync/pairs'),
      api.get<HealthOut>('/v1/sync/health'),
      api.get<RelayOut>('/v1/relay'),
    ])
    const stats = await Promise.all(pairs.data.map((p) => api.get<StatsOut>(`/v1/sync/pairs/${p.pair_id}/stats`)))
    const handles = new Map<string, string | null>()
    await Promise.all(
      [...new Map(pairs.data.map((p) => [p.peer_did, p.peer_url])).entries()].map(async ([did, url]) =>
        handles.set(did, await handleOf(url)),
      ),
    )
    const now = Date.now()
    const name = (did: string) => handles.get(did) ?? shortDid(did)
    const lines = pairs.data.map((p, i) => {
      const s = stats[i]!
      const what =
        p.state === 'failing'
          ? `FAILING: ${p.last_error?.code ?? 'UNKNOWN'}`
          : p.state === 'paused'
            ? 'PAUSED'
            : `${s.rate_per_minute} rec/min, lag ${s.lag_seconds ?? 0}s`
      return {
        id: p.pair_id.slice(0, 8),
        direction: '←',
        peer: name(p.peer_did),
        peer_did: p.peer_did,
        thread: p.thread_id,
        state: p.state,
        what,
      }
    })
    const subs = mesh.subscribers.filter((s) => s.live ?? now - s.last_pull_at < SUBSCRIBER_LIVE_MS)
    const { pairIdFor } = subs.length ? await import('@spl/transport') : { pairIdFor: () => '' }
    for (const s of subs) {
      lines.push({
        id: pairIdFor(s.peer_did, health.did, s.thread_id).slice(0, 8),
        direction: '→',
        peer: shortDid(s.peer_did),
        peer_did: s.peer_did,
        thread: s.thread_id,
        state: 'running',
        what: `${s.records_served_last_minute} rec/min, lag 0s`,
      })
    }
    const counts: Record<string, number> = {}
    for (const l of lines) counts[l.state] = (counts[l.state] ?? 0) + 1
    const order = ['running', 'starting', 'failing', 'paused']
    const summary = order
      .filter((s) => counts[s])
      .map((s) => `${counts[s]} ${s}`)
      .join(', ')
    const records = threads.data.reduce((a, t) => a + t.records, 0)
    const daemon = {
      did: health.did,
      handle: identity.handle,
      namespace: identity.namespace,
      url: this.daemonUrl(),
      version: health.version,
      uptime_s: health.uptime_s,
      records_stored: records,
    }
    const links = mesh.links.filter((l) => l.state !== 'revoked')
    const json = {
      object: 'status',
      running: true,
      daemon,
      federation: { pairs: lines.length, by_state: counts, lines, links: mesh.links },
      relay,
    }
    return this.render(json, () => {
      const bind = readDaemonInfo(homePaths(this.env.home).runDir)?.host
      return this.lines([
        `spl ${health.version}  ${health.did}${identity.handle ? ` (${identity.handle})` : ''}`,
        `daemon ${daemon.url}${bind ? ` bound to ${bind}` : ''}, up ${health.uptime_s}s, ${records} record(s) stored`,
        '',
        `Federation (${lines.length} pair${lines.length === 1 ? '' : 's'}${summary ? `: ${summary}` : ''})`,
        ...lines.map((l) => `  ${l.id} ${l.direction} ${l.peer}  thread:${l.thread}  ${l.what}`),
        ...(links.length
          ? [
              '',
              `Peer links (${links.length})`,
              ...links.map(
                (l) =>
                  `  ${l.link_id} ${l.state.toUpperCase() === 'ACTIVE' ? 'active' : l.state.toUpperCase()}  ${name(l.peer_did)}  ${l.peer_url}  threads:${l.threads.join(',') || '-'}${l.renewal_error ? `  TOKEN RENEWAL FAILED: ${l.renewal_error.code}` : ''}`,
              ),
            ]
          : []),
        ...driftLines(mesh.drift_alerts ?? []),
        ...relayLines(relay),
      ])
    })
  }
}

/** The drift alerts of /v1/sync/health (stalled, lagging, rejecting, diverged), one line each. */
function driftLines(alerts: NonNullable<HealthOut['drift_alerts']>): string[] {
  if (alerts.length === 0) return []
  return ['', `Drift alerts (${alerts.length})`, ...alerts.map((a) => `  ${a.pair_id.slice(0, 8)} ${a.kind}: ${a.detail}`)]
}

/** What `GET /v1/relay` answers (SPEC 10). */
interface RelayOut {
  enabled: boolean
  mailboxes: { depth: number; deposits: number; deliveries: number; expired: number; refused: Record<string, number> } | null
  receiver: {
    registrations: { url: string; last_error: string | null }[]
    deposits: number
    stored: number
    refused: Record<string, number>
  }
  depositor: { deposits: number; records: number; failed: Record<string, number> }
}

const byCode = (m: Record<string, number>) =>
  Object.entries(m)
    .map(([c, n]) => `${c} ${n}`)
    .join(', ')

/** The Relay block: shown once this instance is a relay, registered at one, or deposited somewhere. */
function relayLines(r: RelayOut): string[] {
  const regs = r.receiver.registrations
  if (!r.enabled && regs.length === 0 && r.depositor.deposits === 0 && byCode(r.depositor.failed) === '') return []
  const out = ['', 'Relay']
  if (r.mailboxes) {
    const refused = byCode(r.mailboxes.refused)
    out.push(
      `  mailboxes: ${r.mailboxes.depth} waiting, ${r.mailboxes.deposits} deposited, ${r.mailboxes.deliveries} delivered, ${r.mailboxes.expired} expired${refused ? `; refused: ${refused}` : ''}`,
    )
  }
  for (const g of regs) out.push(`  collects from ${g.url}${g.last_error ? `  LAST ERROR: ${g.last_error}` : ''}`)
  if (regs.length) {
    const refused = byCode(r.receiver.refused)
    out.push(
      `  collected: ${r.receiver.deposits} deposit(s), ${r.receiver.stored} record(s) stored${refused ? `; refused: ${refused}` : ''}`,
    )
  }
  if (r.depositor.deposits || byCode(r.depositor.failed)) {
    const failed = byCode(r.depositor.failed)
    out.push(
      `  deposited for peers away: ${r.depositor.deposits} deposit(s), ${r.depositor.records} record(s)${failed ? `; failed: ${failed}` : ''}`,
    )
  }
  return out
}
