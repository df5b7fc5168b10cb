import crypto from 'node:crypto'
import type { SyncEngine } from '@spl/sync-engine'
import type { Logger } from './logger.js'

/**
 * The scheduled audit of SPEC 13: every caught-up pair is reconciled with its source once per
 * `sync.audit_interval`, each at its own offset in the interval (from its id), one at a time.
 * A pair is first made to pull (kick, then its cycle), so that what the audit finds missing is
 * what pulling did not bring, not what arrived a moment ago. The engine keeps the last result;
 * the `diverged` drift alert reads it.
 */
export class Auditor {
  #timer: NodeJS.Timeout | undefined
  #running = false
  readonly #startedAt: number
  /** Pairs whose last audit failed, and when: tried again after a tenth of the interval (10 min at most). */
  readonly #failedAt = new Map<string, number>()

  constructor(
    private readonly engine: SyncEngine,
    private readonly intervalMs: number,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.#startedAt = now()
  }

  /** The pair's first audit time: its stagger offset after the start. */
  #offset(pairId: string): number {
    return crypto.createHash('sha256').update(pairId).digest().readUInt32BE(0) % this.intervalMs
  }

  start(): void {
    const tick = Math.max(1_000, Math.min(60_000, Math.floor(this.intervalMs / 20)))
    this.#timer = setInterval(() => void this.tick(), tick)
    this.#timer.unref()
  }

  stop(): void {
    clearInterval(this.#timer)
  }

  /** Audits the pairs whose time has come (also called by tests). */
  async tick(): Promise<void> {
    if (this.#running) return
    this.#running = true
    try {
      for (const p of this.engine.listPairs()) {
        if (p.state !== 'running' || p.caught_up_at === null) continue
        // Replicas: the one that pulls the pair audits it.
        if (!this.engine.pullsHere(p.pair_id)) continue
        const last = this.engine.lastAuditOf(p.pair_id)
        const failed = this.#failedAt.get(p.pair_id)
        const due =
          failed !== undefined
            ? failed + Math.min(600_000, Math.floor(this.intervalMs / 10))
            : last
              ? last.at + this.intervalMs
              : this.#startedAt + this.#offset(p.pair_id)
        if (this.now() < due) continue
        try {
          const cycle = this.engine.waitForCycle(p.pair_id)
          await this.engine.kickPair(p.pair_id)
          await Promise.race([cycle, new Promise((r) => setTimeout(r, 35_000).unref())])
          const report = await this.engine.audit(p.pair_id)
          this.#failedAt.delete(p.pair_id)
          const log = report.puller_lacks.length > 0 ? this.logger.warn.bind(this.logger) : this.logger.info.bind(this.logger)
          log(
            {
              pair_id: p.pair_id,
              puller_lacks: report.puller_lacks.length,
              source_lacks: report.source_lacks.length,
              bytes: report.bytes_sent + report.bytes_received,
              ms: report.ms,
            },
            report.puller_lacks.length > 0
              ? 'audit: the source serves records this instance lacks (diverged)'
              : 'audit: in agreement with the source',
          )
        } catch (err) {
          this.#failedAt.set(p.pair_id, this.now())
          this.logger.warn({ err, pair_id: p.pair_id }, 'audit failed')
        }
      }
    } finally {
      this.#running = false
    }
  }
}
