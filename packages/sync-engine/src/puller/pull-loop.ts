import type { Checked, KnownId } from '@spl/records'
import { type ChangesPage, MAX_CHANGES_BYTES, PullError } from '@spl/transport'
import type { Pair } from '../pair.js'
import type { CommitResult } from '../stores.js'
import type { PullProgress, ResolvedComponents, SyncOptions } from './components.js'
import { checkIncoming } from './incoming.js'
import { type ClassifiedPage, claimedId, classifyPage, type PageHead, pairAfterPage } from './page.js'
import { type Runtime, underCommitLock } from './runtime.js'
import { sampleSkew } from './skew.js'

/** What the pull loop shares with the engine that runs it. */
export interface PullContext {
  c: ResolvedComponents
  o: Required<SyncOptions>
  /** The engine's live pairs: a committed page updates its pair here. */
  pairs: Map<string, Pair>
  runtime(pairId: string): Runtime
}

/** A change-feed page with the outcome of the store-free checks of its records. */
interface CheckedPage {
  page: PageHead
  feed: 'normal' | 'longpoll'
  checked: Checked[]
  known: Map<string, KnownId>
}

/**
 * Pages requested ahead of the one being committed: with two, the next page's verifications are
 * queued behind the current one's, so the threadpool does not wait for a round trip (pages of 500:
 * at most ~1,500 records in flight, fewer than the 2,000 of one page of 1000 ahead).
 */
const LOOKAHEAD = 2

function request(
  ctx: PullContext,
  pair: Pair,
  cursor: string | null,
  feed: 'normal' | 'longpoll',
  signal: AbortSignal,
): Promise<ChangesPage> {
  return ctx.c.transport.fetchChanges({
    peerUrl: pair.peer_url,
    peerDid: pair.peer_did,
    thread: pair.thread_id,
    cursor,
    limit: ctx.o.pageLimit,
    feed,
    timeoutMs: ctx.o.longpollTimeoutMs,
    targetNamespace: ctx.c.targetNamespaceFor?.(pair.peer_did) ?? ctx.o.targetNamespace,
    // What this puller reads from one page (the source answers at most that, SPEC 3).
    maxBytes: MAX_CHANGES_BYTES,
    bearer: ctx.c.credentials?.(pair.peer_did) ?? null,
    signal,
  })
}

/**
 * Pages until the peer has nothing more. The next page is requested while the current one
 * is verified and committed, so the network and the CPU work overlap.
 */
export async function catchUp(
  ctx: PullContext,
  start: Pair,
  signal: AbortSignal,
  firstFeed: 'normal' | 'longpoll',
  onProgress?: (p: PullProgress) => void,
  transient = false,
  /** The first page, when it came another way (the peer's watch): then the next ones are asked as usual. */
  firstPage?: ChangesPage,
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
  // signature on the checker's threads) while earlier pages commit: network, verification and
  // SQLite overlap.
  const queue: Promise<CheckedPage>[] = []
  let stopFetching = false
  // A cursor the source has more after, not requested yet because the queue was full.
  let paused: string | null = null
  let given = firstPage
  const fetchNext = (cursor: string | null, feed: 'normal' | 'longpoll') => {
    const asked = given ? Promise.resolve(given) : request(ctx, pair, cursor, feed, signal)
    given = undefined
    const p = asked.then(async (page) => {
      if (page.has_more && !stopFetching && !(page.next_cursor === cursor && page.records.length === 0)) {
        if (queue.length < LOOKAHEAD) fetchNext(page.next_cursor, 'normal')
        else paused = page.next_cursor
      }
      const ids = page.records.map(claimedId).filter((id): id is string => id !== null)
      const [checked, known] = await Promise.all([ctx.c.checker.checkMany(page.records, pair.thread_id), ctx.c.sink.known(ids)])
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
      const classified = classifyPage(checked, known, (r) => ctx.c.namespaces.namespaceGate(r))
      const result = await ingestPage(ctx, pair, page, feed, checked.length, classified, transient)
      pair = result.pair
      progress.pages++
      progress.received += checked.length
      progress.stored += result.stored
      progress.duplicates += classified.duplicates + result.duplicates
      progress.rejected += classified.rejected.length + result.rejected.length
      progress.cursor = page.next_cursor
      progress.hasMore = page.has_more
      onProgress?.({ ...progress })
    }
  } finally {
    stopFetching = true
  }
  return progress
}

/** Commits one classified page (or, for an idle answer, only what changed) and updates metrics and listeners. */
function ingestPage(
  ctx: PullContext,
  loopPair: Pair,
  page: PageHead,
  feed: 'normal' | 'longpoll',
  received: number,
  classified: ClassifiedPage,
  transient: boolean,
): Promise<CommitResult> {
  const rt = ctx.runtime(loopPair.pair_id)
  return underCommitLock(rt, async () => {
    // Counters as the last commit left them (a relay delivery may have committed since this page was asked).
    const live = transient ? undefined : ctx.pairs.get(loopPair.pair_id)
    const pair = live && live.totals !== loopPair.totals ? { ...loopPair, totals: live.totals } : loopPair
    const now = ctx.c.clock.now()
    sampleSkew(rt, page, feed)
    const next = pairAfterPage(pair, page, received, classified, now)
    // An empty answer that moves nothing (an idle long poll ending) needs no transaction: the
    // counters ride along with the next commit. A state change is still written at once.
    const idle = received === 0 && page.next_cursor === pair.cursor && !page.cursor_reset
    let result: CommitResult
    if (!idle)
      result = await ctx.c.sink.commit({
        pair,
        accepted: classified.accepted,
        rejected: classified.rejected,
        next,
        now,
        writePair: !transient,
      })
    else {
      if (!transient && (pair.state !== 'running' || pair.last_error !== null)) await ctx.c.pairs.savePair(next)
      result = { stored: 0, duplicates: 0, rejected: [], storedRows: [], pair: next }
    }
    if (result.stored > 0 || page.next_cursor !== pair.cursor) rt.metrics.lastProgressAt = ctx.c.clock.now()
    rt.metrics.sourceHadMore = page.has_more
    observeCommit(ctx, rt, pair, classified, result, transient)
    return result
  })
}

/** After a commit: rates, latencies, the stored rows' listeners, and the live pair. */
function observeCommit(
  ctx: PullContext,
  rt: Runtime,
  pair: Pair,
  classified: ClassifiedPage,
  result: CommitResult,
  transient: boolean,
): void {
  const committed = result.pair
  const m = rt.metrics
  const committedAt = ctx.c.clock.now()
  m.stored.add(result.stored, committedAt)
  m.rejections.add(classified.rejected.length + result.rejected.length, committedAt)
  if (result.storedRows.length > 0) {
    const storedSet = new Set(result.storedRows.map((r) => r.id))
    const skew = rt.skewMs ?? 0
    for (const c of classified.accepted) {
      if (!storedSet.has(c.id) || c.storedAt === null) continue
      const latency = Math.max(0, committedAt - (c.storedAt - skew))
      m.latency.add(latency, committedAt)
      ctx.c.observeLatency?.(pair.pair_id, latency)
    }
    ctx.c.onStored?.(pair.thread_id, result.storedRows)
  }
  if (!transient) {
    const live = ctx.pairs.get(pair.pair_id)
    // Only a live pair's row changes; a pause that raced with this page keeps its state.
    if (live && live.state !== 'paused' && live.state !== 'stopped') ctx.pairs.set(pair.pair_id, committed)
    else if (live) ctx.pairs.set(pair.pair_id, { ...committed, state: live.state })
  }
}

/** What a delivery (records that came another way than the pair's own pull) did. */
export interface DeliveryResult {
  received: number
  stored: number
  duplicates: number
  rejected: number
}

/**
 * Ingests records of the pair's thread that reached this instance another way (a relay's
 * deposit, SPEC 10) through the same checks, plan and counters as a pulled page. The cursor
 * and the pair's state are the pull's alone: they do not move.
 */
export async function ingestDelivered(
  ctx: PullContext,
  pairId: string,
  records: readonly unknown[],
  /** false on a replica that does not hold the pair's lease: the records are stored, the pair's row and counters are the holder's. */
  writePair = true,
): Promise<DeliveryResult> {
  const start = ctx.pairs.get(pairId)
  if (!start) throw new Error(`no pair ${pairId}`)
  const { received, ...classified } = await checkIncoming(
    { checker: ctx.c.checker, known: (ids) => ctx.c.sink.known(ids), namespaces: ctx.c.namespaces },
    records,
    start.thread_id,
  )
  const rt = ctx.runtime(pairId)
  return underCommitLock(rt, async () => {
    const pair = ctx.pairs.get(pairId) ?? start
    const now = ctx.c.clock.now()
    const totals = structuredClone(pair.totals)
    totals.records_received += received
    totals.duplicates += classified.duplicates
    for (const r of classified.rejected) totals.rejected[r.code] = (totals.rejected[r.code] ?? 0) + 1
    const next: Pair = { ...pair, totals, updated_at: now }
    const result = await ctx.c.sink.commit({ pair, accepted: classified.accepted, rejected: classified.rejected, next, now, writePair })
    if (result.stored > 0) rt.metrics.lastProgressAt = ctx.c.clock.now()
    observeCommit(ctx, rt, pair, classified, result, !writePair)
    return {
      received,
      stored: result.stored,
      duplicates: classified.duplicates + result.duplicates,
      rejected: classified.rejected.length + result.rejected.length,
    }
  })
}
