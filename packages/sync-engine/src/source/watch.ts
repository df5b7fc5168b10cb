import type { CallerContext } from '@spl/consent'
import { SplError } from '@spl/identity'
import {
  createResponseProof,
  DEFAULT_CHANGES_LIMIT,
  DEFAULT_LONGPOLL_MS,
  InvalidRequestError,
  MAX_CHANGES_BYTES,
  MIN_CHANGES_BYTES,
  type PeerTokenClaims,
  PROOF_HEADER,
  ReplayCache,
  watchBodySchema,
} from '@spl/transport'
import type { z } from 'zod'
import type { ReaderEntry } from '../relay/readers.js'
import { admitWatcher, threadRefusal } from './caller.js'
import type { ChangeFeed, ChangeFeedDeps, FeedAnswer, FeedPage, FeedPosition } from './feed.js'

/** How long a thread's head told by the notifier (or read from the store) is trusted without a look. */
const HEAD_HINT_MS = 60_000

/** One watched thread: where the caller is, and how far this watch has looked since. */
interface Watched {
  thread: string
  pos: FeedPosition
  at: number
  hidden: number
  reader: ReaderEntry | undefined
  /** What to answer for this thread, once something is. */
  answer: { page: FeedPage; next: string } | null
}

/**
 * `POST /v1/sync/watch` (docs/federation.md, "One conversation per peer"): one long poll for
 * many threads of one caller, each with its cursor. Held until one of them has something for the
 * caller (the consent filter applied as the feed applies it), then answers the page of each such
 * thread. A puller with a thousand idle pairs towards this instance holds one request, signed
 * once, instead of a thousand. Proof-checked and signed like the feed.
 */
export class WatchDoor {
  readonly #replay: ReplayCache
  readonly #now: () => number
  #open = 0
  #threads = 0

  constructor(
    private readonly feed: ChangeFeed,
    private readonly d: ChangeFeedDeps,
  ) {
    this.#replay = new ReplayCache(d.replayStore)
    this.#now = d.now ?? Date.now
  }

  /** Watches held now, and the threads they name (for metrics). */
  get held(): { watches: number; threads: number } {
    return { watches: this.#open, threads: this.#threads }
  }

  async handle(
    url: URL,
    headers: { proof: string | undefined; authorization: string | undefined },
    bodyText: string,
    signal?: AbortSignal,
  ): Promise<FeedAnswer> {
    let raw: unknown
    try {
      raw = JSON.parse(bodyText)
    } catch {
      raw = undefined
    }
    const parsed = raw === undefined ? null : watchBodySchema.safeParse(raw)
    // The proof first: nothing about the body is said to a caller that is not one.
    const admitted = await admitWatcher(this.d, this.#replay, {
      method: 'POST',
      pathAndQuery: url.pathname + url.search,
      proof: headers.proof,
      authorization: headers.authorization,
      targetNamespace: parsed?.success ? parsed.data.target_namespace : undefined,
    })
    if (parsed === null) {
      throw new SplError('INVALID_JSON', 'the body is not JSON', {
        status: 400,
        fix: 'send {"threads": [{"thread": "th_…", "since": "<cursor>"}], "timeout": 25000}',
      })
    }
    if (!parsed.success) {
      const issue = parsed.error.issues[0]
      throw new InvalidRequestError(`body${issue?.path.length ? `.${issue.path.join('.')}` : ''}: ${issue?.message ?? 'invalid'}`)
    }
    const body = parsed.data
    const { caller, ctx, token } = admitted
    this.#open++
    this.#threads += body.threads.length
    try {
      const text = await this.#watch(body, caller, ctx, token, signal)
      const proof = await createResponseProof(this.d.keypair, { callerDid: caller, jti: admitted.proof.jti, body: text })
      return { status: 200, body: text, headers: { 'content-type': 'application/json', [PROOF_HEADER]: proof } }
    } finally {
      this.#open--
      this.#threads -= body.threads.length
    }
  }

  async #watch(
    body: z.output<typeof watchBodySchema>,
    caller: string,
    ctx: CallerContext,
    token: PeerTokenClaims | null,
    signal: AbortSignal | undefined,
  ): Promise<string> {
    const now0 = this.#now()
    const deadline = now0 + (body.timeout ?? DEFAULT_LONGPOLL_MS)
    const limit = body.limit ?? DEFAULT_CHANGES_LIMIT
    let budget = Math.min(body.max_bytes ?? MAX_CHANGES_BYTES, MAX_CHANGES_BYTES)
    const refused: string[] = []
    const watched = new Map<string, Watched>()
    const headSeq = await this.d.store.headSeq()
    for (const t of body.threads) {
      const refusal = threadRefusal(token, t.thread)
      if (refusal) {
        refused.push(errorEntry(t.thread, refusal))
        continue
      }
      let pos: FeedPosition
      try {
        pos = await this.feed.position(t.since ?? undefined, headSeq)
      } catch (err) {
        refused.push(errorEntry(t.thread, SplError.from(err)))
        continue
      }
      watched.set(t.thread, { thread: t.thread, pos, at: pos.afterSeq, hidden: 0, reader: undefined, answer: null })
    }
    // Subscribed before the first look: a record stored while looking marks its thread to look at again.
    const dirty = new Set<string>(watched.keys())
    let wake: (() => void) | null = null
    const unsubscribe = this.d.notifier.subscribe([...watched.keys()], (thread) => {
      dirty.add(thread)
      wake?.()
    })
    for (const w of watched.values()) {
      w.reader = this.d.readers?.begin(caller, w.thread, w.pos.afterSeq, ctx, false, now0)
      this.d.subscribers.begin(caller, w.thread, now0)
    }
    let ready = refused.length
    try {
      for (;;) {
        for (const thread of [...dirty]) {
          if (budget < MIN_CHANGES_BYTES) break
          dirty.delete(thread)
          const w = watched.get(thread)!
          if (w.answer && (w.answer.page.served.length > 0 || w.answer.page.hasMore)) continue
          if (!(await this.#mayHaveNews(w, ctx))) continue
          const answer = await this.feed.answer({ thread, limit, max_bytes: budget, include_own: false }, ctx, caller, w.pos, w.at)
          const page = answer.page
          if (page.served.length > 0 || page.hasMore || w.pos.cursorReset) {
            w.answer = answer
            ready++
            budget -= page.served.reduce((n, s) => n + s.length + 1, 64)
          } else if (page.lastSeq > w.at) {
            // Only records hidden from the caller (or its own): the cursor moves past them, said when the watch answers.
            w.hidden += page.hiddenCount
            w.at = page.lastSeq
            w.answer = answer
          }
        }
        if (ready > 0 || signal?.aborted || this.d.notifier.closed) break
        const left = deadline - this.#now()
        if (left <= 0) break
        if (dirty.size === 0) {
          await new Promise<void>((resolve) => {
            const done = () => {
              clearTimeout(timer)
              signal?.removeEventListener('abort', done)
              wake = null
              resolve()
            }
            const timer = setTimeout(done, left)
            signal?.addEventListener('abort', done, { once: true })
            wake = done
          })
        }
      }
    } finally {
      unsubscribe()
      const now = this.#now()
      for (const w of watched.values()) {
        if (w.reader) this.d.readers?.end(w.reader, now)
        this.d.subscribers.end(caller, w.thread, now, signal?.aborted === true)
      }
    }
    const now = this.#now()
    const changes = refused
    for (const w of watched.values()) {
      const a = w.answer
      if (!signal?.aborted) {
        const p = a?.page
        this.d.subscribers.record(
          caller,
          w.thread,
          { served: p?.servedCount ?? 0, redacted: p?.redactedCount ?? 0, hidden: w.hidden + (p && p.lastSeq > w.at ? p.hiddenCount : 0) },
          now,
        )
      }
      if (!a) continue
      changes.push(
        `{"thread":"${w.thread}","records":[${a.page.served.join(',')}],"next_cursor":"${a.next}",` +
          `"has_more":${a.page.hasMore}${w.pos.cursorReset ? ',"cursor_reset":true' : ''}}`,
      )
    }
    return `{"changes":[${changes.join(',')}],"server_time":${now}}`
  }

  /**
   * Whether a look at `w` may find something: a reset or a reveal pass is due, or the thread's
   * head is past where the watch has looked (the notifier's hint, else one step down the index).
   */
  async #mayHaveNews(w: Watched, ctx: CallerContext): Promise<boolean> {
    if (w.pos.cursorReset || this.feed.revealDueAt(w.thread, ctx, w.pos, w.at)) return true
    const store = this.d.store
    if (!store.threadHead) return true
    const now = this.#now()
    let head = this.d.notifier.headOf(w.thread, now, HEAD_HINT_MS)
    if (head === undefined) {
      head = await store.threadHead(w.thread)
      this.d.notifier.hintHead(w.thread, head, now)
    }
    return head > w.at
  }
}

function errorEntry(thread: string, err: SplError): string {
  return JSON.stringify({ thread, error: err.toJSON() })
}
