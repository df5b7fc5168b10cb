import { type ChangesPage, MAX_WATCH_THREADS, type WatchedChange, type WatchRequest, WatchUnsupportedError } from '@spl/transport'
import type { Pair } from '../pair.js'
import type { PullContext } from './pull-loop.js'

/**
 * What a pair waiting through its peer's watch gets: the first page of its next catch-up, or
 * `fallback` (the peer has no watch door: long-poll alone) or `pull` (the watch refused this
 * thread: pull it alone, and meet the refusal as a pull does).
 */
export type WatchOutcome = { page: ChangesPage } | 'fallback' | 'pull'

/** Sends one watch (PeerClient.watch fits). */
export type WatchTransport = (req: WatchRequest) => Promise<WatchedChange[]>

/** Requests of one peer beyond the fewest that hold its waiting pairs (joiners), before two are merged. */
const EXTRA_REQUESTS = 2
/** Joins that come together go out together: a watch is issued this long after the last join... */
const JOIN_DEBOUNCE_MS = 2
/** ...and at most this long after the first. */
const JOIN_MAX_DELAY_MS = 50
/** A peer whose watch door is missing is asked again after this long (it may have been upgraded). */
const UNSUPPORTED_RECHECK_MS = 10 * 60_000
/** Empty watch answers sooner than this were not held... */
const FAST_EMPTY_MS = 1000
/** ...and that many in a row make the peer's pairs long-poll alone. */
const FAST_EMPTY_LIMIT = 3

interface Member {
  pairId: string
  thread: string
  cursor: string | null
  joinedAt: number
  settle: (outcome: WatchOutcome) => void
  fail: (err: unknown) => void
  /** The request that names this member's thread with its cursor, once issued. */
  req: Req | null
}

interface Req {
  /** Members by thread: who each thread's answer goes to. */
  members: Map<string, Member>
  abort: AbortController
  sentAt: number
}

/** The pairs of one peer that wait together. */
class PeerGroup {
  readonly members = new Map<string, Member>()
  readonly reqs = new Set<Req>()
  unsupportedUntil = 0
  fastEmpty = 0
  timer: NodeJS.Timeout | null = null
  firstPendingAt = 0

  constructor(
    readonly peerDid: string,
    readonly peerUrl: string,
  ) {}

  pending(): Member[] {
    return [...this.members.values()].filter((m) => m.req === null)
  }
}

/**
 * One conversation per peer, not per pair: the caught-up pairs towards one peer wait in one
 * watch (`POST /v1/sync/watch`) that names their threads and cursors, instead of each holding its
 * own long poll. The answer's pages go to their pairs, which commit them as their own pull's
 * first page (cursor, state and counters per pair, as before). At most ⌈pairs / 1000⌉ + 2
 * requests are open per peer.
 */
export class PeerWatches {
  readonly #groups = new Map<string, PeerGroup>()

  constructor(
    private readonly ctx: PullContext,
    private readonly send: WatchTransport,
  ) {}

  /** Requests open now, over every peer (for tests and metrics). */
  get open(): number {
    let n = 0
    for (const g of this.#groups.values()) n += g.reqs.size
    return n
  }

  /** Whether `pair`'s peer is known to have no watch door (its pairs long-poll alone for a while). */
  unsupported(pair: Pair): boolean {
    const g = this.#groups.get(keyOf(pair))
    return g !== undefined && this.ctx.c.clock.now() < g.unsupportedUntil
  }

  /** Waits, with the other pairs of the peer, until `pair`'s thread has something (or the watch says to do otherwise). */
  wait(pair: Pair, signal: AbortSignal): Promise<WatchOutcome> {
    const key = keyOf(pair)
    let g = this.#groups.get(key)
    if (!g) this.#groups.set(key, (g = new PeerGroup(pair.peer_did, pair.peer_url)))
    const group = g
    if (this.ctx.c.clock.now() < group.unsupportedUntil) return Promise.resolve('fallback')
    return new Promise<WatchOutcome>((resolve, reject) => {
      if (signal.aborted) {
        reject(signal.reason ?? new Error('aborted'))
        return
      }
      const leave = () => {
        signal.removeEventListener('abort', onAbort)
        if (group.members.get(pair.pair_id) === member) group.members.delete(pair.pair_id)
      }
      const onAbort = () => {
        leave()
        const req = member.req
        // A request that no waiting pair needs any more is hung up.
        if (req && ![...req.members.values()].some((m) => group.members.get(m.pairId) === m)) req.abort.abort()
        reject(signal.reason ?? new Error('aborted'))
      }
      const member: Member = {
        pairId: pair.pair_id,
        thread: pair.thread_id,
        cursor: pair.cursor,
        joinedAt: this.ctx.c.clock.now(),
        settle: (o) => {
          leave()
          resolve(o)
        },
        fail: (err) => {
          leave()
          reject(err)
        },
        req: null,
      }
      signal.addEventListener('abort', onAbort, { once: true })
      group.members.set(pair.pair_id, member)
      // Back before the request that names its thread at this cursor has answered (a kick, a
      // pair that came back at once): it waits on that request.
      for (const req of group.reqs) {
        const there = req.members.get(member.thread)
        if (there && there.cursor === member.cursor && !req.abort.signal.aborted) {
          req.members.set(member.thread, member)
          member.req = req
          return
        }
      }
      this.#schedule(group)
    })
  }

  /** Issues the pending members' watch soon: joins that come together go out in one request. */
  #schedule(g: PeerGroup): void {
    const now = this.ctx.c.clock.now()
    if (g.timer === null) g.firstPendingAt = now
    else clearTimeout(g.timer)
    const delay = Math.max(0, Math.min(JOIN_DEBOUNCE_MS, g.firstPendingAt + JOIN_MAX_DELAY_MS - now))
    g.timer = setTimeout(() => {
      g.timer = null
      this.#flush(g)
    }, delay)
    g.timer.unref?.()
  }

  #flush(g: PeerGroup): void {
    const pending = g.pending()
    if (pending.length === 0) return
    const needed = Math.ceil(g.members.size / MAX_WATCH_THREADS)
    if (g.reqs.size >= needed + EXTRA_REQUESTS) {
      // As many requests as may be open: the smallest one is asked again with the newcomers.
      let smallest: Req | null = null
      for (const r of g.reqs) if (smallest === null || r.members.size < smallest.members.size) smallest = r
      if (smallest) {
        g.reqs.delete(smallest)
        smallest.abort.abort()
        for (const m of smallest.members.values()) {
          if (g.members.get(m.pairId) === m && m.req === smallest) {
            m.req = null
            pending.push(m)
          }
        }
      }
    }
    for (let i = 0; i < pending.length; i += MAX_WATCH_THREADS) this.#issue(g, pending.slice(i, i + MAX_WATCH_THREADS))
  }

  #issue(g: PeerGroup, members: Member[]): void {
    const req: Req = { members: new Map(), abort: new AbortController(), sentAt: this.ctx.c.clock.now() }
    for (const m of members) {
      // One thread once per request (two pairs of one thread towards one peer cannot exist: pair ids).
      req.members.set(m.thread, m)
      m.req = req
    }
    g.reqs.add(req)
    const { c, o } = this.ctx
    this.send({
      peerUrl: g.peerUrl,
      peerDid: g.peerDid,
      threads: [...req.members.values()].map((m) => ({ thread: m.thread, since: m.cursor })),
      timeoutMs: o.longpollTimeoutMs,
      limit: o.pageLimit,
      targetNamespace: c.targetNamespaceFor?.(g.peerDid) ?? o.targetNamespace,
      bearer: c.credentials?.(g.peerDid) ?? null,
      signal: req.abort.signal,
    }).then(
      (changes) => this.#answered(g, req, changes),
      (err: unknown) => this.#failed(g, req, err),
    )
  }

  #answered(g: PeerGroup, req: Req, changes: WatchedChange[]): void {
    g.reqs.delete(req)
    if (req.abort.signal.aborted) return
    const now = this.ctx.c.clock.now()
    const live = (m: Member | undefined): m is Member => m !== undefined && m.req === req && g.members.get(m.pairId) === m
    const fast = changes.length === 0 && now - req.sentAt < Math.min(FAST_EMPTY_MS, this.ctx.o.longpollTimeoutMs / 4)
    g.fastEmpty = fast ? g.fastEmpty + 1 : changes.length === 0 ? 0 : g.fastEmpty
    if (g.fastEmpty >= FAST_EMPTY_LIMIT) {
      // A peer that ends every watch at once would have us ask hundreds of times a second.
      g.fastEmpty = 0
      this.#giveUp(g, req)
      return
    }
    for (const ch of changes) {
      const m = req.members.get(ch.thread)
      if (!live(m)) continue
      m.settle('page' in ch ? { page: ch.page } : 'pull')
    }
    for (const m of req.members.values()) {
      if (!live(m)) continue
      if (changes.length === 0 || now - m.joinedAt >= this.ctx.o.longpollTimeoutMs) {
        // Nothing for it over a whole wait: an idle answer, as its own long poll would have had.
        m.settle({ page: idlePage(m.cursor, now, req.sentAt) })
      } else {
        m.req = null
      }
    }
    if (g.pending().length > 0) this.#schedule(g)
  }

  #failed(g: PeerGroup, req: Req, err: unknown): void {
    g.reqs.delete(req)
    if (req.abort.signal.aborted) return
    if (err instanceof WatchUnsupportedError) {
      this.#giveUp(g, req)
      return
    }
    // The peer cannot be reached (or refused the watch as a whole): each pair meets it as a failed pull, and backs off.
    for (const m of req.members.values()) if (m.req === req && g.members.get(m.pairId) === m) m.fail(err)
  }

  /** The peer has no usable watch: its pairs long-poll alone until UNSUPPORTED_RECHECK_MS has passed. */
  #giveUp(g: PeerGroup, req: Req): void {
    g.unsupportedUntil = this.ctx.c.clock.now() + UNSUPPORTED_RECHECK_MS
    this.ctx.c.logger.info({ peer_did: g.peerDid }, 'the peer has no usable watch door: its pairs long-poll one thread each')
    for (const r of [req, ...g.reqs]) {
      r.abort.abort()
      g.reqs.delete(r)
    }
    for (const m of [...g.members.values()]) m.settle('fallback')
  }
}

function keyOf(pair: Pair): string {
  return `${pair.peer_did}\n${pair.peer_url}`
}

/** The answer a long poll gives when nothing came: same cursor, nothing more. */
function idlePage(cursor: string | null, now: number, sentAt: number): ChangesPage {
  return { records: [], next_cursor: cursor ?? '', has_more: false, server_time: now, bytes: 0, sentAt, receivedAt: now }
}
