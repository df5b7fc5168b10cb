import type { Candidate, Checked, Rejection, SignatureVerifier } from '@spl/records'
import { type ChangesPage, type ChangesRequest, PullError } from '@spl/transport'
import type { Logger } from './logger.js'
import { silentLogger } from './logger.js'
import { PairMetrics } from './metrics.js'
import {
  backoffMs,
  emptyTotals,
  newPair,
  type Pair,
  type PairInput,
  PairNotFoundError,
  pairIdFor,
  pairInputSchema,
  resolvePairRef,
} from './pair.js'
import { Scheduler } from './scheduler.js'
import { type CommitResult, foldCommit, type PairStore, type RecordSink, type RejectionEntry } from './stores.js'

/** Pulls change-feed pages from a peer (PeerClient from @spl/transport fits). */
export interface PeerTransport {
  fetchChanges(req: ChangesRequest): Promise<ChangesPage>
}

/** The engine's collaborators, handed in rather than imported. */
export interface SyncEngineComponents {
  /** This instance's DID (pair ids derive from it). */
  localDid: string
  pairs: PairStore
  sink: RecordSink
  transport: PeerTransport
  verifier: SignatureVerifier
  /** Namespace check of SPEC 7.2: the first inactive ancestor for a record, or null when usable. */
  namespaces: { namespaceGate(record: Candidate['record']): string | null }
  clock?: { now(): number }
  logger?: Logger
  /** The bearer token of a peer link towards `peerDid`, when there is one. */
  credentials?: (peerDid: string) => string | null
  /** Called after records are stored (wake long polls, refresh registries). */
  onStored?: (thread: string, ids: string[]) => void
  /** Called with each stored record's delivery latency (for exporters such as Prometheus). */
  observeLatency?: (pairId: string, ms: number) => void
}

export interface SyncOptions {
  /** The namespace this instance reads as (its identity.namespace). */
  targetNamespace?: string
  pageLimit?: number
  longpollTimeoutMs?: number
  defaultPollIntervalMs?: number
  random?: () => number
}

/** A page once checked: its raw records are dropped (the checks hold what is needed, in order). */
type PageHead = Omit<ChangesPage, 'records'>

/** A change-feed page with the outcome of the store-free checks of its records. */
interface CheckedPage {
  page: PageHead
  feed: 'normal' | 'longpoll'
  checked: Checked[]
  known: Map<string, { redacted: boolean }>
}

/** Pages requested ahead of the one being committed. */
const LOOKAHEAD = 1

/** The id an envelope claims, if it has one (before anything about it is checked). */
function claimedId(raw: unknown): string | null {
  const id = raw !== null && typeof raw === 'object' ? (raw as { id?: unknown }).id : undefined
  return typeof id === 'string' && id.length === 64 ? id : null
}

/** Progress of a catch-up, page by page. */
export interface PullProgress {
  pages: number
  received: number
  stored: number
  duplicates: number
  rejected: number
  cursor: string | null
  hasMore: boolean
}

interface Runtime {
  attempt: number
  backoffMs: number
  nextAttemptAt: number | null
  abort: AbortController | null
  running: Promise<void> | null
  metrics: PairMetrics
  /** Clock offset estimate: peer clock − local clock, ms. */
  skewMs: number | null
  minRttMs: number
  waiters: (() => void)[]
}

/** A pair as the API shows it: the stored pair plus its live scheduling state. */
export interface PairView extends Pair {
  backoff_ms: number
  attempt: number
  next_attempt_at: number | null
}

/** The sync engine: one loop per pair, driven by one scheduler. */
export class SyncEngine {
  readonly #c: Required<Omit<SyncEngineComponents, 'credentials' | 'onStored' | 'observeLatency'>> &
    Pick<SyncEngineComponents, 'credentials' | 'onStored' | 'observeLatency'>
  readonly #o: Required<SyncOptions>
  readonly #pairs = new Map<string, Pair>()
  readonly #rt = new Map<string, Runtime>()
  readonly #scheduler: Scheduler
  #started = false

  constructor(components: SyncEngineComponents, options: SyncOptions = {}) {
    this.#c = { clock: { now: Date.now }, logger: silentLogger, ...components }
    this.#o = {
      targetNamespace: 'default',
      pageLimit: 1000,
      longpollTimeoutMs: 30_000,
      defaultPollIntervalMs: 5000,
      random: Math.random,
      ...options,
    }
    this.#scheduler = new Scheduler((id) => this.#cycle(id), this.#c.clock)
  }

  #now(): number {
    return this.#c.clock.now()
  }

  #runtime(id: string): Runtime {
    let rt = this.#rt.get(id)
    if (!rt) {
      rt = {
        attempt: 0,
        backoffMs: 0,
        nextAttemptAt: null,
        abort: null,
        running: null,
        metrics: new PairMetrics(),
        skewMs: null,
        minRttMs: Number.POSITIVE_INFINITY,
        waiters: [],
      }
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
      if (p.state !== 'paused' && p.state !== 'stopped') this.#scheduler.schedule(p.pair_id, this.#now())
    }
  }

  /** Stops every loop; an open commit finishes first. */
  async stop(): Promise<void> {
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
  async addPair(input: PairInput): Promise<{ pair: PairView; created: boolean }> {
    const data = pairInputSchema.parse(input)
    const id = pairIdFor(this.#c.localDid, data.peer_did, data.thread_id)
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

  /** Stops pulling and keeps the cursor. */
  async pausePair(ref: string): Promise<PairView> {
    return this.#transition(ref, 'paused')
  }

  /** Resumes a paused (or failing) pair now. */
  async resumePair(ref: string): Promise<PairView> {
    const pair = resolvePairRef([...this.#pairs.values()], ref)
    if (pair.state === 'stopped') throw new PairNotFoundError(ref)
    if (pair.state === 'paused')
      await this.#save({
        ...pair,
        state: pair.last_success_at ? 'running' : 'starting',
        updated_at: this.#now(),
      })
    return this.kickPair(pair.pair_id)
  }

  /** Stops and removes a pair; the row stays as a `stopped` tombstone. */
  async removePair(ref: string): Promise<PairView> {
    return this.#transition(ref, 'stopped')
  }

  /** Pulls now, clearing any backoff wait. */
  async kickPair(ref: string): Promise<PairView> {
    const pair = resolvePairRef([...this.#pairs.values()], ref)
    if (pair.state === 'paused' || pair.state === 'stopped') return this.#view(pair)
    const rt = this.#runtime(pair.pair_id)
    rt.backoffMs = 0
    rt.nextAttemptAt = null
    if (rt.running) {
      // A long poll is waiting: end it so the next cycle pulls at once.
      rt.abort?.abort(new Error('kick'))
      await rt.running.catch(() => {})
    }
    if (this.#started) this.#scheduler.schedule(pair.pair_id, this.#now())
    return this.#view(this.#pairs.get(pair.pair_id)!)
  }

  /** Moves the cursor back to the start (after fixing what made records be rejected). */
  async resetPair(ref: string): Promise<PairView> {
    const pair = resolvePairRef([...this.#pairs.values()], ref)
    if (pair.state === 'stopped') throw new PairNotFoundError(ref)
    const rt = this.#runtime(pair.pair_id)
    rt.abort?.abort(new Error('reset'))
    await rt.running?.catch(() => {})
    const current = this.#pairs.get(pair.pair_id)!
    await this.#save({ ...current, cursor: null, caught_up_at: null, updated_at: this.#now() })
    return this.kickPair(pair.pair_id)
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
      const p: PullProgress = {
        pages: after.totals.pulls - before.pulls,
        received: after.totals.records_received - before.records_received,
        stored: after.totals.records_stored - before.records_stored,
        duplicates: after.totals.duplicates - before.duplicates,
        rejected: sumValues(after.totals.rejected) - sumValues(before.rejected),
        cursor: after.cursor,
        hasMore: false,
      }
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
    return this.#catchUp(pair, new AbortController().signal, 'normal', onProgress, true)
  }

  #view(p: Pair): PairView {
    const rt = this.#runtime(p.pair_id)
    return {
      ...structuredClone(p),
      backoff_ms: rt.backoffMs,
      attempt: rt.attempt,
      next_attempt_at: rt.nextAttemptAt,
    }
  }

  async #save(pair: Pair): Promise<void> {
    await this.#c.pairs.savePair(pair)
    this.#pairs.set(pair.pair_id, pair)
  }

  async #transition(ref: string, state: 'paused' | 'stopped'): Promise<PairView> {
    const pair = resolvePairRef([...this.#pairs.values()], ref)
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
    const pair = this.#pairs.get(id)
    if (!pair || pair.state === 'paused' || pair.state === 'stopped') return
    const abort = new AbortController()
    rt.abort = abort
    rt.nextAttemptAt = null
    const longpoll = pair.mode === 'longpoll' && !pair.poll_only && pair.caught_up_at !== null && pair.state === 'running'
    rt.running = this.#catchUp(pair, abort.signal, longpoll ? 'longpoll' : 'normal')
      .then(
        () => this.#onSuccess(id),
        (err: unknown) => this.#onFailure(id, err, abort.signal),
      )
      .finally(() => {
        rt.running = null
        rt.abort = null
        for (const w of rt.waiters.splice(0)) w()
      })
  }

  #onSuccess(id: string): void {
    const rt = this.#runtime(id)
    rt.attempt = 0
    rt.backoffMs = 0
    const pair = this.#pairs.get(id)
    if (!pair || !this.#started) return
    const longpoll = pair.mode === 'longpoll' && !pair.poll_only
    const at = longpoll ? this.#now() : this.#now() + pair.poll_interval_ms
    rt.nextAttemptAt = longpoll ? null : at
    this.#scheduler.schedule(id, at)
  }

  async #onFailure(id: string, err: unknown, signal: AbortSignal): Promise<void> {
    if (signal.aborted) {
      // Paused, removed, reset, kicked or stopping: whoever aborted decides what happens next.
      return
    }
    const pair = this.#pairs.get(id)
    if (!pair) return
    const rt = this.#runtime(id)
    const now = this.#now()
    const pe = err instanceof PullError ? err : null
    if (!pe) this.#c.logger.error({ err, pair_id: id }, 'pull failed unexpectedly')
    // A peer that answers feed=longpoll with 400 only does `normal`: remember, retry at once.
    if (pe?.httpStatus === 400 && pe.remoteCode !== 'INVALID_CURSOR' && !pair.poll_only && pair.mode === 'longpoll') {
      await this.#save({ ...pair, poll_only: true, updated_at: now })
      this.#c.logger.info({ pair_id: id }, 'peer does not long-poll; polling instead')
      if (this.#started) this.#scheduler.schedule(id, now)
      return
    }
    rt.attempt++
    rt.backoffMs = backoffMs(rt.attempt, this.#o.random)
    rt.nextAttemptAt = now + rt.backoffMs
    rt.metrics.errors.add(1, now)
    const last_error = {
      code: pe ? pe.pullCode : ('INTERNAL' as const),
      message: pe ? `${pe.message}; ${pe.fix ?? ''}`.replace(/; $/, '') : err instanceof Error ? err.message : String(err),
      at: now,
    }
    try {
      await this.#save({ ...this.#pairs.get(id)!, state: 'failing', last_error, updated_at: now })
    } catch (saveErr) {
      this.#c.logger.error({ err: saveErr, pair_id: id }, 'could not save pair state')
    }
    this.#c.logger.warn({ pair_id: id, code: last_error.code, retry_in_ms: rt.backoffMs }, last_error.message)
    if (this.#started) this.#scheduler.schedule(id, rt.nextAttemptAt)
  }

  #request(pair: Pair, cursor: string | null, feed: 'normal' | 'longpoll', signal: AbortSignal): Promise<ChangesPage> {
    return this.#c.transport.fetchChanges({
      peerUrl: pair.peer_url,
      peerDid: pair.peer_did,
      thread: pair.thread_id,
      cursor,
      limit: this.#o.pageLimit,
      feed,
      timeoutMs: this.#o.longpollTimeoutMs,
      targetNamespace: this.#o.targetNamespace,
      bearer: this.#c.credentials?.(pair.peer_did) ?? null,
      signal,
    })
  }

  /**
   * Pages until the peer has nothing more. The next page is requested while the current one
   * is verified and committed, so the network and the CPU work overlap.
   */
  async #catchUp(
    start: Pair,
    signal: AbortSignal,
    firstFeed: 'normal' | 'longpoll',
    onProgress?: (p: PullProgress) => void,
    transient = false,
  ): Promise<PullProgress> {
    const progress: PullProgress = {
      pages: 0,
      received: 0,
      stored: 0,
      duplicates: 0,
      rejected: 0,
      cursor: start.cursor,
      hasMore: true,
    }
    let pair = start
    // Pages stream in ahead of the commits: as soon as a page arrives, the next one is requested
    // (up to LOOKAHEAD pages ahead), and each page's records are checked (schema, hash, and the
    // signature on the verifier's threads) while earlier pages commit: network, verification and
    // SQLite overlap.
    const queue: Promise<CheckedPage>[] = []
    let stopFetching = false
    // A cursor the source has more after, not requested yet because the queue was full.
    let paused: string | null = null
    const fetchNext = (cursor: string | null, feed: 'normal' | 'longpoll') => {
      const p = this.#request(pair, cursor, feed, signal).then(async (page) => {
        if (page.has_more && !stopFetching && !(page.next_cursor === cursor && page.records.length === 0)) {
          if (queue.length < LOOKAHEAD) fetchNext(page.next_cursor, 'normal')
          else paused = page.next_cursor
        }
        const ids = page.records.map(claimedId).filter((id): id is string => id !== null)
        const [checked, known] = await Promise.all([this.#c.verifier.checkMany(page.records, pair.thread_id), this.#c.sink.known(ids)])
        // The parsed page can go now, while young: only the checked records wait for the commit.
        const { records: _, ...head } = page
        return { page: head, feed, checked, known }
      })
      p.catch(() => {}) // surfaced when awaited
      queue.push(p)
    }
    fetchNext(pair.cursor, firstFeed)
    try {
      while (queue.length > 0) {
        const { page, feed, checked, known }: CheckedPage = await queue.shift()!
        if (signal.aborted) throw signal.reason ?? new Error('aborted')
        if (page.has_more && page.next_cursor === pair.cursor && checked.length === 0) {
          // A source that always says "more" without moving would make us spin: treat it as an error.
          throw new PullError('PARSE_ERROR', 'the peer answered has_more without moving the cursor')
        }
        if (paused !== null && queue.length < LOOKAHEAD) {
          const cursor = paused
          paused = null
          fetchNext(cursor, 'normal')
        }
        const { next, result, rejectedBefore, duplicates } = await this.#ingestPage(pair, page, feed, checked, known, transient)
        pair = next
        progress.pages++
        progress.received += checked.length
        progress.stored += result.stored
        progress.duplicates += duplicates
        progress.rejected += rejectedBefore + result.rejected.length
        progress.cursor = page.next_cursor
        progress.hasMore = page.has_more
        onProgress?.({ ...progress })
      }
    } finally {
      stopFetching = true
    }
    return progress
  }

  async #ingestPage(
    pair: Pair,
    page: PageHead,
    feed: 'normal' | 'longpoll',
    checked: readonly Checked[],
    known: ReadonlyMap<string, { redacted: boolean }>,
    transient: boolean,
  ): Promise<{ next: Pair; result: CommitResult; rejectedBefore: number; duplicates: number }> {
    const rt = this.#runtime(pair.pair_id)
    const rejected: Rejection[] = []
    const accepted: Candidate[] = []
    let preDuplicates = 0
    for (const c of checked) {
      if (!c.ok) {
        // A stored record's copy whose signature fails is still the record we have: a duplicate.
        if (c.code === 'SIGNATURE_INVALID' && c.id !== null && known.get(c.id)?.redacted === false) preDuplicates++
        else rejected.push(c)
        continue
      }
      const k = known.get(c.id)
      if (k && !(k.redacted && !c.redacted)) {
        preDuplicates++
        continue
      }
      const bad = c.redacted ? null : this.#c.namespaces.namespaceGate(c.record)
      if (bad !== null) {
        rejected.push({
          ok: false,
          code: 'NAMESPACE_REJECTED',
          message: `NAMESPACE_REJECTED: ancestor '${bad}' is not Active in the registry. Fix: spl namespace create ${bad}`,
          id: c.id,
        })
        continue
      }
      accepted.push(c)
    }
    const now = this.#now()
    // Clock skew (peer − local), Cristian-style: from the answer with the shortest round trip,
    // server_time is about half a round trip before it arrived. Long-poll round trips include the
    // wait, so only answers to `normal` requests are samples.
    const rtt = page.receivedAt - page.sentAt
    if (feed === 'normal' && rtt <= rt.minRttMs) {
      rt.minRttMs = Math.max(0, rtt)
      rt.skewMs = page.server_time - (page.sentAt + rtt / 2)
    }
    const totals = structuredClone(pair.totals)
    totals.pulls++
    totals.records_received += checked.length
    totals.bytes_received += page.bytes
    totals.duplicates += preDuplicates
    if (page.cursor_reset) totals.cursor_resets++
    for (const r of rejected) totals.rejected[r.code] = (totals.rejected[r.code] ?? 0) + 1
    const next: Pair = {
      ...pair,
      cursor: page.next_cursor,
      state: 'running',
      last_error: null,
      updated_at: now,
      last_success_at: now,
      caught_up_at: page.has_more ? pair.caught_up_at : now,
      totals,
    }
    // An empty answer that moves nothing (an idle long poll ending) needs no transaction: the
    // counters ride along with the next commit. A state change is still written at once.
    const idle = checked.length === 0 && page.next_cursor === pair.cursor && !page.cursor_reset
    let result: CommitResult = { stored: 0, duplicates: 0, rejected: [], storedIds: [] }
    if (!idle) result = await this.#c.sink.commit({ pair, accepted, rejected, next, now })
    else if (!transient && (pair.state !== 'running' || pair.last_error !== null)) await this.#c.pairs.savePair(next)
    const committed = foldCommit(next, result)
    const m = rt.metrics
    const committedAt = this.#now()
    if (result.stored > 0 || page.next_cursor !== pair.cursor) m.lastProgressAt = committedAt
    m.sourceHadMore = page.has_more
    m.stored.add(result.stored, committedAt)
    m.rejections.add(rejected.length + result.rejected.length, committedAt)
    if (result.storedIds.length > 0) {
      const storedSet = new Set(result.storedIds)
      const skew = rt.skewMs ?? 0
      for (const c of accepted) {
        if (!storedSet.has(c.id) || c.storedAt === null) continue
        const latency = Math.max(0, committedAt - (c.storedAt - skew))
        m.latency.add(latency, committedAt)
        this.#c.observeLatency?.(pair.pair_id, latency)
      }
      this.#c.onStored?.(pair.thread_id, result.storedIds)
    }
    if (!transient) {
      const live = this.#pairs.get(pair.pair_id)
      // Only a live pair's row changes; a pause that raced with this page keeps its state.
      if (live && live.state !== 'paused' && live.state !== 'stopped') this.#pairs.set(pair.pair_id, committed)
      else if (live) this.#pairs.set(pair.pair_id, { ...committed, state: live.state })
    }
    return {
      next: committed,
      result,
      rejectedBefore: rejected.length,
      duplicates: preDuplicates + result.duplicates,
    }
  }

  /** Lag in seconds (SPEC 4.2): 0 while caught up within the last interval, else time since caught up. */
  lagSeconds(pairId: string): number | null {
    const p = this.#pairs.get(pairId)
    if (!p) return null
    const now = this.#now()
    if (p.caught_up_at === null) return p.state === 'starting' ? 0 : Math.round((now - p.created_at) / 1000)
    const interval = p.mode === 'longpoll' && !p.poll_only ? this.#o.longpollTimeoutMs + 5000 : p.poll_interval_ms * 2
    if (p.state === 'running' && now - (p.last_success_at ?? 0) <= interval && p.caught_up_at === p.last_success_at) return 0
    return Math.max(0, Math.round((now - p.caught_up_at) / 1000))
  }
}

function sumValues(o: Record<string, number>): number {
  return Object.values(o).reduce((a, b) => a + b, 0)
}

/** Creates a sync engine from its components. */
export function createSyncEngine(components: SyncEngineComponents, options: SyncOptions = {}): SyncEngine {
  return new SyncEngine(components, options)
}
