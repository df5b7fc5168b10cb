import { type CallerContext, consentFilter } from '@spl/consent'
import { SplError } from '@spl/identity'
import { rowToEnvelopeJson } from '@spl/records'
import {
  changesQuerySchema,
  createResponseProof,
  InvalidRequestError,
  type ParsedChangesQuery,
  PROOF_HEADER,
  ReplayCache,
  type ReplayStore,
  searchParamsObject,
} from '@spl/transport'
import type { FeedReaders } from '../relay/readers.js'
import type { ChangeSource, FeedRow } from '../stores.js'
import { admitCaller, type CallerDoorDeps } from './caller.js'
import type { ThreadNotifier } from './notifier.js'
import type { SubscriberStats } from './subscribers.js'

/** A cursor that is not one this daemon could have made. */
export class InvalidCursorError extends SplError {
  override readonly name = 'InvalidCursorError'
  constructor(cursor: string) {
    super('INVALID_CURSOR', `'${cursor.slice(0, 80)}' is not a change-feed cursor.`, {
      status: 400,
      fix: 'pass back the next_cursor of a previous answer, or leave `since` out to start from the beginning',
    })
  }
}

const CURSOR_V1 = /^c1\.([0-9a-f]{16})\.(\d{1,16})$/
const CURSOR_V2 = /^c2\.([0-9a-f]{16})\.(\d{1,16})\.(\d{1,16})(?:\.r(\d{1,16}))?$/

/** Where a caller is in a thread: the store's epoch and seq, and (c2) its consent view. */
export interface FeedCursor {
  epoch: string
  seq: number
  /** When the grants it was served under were read (a grant made since may reveal more, docs/consent.md). */
  viewAt?: number
  /** While records a new grant reveals are being served: how far that pass has come. */
  revealAt?: number
}

/**
 * Encodes a cursor: `c2.<epoch>.<seq>.<viewAt>[.r<revealAt>]`; without `viewAt` the older
 * `c1.<epoch>.<seq>` (still accepted: read as a view of the moment it arrives).
 */
export function encodeCursor(epoch: string, seq: number, viewAt?: number, revealAt?: number): string {
  if (viewAt === undefined) return `c1.${epoch}.${seq}`
  return `c2.${epoch}.${seq}.${viewAt}${revealAt === undefined ? '' : `.r${revealAt}`}`
}

/** Decodes a cursor; throws InvalidCursorError for anything malformed. */
export function decodeCursor(cursor: string): FeedCursor {
  const v1 = CURSOR_V1.exec(cursor)
  if (v1) return { epoch: v1[1]!, seq: Number(v1[2]) }
  const v2 = CURSOR_V2.exec(cursor)
  if (!v2) throw new InvalidCursorError(cursor)
  const c: FeedCursor = { epoch: v2[1]!, seq: Number(v2[2]), viewAt: Number(v2[3]) }
  if (v2[4] !== undefined) {
    c.revealAt = Number(v2[4])
    if (c.revealAt > c.seq) throw new InvalidCursorError(cursor)
  }
  return c
}

/** Where a caller's cursor puts it (ChangeFeed.position). */
export interface FeedPosition {
  afterSeq: number
  viewAt: number
  revealAt?: number
  /** The cursor to hand back when nothing is new (an idle answer changes nothing at the puller). */
  same?: string
  cursorReset: boolean
}

/** Room in a page for its frame (`{"records":[…],"next_cursor":…,"has_more":…,"server_time":…}`). */
const PAGE_FRAME_BYTES = 256

/** The query of a request, parsed with the schema the puller builds it from; INVALID_REQUEST names the field. */
function parseQuery(q: URLSearchParams): ParsedChangesQuery {
  const parsed = changesQuerySchema.safeParse(searchParamsObject(q))
  if (parsed.success) return parsed.data
  const issue = parsed.error.issues[0]
  const field = String(issue?.path[0] ?? 'query')
  throw new InvalidRequestError(`query.${field}: ${issue?.message ?? 'invalid'}`, field === 'thread' ? 'add ?thread=th_…' : undefined)
}

/** What the feed needs from the rest of the daemon. */
export interface ChangeFeedDeps extends CallerDoorDeps {
  store: ChangeSource
  notifier: ThreadNotifier
  subscribers: SubscriberStats
  /** Where used proof ids are kept (SPEC 7.4: durable); in memory when left out. */
  replayStore?: ReplayStore
  /** Told who pulls what and how far (the relay's depositor reads it, SPEC 10). */
  readers?: FeedReaders
  now?: () => number
}

/** One page of the feed for one caller: the envelopes as served, and where it ended. */
export interface FeedPage {
  served: string[]
  lastSeq: number
  hasMore: boolean
  servedCount: number
  redactedCount: number
  hiddenCount: number
}

/** A signed answer: body text, status and headers. */
export interface FeedAnswer {
  status: number
  body: string
  headers: Record<string, string>
}

/** The source side of sync: `GET /v1/sync/changes` (SPEC 3). */
export class ChangeFeed {
  readonly #replay: ReplayCache
  readonly #now: () => number
  #held = 0

  constructor(private readonly d: ChangeFeedDeps) {
    this.#now = d.now ?? Date.now
    this.#replay = new ReplayCache(d.replayStore)
  }

  /** Requests being answered now (long polls waiting among them), for metrics. */
  get held(): number {
    return this.#held
  }

  /** Authenticates the caller, filters by consent, waits on long polls, and signs the answer. */
  async handle(
    url: URL,
    headers: { proof: string | undefined; authorization: string | undefined },
    signal?: AbortSignal,
  ): Promise<FeedAnswer> {
    const q = parseQuery(url.searchParams)
    const { proof, caller, ctx } = await admitCaller(this.d, this.#replay, {
      method: 'GET',
      pathAndQuery: url.pathname + url.search,
      proof: headers.proof,
      authorization: headers.authorization,
      thread: q.thread,
      targetNamespace: q.target_namespace,
    })
    const pos = await this.position(q.since)
    const deadline = this.#now() + (q.feed === 'longpoll' ? q.timeout : 0)
    const reader = this.d.readers?.begin(caller, q.thread, pos.afterSeq, ctx, q.include_own, this.#now())
    let answer: { page: FeedPage; next: string }
    let hiddenBefore = 0
    this.d.subscribers.begin(caller, q.thread, this.#now())
    this.#held++
    try {
      let seen = this.d.notifier.version(q.thread)
      answer = await this.answer(q, ctx, caller, pos, pos.afterSeq)
      while (answer.page.served.length === 0 && !answer.page.hasMore && q.feed === 'longpoll' && !signal?.aborted) {
        const left = deadline - this.#now()
        if (left <= 0) break
        // A record of the thread or a change of grants (SPEC 6.2: a long poll is woken at once) ends the wait.
        await this.d.notifier.wait(q.thread, left, signal, seen)
        if (this.d.notifier.closed) break
        seen = this.d.notifier.version(q.thread)
        hiddenBefore += answer.page.hiddenCount
        answer = await this.answer(q, ctx, caller, pos, answer.page.lastSeq)
      }
    } finally {
      this.#held--
      if (reader) this.d.readers?.end(reader, this.#now())
      this.d.subscribers.end(caller, q.thread, this.#now(), signal?.aborted === true)
    }
    const cursorReset = pos.cursorReset
    const page = answer.page
    const now = this.#now()
    // A caller that hung up (its pair was paused, kicked or stopped) received nothing: not counted.
    if (!signal?.aborted) {
      this.d.subscribers.record(
        caller,
        q.thread,
        { served: page.servedCount, redacted: page.redactedCount, hidden: hiddenBefore + page.hiddenCount },
        now,
      )
    }
    const body =
      `{"records":[${page.served.join(',')}],"next_cursor":"${answer.next}",` +
      `"has_more":${page.hasMore},"server_time":${now}${cursorReset ? ',"cursor_reset":true' : ''}}`
    const responseProof = await createResponseProof(this.d.keypair, {
      callerDid: caller,
      jti: proof.jti,
      body,
    })
    return {
      status: 200,
      body,
      headers: { 'content-type': 'application/json', [PROOF_HEADER]: responseProof },
    }
  }

  /**
   * Where `since` puts a caller (its cursor decoded): a cursor of another store, or ahead of the
   * head, starts again from the beginning with `cursorReset`. `headSeq`: the store's head, when
   * the caller already read it (a watch reads it once for all its threads).
   */
  async position(since: string | undefined, headSeq?: number): Promise<FeedPosition> {
    // The consent view the caller's cursor was made under; a grant made since may reveal records behind it.
    const pos: FeedPosition = { afterSeq: 0, viewAt: this.#now(), cursorReset: false }
    if (since === undefined) return pos
    const c = decodeCursor(since)
    if (c.epoch !== this.d.store.epoch || c.seq > (headSeq ?? (await this.d.store.headSeq()))) pos.cursorReset = true
    else {
      pos.afterSeq = c.seq
      if (c.viewAt !== undefined) pos.viewAt = Math.min(c.viewAt, pos.viewAt)
      if (c.revealAt !== undefined) pos.revealAt = c.revealAt
      // An answer with nothing new hands the same cursor back (an idle long poll changes nothing at the puller).
      if (c.viewAt !== undefined && c.revealAt === undefined) pos.same = since
    }
    return pos
  }

  /** True when grants made since the caller's view reveal records of `thread` behind `at` (how far a watch has looked): a reveal pass is due. */
  revealDueAt(thread: string, ctx: CallerContext, pos: FeedPosition, at: number): boolean {
    return at > 0 && this.#revealed(thread, ctx, pos.viewAt, this.#now()).length > 0
  }

  /**
   * The page to answer from `at` (the caller's position, or how far a long poll has looked
   * since) and its cursor. When grants made since the caller's view reveal namespaces it could
   * not see, the records of those namespaces up to its cursor are served first (a reveal pass,
   * `.r<seq>` in the cursor while it lasts), then the feed goes on from the cursor as before:
   * nothing already served in full is sent again (docs/consent.md).
   */
  async answer(
    q: Pick<ParsedChangesQuery, 'thread' | 'limit' | 'max_bytes' | 'include_own'>,
    ctx: CallerContext,
    caller: string,
    pos: FeedPosition,
    at: number,
  ): Promise<{ page: FeedPage; next: string }> {
    const { viewAt } = pos
    // Later looks of a long poll start from where the last one ended (no reveal pass was open then).
    const first = at === pos.afterSeq
    const epoch = this.d.store.epoch
    const now = this.#now()
    const revealed = at > 0 ? this.#revealed(q.thread, ctx, viewAt, now) : []
    if (revealed.length > 0) {
      const page = await this.pageFor(q, ctx, caller, first ? (pos.revealAt ?? 0) : 0, { upTo: at, namespaces: revealed })
      const done = !page.hasMore
      // Either way the caller asks again at once: for the rest of the pass, or for what is new.
      page.hasMore = true
      return { page, next: done ? encodeCursor(epoch, at, now) : encodeCursor(epoch, at, viewAt, page.lastSeq) }
    }
    const page = await this.pageFor(q, ctx, caller, at)
    if (first && pos.same !== undefined && page.served.length === 0 && !page.hasMore && page.lastSeq === at) {
      return { page, next: pos.same }
    }
    return { page, next: encodeCursor(epoch, page.lastSeq, now) }
  }

  /** Rows of `thread` in `namespaces` with afterSeq < seq ≤ upTo (the store's own query when it has one). */
  async #listIn(thread: string, afterSeq: number, upTo: number, namespaces: readonly string[], limit: number): Promise<FeedRow[]> {
    if (this.d.store.listAfterIn) return this.d.store.listAfterIn(thread, afterSeq, upTo, namespaces, limit)
    const want = new Set(namespaces)
    const out: FeedRow[] = []
    let at = afterSeq
    while (out.length < limit && at < upTo) {
      const rows = await this.d.store.listAfter(thread, at, 1000)
      if (rows.length === 0) break
      for (const r of rows) {
        if (r.seq > upTo || out.length >= limit) return out
        if (want.has(r.namespace)) out.push(r)
      }
      at = rows[rows.length - 1]!.seq
    }
    return out
  }

  /** Namespaces `ctx` may read in `thread` now through a grant made at or after `viewAt` (not revoked, not expired). */
  #revealed(thread: string, ctx: CallerContext, viewAt: number, now: number): string[] {
    const grants = this.d.registry.grants()
    const out = new Set<string>()
    for (const g of grants) {
      if (g.revoked || g.created_at < viewAt || g.target_namespace !== ctx.namespace) continue
      if (g.threads !== '*' && !g.threads.includes(thread)) continue
      if (consentFilter(g.source_namespace, thread, ctx, grants, now) !== 'hide') out.add(g.source_namespace)
    }
    return [...out]
  }

  /**
   * One page of `q.thread` after `afterSeq` as `caller` would be served it, consent filter
   * applied. With `storedBefore`, the page ends at the first record stored later (the relay's
   * depositor: only what waited long enough); with `upTo` and `namespaces`, only records of
   * those namespaces up to that seq (a reveal pass).
   */
  async pageFor(
    q: Pick<ParsedChangesQuery, 'thread' | 'limit' | 'max_bytes' | 'include_own'>,
    ctx: CallerContext,
    caller: string,
    afterSeq: number,
    options: { storedBefore?: number; upTo?: number; namespaces?: readonly string[] } = {},
  ): Promise<FeedPage> {
    const { storedBefore, upTo, namespaces } = options
    const rows =
      upTo !== undefined && namespaces
        ? await this.#listIn(q.thread, afterSeq, upTo, namespaces, q.limit + 1)
        : await this.d.store.listAfter(q.thread, afterSeq, q.limit + 1)
    const more = rows.length > q.limit
    if (more) rows.length = q.limit
    const grants = this.d.registry.grants()
    const now = this.#now()
    const served: string[] = []
    // UTF-8 bytes, as the puller counts them (SPEC 3): at most what it said it reads.
    const budget = q.max_bytes - PAGE_FRAME_BYTES
    let bytes = 0
    let lastSeq = afterSeq
    let hasMore = more
    let servedCount = 0
    let redactedCount = 0
    let hiddenCount = 0
    for (const row of rows) {
      if (storedBefore !== undefined && row.stored_at > storedBefore) {
        hasMore = true
        break
      }
      if (!q.include_own && row.origin === caller) {
        lastSeq = row.seq
        continue
      }
      // A stub held here is still filtered like any record of its namespace, then served as a stub.
      const verdict = consentFilter(row.namespace, q.thread, ctx, grants, now)
      const action = verdict === 'hide' ? 'hide' : row.redacted ? 'redact' : verdict
      if (action === 'hide') {
        hiddenCount++
        lastSeq = row.seq
        continue
      }
      const json = action === 'serve' ? rowToEnvelopeJson(row) : redactedJson(row)
      const size = Buffer.byteLength(json, 'utf8')
      if (size > budget) {
        // One record larger than the caller reads (only a record stored before the size limit can
        // be): it could never be delivered, and serving it would stall the caller for good.
        hiddenCount++
        lastSeq = row.seq
        continue
      }
      if (served.length > 0 && bytes + size > budget) {
        hasMore = true
        break
      }
      served.push(json)
      bytes += size + 1
      lastSeq = row.seq
      if (action === 'serve') servedCount++
      else redactedCount++
    }
    return { served, lastSeq, hasMore, servedCount, redactedCount, hiddenCount }
  }
}

/** A record with its body replaced by exactly {"redacted": true} and no signature (SPEC 6.3). */
export function redactedJson(row: FeedRow): string {
  const record = JSON.parse(row.record) as Record<string, unknown>
  record['body'] = { redacted: true }
  return rowToEnvelopeJson({
    id: row.id,
    record: JSON.stringify(record),
    sig: null,
    stored_at: row.stored_at,
    redacted: 1,
  })
}

/**
 * The feed as a web-standard handler for `GET /v1/sync/changes`, for services that embed the
 * engine: mount it in hono (`app.get(CHANGES_PATH, (c) => handler(c.req.raw))`) or any
 * fetch-style server. Errors answer the envelope of SPEC 7.6.
 */
export function changeFeedHandler(feed: ChangeFeed): (req: Request) => Promise<Response> {
  return async (req) => {
    try {
      const answer = await feed.handle(
        new URL(req.url),
        { proof: req.headers.get('spl-proof') ?? undefined, authorization: req.headers.get('authorization') ?? undefined },
        req.signal,
      )
      return new Response(answer.body, { status: answer.status, headers: answer.headers })
    } catch (err) {
      const e = SplError.from(err, { message: 'the change feed failed' })
      return Response.json(e.toJSON(), { status: e.status })
    }
  }
}
