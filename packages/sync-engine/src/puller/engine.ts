import { SplError } from '@spl/identity'
import { PullError } from '@spl/transport'
import { silentLogger } from '../logger.js'
import { emptyTotals, newPair, type Pair, type PairInput, PairNotFoundError, pairIdFor, pairInputSchema, resolvePairRef } from '../pair.js'
import type { RejectionEntry } from '../stores.js'
import { type AuditReport, auditPair } from './audit.js'
import {
  DEFAULT_OPTIONS,
  type PairView,
  type PullProgress,
  type ResolvedComponents,
  type SyncEngineComponents,
  type SyncOptions,
} from './components.js'
import { progressBetween } from './failure.js'
import { engineLeaseHost, LeaseKeeper, ownPair } from './leasing.js'
import type { PairMetrics } from './metrics.js'
import { afterFailure, afterSuccess, type CycleContext } from './outcome.js'
import { catchUp, type DeliveryResult, ingestDelivered, type PullContext } from './pull-loop.js'
import { type RetryResult, retryRejected } from './retry.js'
import { newRuntime, type Runtime, viewOf } from './runtime.js'
import { Scheduler } from './scheduler.js'
import { lagSecondsOf } from './skew.js'
import { PeerWatches } from './watcher.js'

/** The sync engine: one loop per pair, driven by one scheduler. */
export class SyncEngine {
  readonly #c: ResolvedComponents
  readonly #o: Required<SyncOptions>
  readonly #pairs = new Map<string, Pair>()
  readonly #rt = new Map<string, Runtime>()
  readonly #scheduler: Scheduler
  readonly #pull: PullContext
  /** What a cycle's outcome changes (puller/outcome.ts). */
  readonly #cycles: CycleContext
  /** Caught-up pairs towards one peer wait together (null: each long-polls alone). */
  readonly #watches: PeerWatches | null
  /** Renews and balances this replica's pair leases (null: one process pulls every pair). */
  readonly #keeper: LeaseKeeper | null
  #started = false

  constructor(components: SyncEngineComponents, options: SyncOptions = {}) {
    this.#c = { clock: { now: Date.now }, logger: silentLogger, ...components }
    this.#o = { ...DEFAULT_OPTIONS, ...options }
    this.#scheduler = new Scheduler((id) => this.#cycle(id), this.#c.clock)
    this.#pull = { c: this.#c, o: this.#o, pairs: this.#pairs, runtime: (id) => this.#runtime(id) }
    this.#cycles = { ...this.#pull, scheduler: this.#scheduler, started: () => this.#started }
    const transport = this.#c.transport
    this.#watches = this.#o.watch && transport.watch ? new PeerWatches(this.#pull, (req) => transport.watch!(req)) : null
    this.#keeper = this.#c.leases
      ? new LeaseKeeper(
          this.#c.leases,
          engineLeaseHost(this.#pull, this.#scheduler, () => this.#started),
        )
      : null
  }

  /** Watch requests open now towards peers (one per peer however many pairs wait, up to 1,000 each). */
  get openWatches(): number {
    return this.#watches?.open ?? 0
  }

  /** This replica's name and the pairs whose leases it holds (null: no leases, this process pulls every pair). */
  get replica(): { id: string; pairs_held: number } | null {
    const leases = this.#c.leases
    return leases ? { id: leases.replicaId, pairs_held: leases.held } : null
  }

  /** Whether this process pulls the pair: always without leases, else while it holds the pair's lease. */
  pullsHere(pairId: string): boolean {
    return this.#c.leases?.holds(pairId) ?? true
  }

  #now(): number {
    return this.#c.clock.now()
  }

  #runtime(id: string): Runtime {
    let rt = this.#rt.get(id)
    if (!rt) {
      rt = newRuntime()
      this.#rt.set(id, rt)
    }
    return rt
  }

  /** Loads pairs and starts every live one. */
  async start(): Promise<void> {
    if (this.#started) return
    this.#started = true
    for (const p of await this.#c.pairs.listPairs()) {
      this.#pairs.set(p.pair_id, p)
      if (this.#keeper === null && p.state !== 'paused' && p.state !== 'stopped') this.#scheduler.schedule(p.pair_id, this.#now())
    }
    // Replicas: the pairs whose leases this one takes start as it takes them.
    await this.#keeper?.start()
  }

  /** Stops every loop; an open commit finishes first. */
  async stop(): Promise<void> {
    // Leases first: handed back, so the other replicas take these pairs at once.
    await this.#keeper?.stop()
    this.#started = false
    this.#scheduler.clear()
    const running: Promise<void>[] = []
    for (const rt of this.#rt.values()) {
      rt.abort?.abort()
      if (rt.running) running.push(rt.running)
    }
    await Promise.allSettled(running)
  }

  /** Creates a pair (or returns the live one for that peer and thread). */
  addPair(input: PairInput): Promise<{ pair: PairView; created: boolean }> {
    return this.#exclusive(() => this.#addPair(input))
  }

  async #addPair(input: PairInput): Promise<{ pair: PairView; created: boolean }> {
    const data = pairInputSchema.parse(input)
    const id = pairIdFor(this.#c.localDid, data.peer_did, data.thread_id)
    await ownPair(this.#pull, id)
    const existing = this.#pairs.get(id)
    if (existing && existing.state !== 'stopped') return { pair: this.#view(existing), created: false }
    const now = this.#now()
    const pair: Pair = {
      ...newPair(id, data.peer_did, data.peer_url, data.thread_id, now),
      mode: data.mode ?? 'longpoll',
      poll_interval_ms: data.poll_interval_ms ?? this.#o.defaultPollIntervalMs,
      // A removed pair that comes back keeps where it was.
      cursor: existing?.cursor ?? null,
      created_at: existing?.created_at ?? now,
      totals: existing?.totals ?? emptyTotals(),
    }
    await this.#save(pair)
    const rt = this.#runtime(id)
    rt.attempt = 0
    rt.backoffMs = 0
    if (this.#started) this.#scheduler.schedule(id, now)
    return { pair: this.#view(pair), created: true }
  }

  /** Every pair; stopped ones only with `all`. */
  listPairs(options: { all?: boolean } = {}): PairView[] {
    return [...this.#pairs.values()].filter((p) => options.all || p.state !== 'stopped').map((p) => this.#view(p))
  }

  /** One pair by id or unique prefix. */
  getPair(ref: string): PairView {
    return this.#view(resolvePairRef([...this.#pairs.values()], ref))
  }

  /** The live pair pulling `thread` from `peerDid`, if any. */
  findPair(peerDid: string, thread: string): PairView | undefined {
    const p = this.#pairs.get(pairIdFor(this.#c.localDid, peerDid, thread))
    return p && p.state !== 'stopped' ? this.#view(p) : undefined
  }

  /**
   * Records of `thread` from `peerDid` that came by another way than the pull (a relay's
   * deposit): checked, stored and counted as a page of the pair's pull, the cursor untouched.
   * `held` when the pair is paused (the records wait), `unsolicited` when no pair pulls them.
   */
  async deliver(
    peerDid: string,
    thread: string,
    records: readonly unknown[],
  ): Promise<({ status: 'ingested' } & DeliveryResult) | { status: 'held' | 'unsolicited' }> {
    const p = this.#pairs.get(pairIdFor(this.#c.localDid, peerDid, thread))
    if (!p || p.state === 'stopped') return { status: 'unsolicited' }
    if (p.state === 'paused') return { status: 'held' }
    // On a replica without the pair's lease the records are stored; its row is the holder's to write.
    return { status: 'ingested', ...(await ingestDelivered(this.#pull, p.pair_id, records, this.pullsHere(p.pair_id))) }
  }

  /**
   * Reconciles the pair's thread with its source (SPEC 13): what each side lacks, by range-based
   * set reconciliation over the reconcile door; with `heal`, pulls what this side lacks.
   */
  async audit(ref: string, options: { heal?: boolean } = {}): Promise<AuditReport> {
    const pair = resolvePairRef([...this.#pairs.values()], ref)
    const reconcile = this.#c.transport.reconcile?.bind(this.#c.transport)
    const threadIds = this.#c.threadIds
    if (!reconcile || !threadIds) {
      throw new SplError('AUDIT_UNAVAILABLE', 'this engine was built without a reconcile transport or threadIds', {
        status: 501,
        fix: 'give the SyncEngine a transport with reconcile (PeerClient) and threadIds (RecordStore.threadIds)',
      })
    }
    const report = await auditPair(this.#pull, pair, { reconcile, threadIds }, options.heal === true)
    const stillLacks = report.healed
      ? Math.max(0, report.puller_lacks.length - report.healed.stored - report.healed.duplicates)
      : report.puller_lacks.length
    this.#runtime(pair.pair_id).lastAudit = {
      at: report.at,
      puller_lacks: stillLacks,
      source_lacks: report.source_lacks.length,
      healed: report.healed !== null,
    }
    return report
  }

  /**
   * Takes in again what was rejected for a cause fixed on this side since (SPEC 7.2: a namespace
   * now created here), by id from each pair's source; the cursor does not move (puller/retry.ts).
   */
  retryRejected(): Promise<RetryResult> {
    return retryRejected(this.#pull, [...this.#pairs.values()])
  }

  /** The pair's last audit in this process, if any. */
  lastAuditOf(pairId: string): Runtime['lastAudit'] {
    return this.#rt.get(pairId)?.lastAudit ?? null
  }

  /** Stops pulling and keeps the cursor. */
  pausePair(ref: string): Promise<PairView> {
    return this.#exclusive(() => this.#transition(ref, 'paused'))
  }

  /** Resumes a paused (or failing) pair now. */
  resumePair(ref: string): Promise<PairView> {
    return this.#exclusive(() => this.#resume(ref))
  }

  async #resume(ref: string): Promise<PairView> {
    const pair = await this.#owned(ref)
    if (pair.state === 'stopped') throw new PairNotFoundError(ref)
    if (pair.state === 'paused')
      await this.#save({
        ...pair,
        state: pair.last_success_at ? 'running' : 'starting',
        updated_at: this.#now(),
      })
    return this.#kick(pair.pair_id)
  }

  /** Stops and removes a pair; the row stays as a `stopped` tombstone. */
  removePair(ref: string): Promise<PairView> {
    return this.#exclusive(() => this.#transition(ref, 'stopped'))
  }

  /** Pulls now, clearing any backoff wait. */
  kickPair(ref: string): Promise<PairView> {
    return this.#exclusive(() => this.#kick(ref))
  }

  async #kick(ref: string): Promise<PairView> {
    const pair = await this.#owned(ref)
    if (pair.state === 'paused' || pair.state === 'stopped') return this.#view(pair)
    const rt = this.#runtime(pair.pair_id)
    rt.backoffMs = 0
    rt.nextAttemptAt = null
    // The operator asked: what this pull runs into is news again, even the same failure.
    rt.sayNextFailure = true
    rt.pullNow = true
    if (rt.running) {
      // A long poll is waiting: end it so the next cycle pulls at once.
      rt.abort?.abort(new Error('kick'))
      await rt.running.catch(() => {})
    }
    if (this.#started) this.#scheduler.schedule(pair.pair_id, this.#now())
    return this.#view(this.#pairs.get(pair.pair_id)!)
  }

  /** Moves the cursor back to the start (after fixing what made records be rejected). */
  resetPair(ref: string): Promise<PairView> {
    return this.#exclusive(() => this.#reset(ref))
  }

  async #reset(ref: string): Promise<PairView> {
    const pair = await this.#owned(ref)
    if (pair.state === 'stopped') throw new PairNotFoundError(ref)
    const rt = this.#runtime(pair.pair_id)
    rt.abort?.abort(new Error('reset'))
    await rt.running?.catch(() => {})
    const current = this.#pairs.get(pair.pair_id)!
    // An operator's reset is a cursor reset like one a peer answers: it counts (SPEC 5.2 totals).
    const totals = { ...current.totals, cursor_resets: current.totals.cursor_resets + 1 }
    await this.#save({ ...current, cursor: null, caught_up_at: null, totals, updated_at: this.#now() })
    return this.#kick(pair.pair_id)
  }

  /** The most recent rejected records of a pair. */
  async rejections(ref: string, limit = 100): Promise<RejectionEntry[]> {
    const pair = resolvePairRef([...this.#pairs.values()], ref)
    return this.#c.pairs.listRejections(pair.pair_id, limit)
  }

  /** Live figures of a pair (rolling windows, latency), for stats and health. */
  metricsOf(pairId: string): PairMetrics {
    return this.#runtime(pairId).metrics
  }

  /** Estimated clock offset of the pair's peer (peer − local, ms), null before the first answer. */
  skewOf(pairId: string): number | null {
    const s = this.#rt.get(pairId)?.skewMs
    return s === undefined || s === null ? null : Math.round(s)
  }

  /** Resolves when the pair's next cycle has finished (caught up or failed). */
  waitForCycle(ref: string): Promise<void> {
    const pair = resolvePairRef([...this.#pairs.values()], ref)
    return new Promise((resolve) => this.#runtime(pair.pair_id).waiters.push(resolve))
  }

  /**
   * One catch-up pull of `thread` from a peer without a pair (`spl sync … from …`): pages until
   * the peer has nothing more, storing as it goes. The cursor is not kept.
   */
  async pullOnce(
    peer: { peerDid: string; peerUrl: string },
    thread: string,
    onProgress?: (p: PullProgress) => void,
  ): Promise<PullProgress> {
    const live = this.findPair(peer.peerDid, thread)
    if (live && live.state !== 'paused') {
      // A pair already pulls this: make it pull now and report what that cycle did.
      const before = live.totals
      await this.kickPair(live.pair_id)
      // After the kick: the aborted long poll's cycle has ended, so this waits for the new one.
      await this.waitForCycle(live.pair_id)
      const after = this.#pairs.get(live.pair_id)!
      const p = progressBetween(before, after)
      if (after.state === 'failing' && after.last_error) throw new PullError(after.last_error.code as never, after.last_error.message)
      onProgress?.(p)
      return p
    }
    const now = this.#now()
    const pair: Pair = {
      // Not a pair: an id of its own so the one-off pull never touches a pair row.
      ...newPair(pairIdFor(this.#c.localDid, peer.peerDid, `once:${thread}`), peer.peerDid, peer.peerUrl, thread, now),
      state: 'running',
      mode: 'poll',
      poll_interval_ms: this.#o.defaultPollIntervalMs,
      poll_only: true,
    }
    return catchUp(this.#pull, pair, new AbortController().signal, 'normal', onProgress, true)
  }

  /** Runs an operator's change of pairs outside the lease keeper's rounds (at once without leases). */
  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.#keeper ? this.#keeper.exclusive(fn) : fn()
  }

  /** The pair `ref` names, held by this replica and as stored now. */
  async #owned(ref: string): Promise<Pair> {
    const pair = resolvePairRef([...this.#pairs.values()], ref)
    await ownPair(this.#pull, pair.pair_id)
    return this.#pairs.get(pair.pair_id) ?? pair
  }

  #view(p: Pair): PairView {
    return viewOf(p, this.#runtime(p.pair_id))
  }

  async #save(pair: Pair): Promise<void> {
    await this.#c.pairs.savePair(pair)
    this.#pairs.set(pair.pair_id, pair)
  }

  async #transition(ref: string, state: 'paused' | 'stopped'): Promise<PairView> {
    const pair = await this.#owned(ref)
    if (pair.state === 'stopped') throw new PairNotFoundError(ref)
    this.#scheduler.cancel(pair.pair_id)
    const rt = this.#runtime(pair.pair_id)
    rt.abort?.abort(new Error(state))
    await rt.running?.catch(() => {})
    rt.nextAttemptAt = null
    const current = this.#pairs.get(pair.pair_id)!
    await this.#save({ ...current, state, updated_at: this.#now() })
    return this.#view(this.#pairs.get(pair.pair_id)!)
  }

  /** One scheduled cycle of a pair: catch up, then schedule the next one. */
  #cycle(id: string): void {
    const rt = this.#runtime(id)
    if (rt.running || !this.#started) return
    if (!this.pullsHere(id)) return
    const pair = this.#pairs.get(id)
    if (!pair || pair.state === 'paused' || pair.state === 'stopped') return
    const abort = new AbortController()
    rt.abort = abort
    rt.nextAttemptAt = null
    const longpoll = !rt.pullNow && pair.mode === 'longpoll' && !pair.poll_only && pair.caught_up_at !== null && pair.state === 'running'
    rt.pullNow = false
    const startedAt = this.#now()
    const watched = longpoll && this.#watches !== null && pair.cursor !== null && !this.#watches.unsupported(pair)
    const pull = watched ? this.#watched(pair, abort.signal) : catchUp(this.#pull, pair, abort.signal, longpoll ? 'longpoll' : 'normal')
    rt.running = pull
      .then(
        // The watch has its own check for a peer that answers at once (watcher.ts).
        (progress) => afterSuccess(this.#cycles, id, longpoll && !watched && progress.received === 0 ? this.#now() - startedAt : null),
        (err: unknown) => afterFailure(this.#cycles, id, err, abort.signal),
      )
      .finally(() => {
        rt.running = null
        rt.abort = null
        for (const w of rt.waiters.splice(0)) w()
      })
  }

  /** A caught-up pair's cycle through its peer's watch: its next page comes from there. */
  async #watched(pair: Pair, signal: AbortSignal) {
    const outcome = await this.#watches!.wait(pair, signal)
    if (outcome === 'fallback') return catchUp(this.#pull, pair, signal, 'longpoll')
    if (outcome === 'pull') return catchUp(this.#pull, pair, signal, 'normal')
    return catchUp(this.#pull, pair, signal, 'longpoll', undefined, false, outcome.page)
  }

  /** Lag in seconds (SPEC 4.2): 0 while caught up within the last interval, else time since caught up. */
  lagSeconds(pairId: string): number | null {
    const p = this.#pairs.get(pairId)
    return p ? lagSecondsOf(p, this.#now(), this.#o.longpollTimeoutMs) : null
  }
}
