import { Command, Option } from 'clipanion'
import { BaseCommand } from '../base.js'

// `spl fleet sync audit <pair> [--heal]` (SPEC 13): do this instance and the pair's source hold
// the same records of the thread? Exit 0 when they agree (or heal made them), 1 when this side lacks some.

interface AuditOut {
  pair_id: string
  peer_did: string
  thread_id: string
  puller_lacks: string[]
  source_lacks: string[]
  rounds: number
  requests: number
  bytes_sent: number
  bytes_received: number
  ms: number
  healed: { requested: number; received: number; stored: number; duplicates: number; rejected: number } | null
}

const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`

export class FleetSyncAuditCommand extends BaseCommand {
  static override paths = [['fleet', 'sync', 'audit']]
  static override usage = Command.Usage({
    description: "Prove that this instance holds what the pair's source serves it",
    details: `
      Compares the record ids this instance holds in the pair's thread with the ids the source
      would serve it, by range-based set reconciliation (fingerprints of sorted id ranges: the
      bytes grow with the differences, not with the thread) over the source's proof-checked
      reconcile door. Reports what this side lacks and what the source does not serve (records
      of this instance's own, or from elsewhere); records hidden from this instance are never
      named. With --heal the missing records are pulled and stored (verified, once; the
      pair's cursor is left alone). The daemon also audits each caught-up pair every
      [sync] audit_interval (24h) and raises a diverged drift alert when this side lacks some.
      Exit 0 when nothing is missing here (after --heal: when all came), 1 otherwise.
    `,
    examples: [
      ['Audit a pair', 'spl fleet sync audit 3f2a9c1b'],
      ['Audit and pull what is missing', 'spl fleet sync audit 3f2a9c1b --heal'],
      ['As JSON', 'spl fleet sync audit 3f2a9c1b --json'],
    ],
  })
  pair = Option.String({ name: 'pair' })
  heal = Option.Boolean('--heal', false, { description: 'Pull and store what this side lacks' })

  protected async run() {
    const r = await this.client().post<AuditOut>(`/v1/sync/pairs/${encodeURIComponent(this.pair)}/audit`, { heal: this.heal })
    const missing = r.healed ? r.puller_lacks.length - r.healed.stored - r.healed.duplicates : r.puller_lacks.length
    const code = missing > 0 ? 1 : 0
    return this.render(
      r,
      () =>
        this.lines([
          `audit of ${r.pair_id.slice(0, 8)} (${r.thread_id} from ${r.peer_did}): ${r.rounds} round(s), ${r.requests} request(s), ${kib(r.bytes_sent)} sent, ${kib(r.bytes_received)} received, ${r.ms} ms`,
          r.puller_lacks.length === 0
            ? 'this side lacks nothing the source serves it'
            : `this side lacks ${r.puller_lacks.length} record(s) the source serves: ${r.puller_lacks.slice(0, 10).join(', ')}${r.puller_lacks.length > 10 ? ', …' : ''}`,
          ...(r.source_lacks.length
            ? [`the source does not serve ${r.source_lacks.length} record(s) held here (this instance's own, or from elsewhere)`]
            : []),
          ...(r.healed
            ? [
                `healed: ${r.healed.stored} stored, ${r.healed.duplicates} duplicate(s), ${r.healed.rejected} rejected of ${r.healed.requested} asked`,
              ]
            : r.puller_lacks.length
              ? [`Fix: spl fleet sync audit ${r.pair_id.slice(0, 8)} --heal`]
              : []),
        ]),
      code,
    )
  }
}
