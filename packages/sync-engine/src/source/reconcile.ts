import { type CallerContext, consentFilter } from '@spl/consent'
import { SplError } from '@spl/identity'
import { rowToEnvelopeJson, type StoredRow, THREAD_RE } from '@spl/records'
import { createResponseProof, InvalidRequestError, PROOF_HEADER, ReplayCache, type ReplayStore } from '@spl/transport'
import { z } from 'zod'
import { answerRange, MAX_RANGE_IDS, MAX_RANGES, rangeAskSchema } from '../ranges.js'
import { admitCaller, type CallerDoorDeps } from './caller.js'
import { type FeedAnswer, redactedJson } from './feed.js'

/** The reconcile door (SPEC 13): a peer door, like the change feed. */
export const RECONCILE_PATH = '/v1/sync/reconcile'
/** Records one `want` may ask for. */
export const MAX_WANT = 500

const idHex = z.string().regex(/^[0-9a-f]{64}$/, 'a record id (64 hex)')

/** A reconcile request: one round of ranges, or the records the caller found it lacks. */
export const reconcileBodySchema = z
  .object({
    thread: z.string().regex(THREAD_RE, 'a thread id (th_…)'),
    target_namespace: z.string().max(256).optional(),
    ranges: z.array(rangeAskSchema).min(1).max(MAX_RANGES).optional(),
    want: z.array(idHex).min(1).max(MAX_WANT).optional(),
  })
  .strict()
  .refine((b) => (b.ranges === undefined) !== (b.want === undefined), 'send ranges (a round) or want (records), one of them')
  .refine(
    (b) => (b.ranges ?? []).reduce((n, r) => n + (r.ids?.length ?? 0), 0) <= MAX_RANGE_IDS,
    `at most ${MAX_RANGE_IDS} ids per request`,
  )
export type ReconcileBody = z.output<typeof reconcileBodySchema>

/** What the door reads of the record store (RecordStore fits). */
export interface ReconcileSource {
  headSeq(): Promise<number>
  threadIds(thread: string): Promise<{ id: string; namespace: string }[]>
  getManyInThread(thread: string, ids: readonly string[]): Promise<StoredRow[]>
}

export interface ReconcileDeps extends CallerDoorDeps {
  store: ReconcileSource
  replayStore?: ReplayStore
  now?: () => number
}

interface View {
  key: string
  head: number
  grants: string
  at: number
  ids: string[]
}

/** A caller's view is kept this long between rounds (an audit is a few rounds within a second or two). */
const VIEW_TTL_MS = 30_000
const MAX_VIEWS = 16

/**
 * `POST /v1/sync/reconcile`: range-based set reconciliation over the ids of one thread that the
 * caller may see (served or redacted; a hidden record never enters the view, so neither its id
 * nor its existence leaves this instance), and the records it then asks for, filtered as the
 * feed filters them. Proof-checked (aud = this instance, no replay) and signed like the feed.
 */
export class ReconcileDoor {
  readonly #replay: ReplayCache
  readonly #now: () => number
  readonly #views = new Map<string, View>()

  constructor(private readonly d: ReconcileDeps) {
    this.#replay = new ReplayCache(d.replayStore)
    this.#now = d.now ?? Date.now
  }

  async handle(url: URL, headers: { proof: string | undefined; authorization: string | undefined }, bodyText: string): Promise<FeedAnswer> {
    let raw: unknown
    try {
      raw = JSON.parse(bodyText)
    } catch {
      raw = Symbol('invalid')
    }
    // The proof first (nothing about the body is said to a caller that is not one).
    const body = typeof raw === 'symbol' ? null : reconcileBodySchema.safeParse(raw)
    const thread = body?.success ? body.data.thread : 'th_unknown'
    const admitted = await admitCaller(this.d, this.#replay, {
      method: 'POST',
      pathAndQuery: url.pathname + url.search,
      proof: headers.proof,
      authorization: headers.authorization,
      thread,
      targetNamespace: body?.success ? body.data.target_namespace : undefined,
    })
    if (body === null)
      throw new SplError('INVALID_JSON', 'the body is not JSON', { status: 400, fix: 'send {"thread": "th_…", "ranges": […]}' })
    if (!body.success) {
      const issue = body.error.issues[0]
      throw new InvalidRequestError(`body${issue?.path.length ? `.${issue.path.join('.')}` : ''}: ${issue?.message ?? 'invalid'}`)
    }
    const b = body.data
    const text = b.ranges
      ? JSON.stringify(await this.#round(admitted.caller, admitted.ctx, b.thread, b.ranges))
      : await this.#records(admitted.ctx, b.thread, b.want!)
    const proof = await createResponseProof(this.d.keypair, { callerDid: admitted.caller, jti: admitted.proof.jti, body: text })
    return { status: 200, body: text, headers: { 'content-type': 'application/json', [PROOF_HEADER]: proof } }
  }

  async #round(caller: string, ctx: CallerContext, thread: string, ranges: NonNullable<ReconcileBody['ranges']>) {
    const ids = await this.#view(caller, ctx, thread)
    return { object: 'reconcile', thread, ranges: ranges.map((r) => answerRange(ids, r)) }
  }

  /** The sorted ids of `thread` that `caller` may see, kept for the rounds of one audit. */
  async #view(caller: string, ctx: CallerContext, thread: string): Promise<string[]> {
    const now = this.#now()
    const grants = this.d.registry.grants()
    const grantsKey = grants.map((g) => `${g.grant_id}${g.revoked ? '-' : ''}`).join(',')
    const key = `${caller}\n${thread}\n${ctx.namespace}\n${ctx.boundNamespace ?? ''}`
    const head = await this.d.store.headSeq()
    const cached = this.#views.get(key)
    if (cached && cached.head === head && cached.grants === grantsKey && now - cached.at < VIEW_TTL_MS) return cached.ids
    const verdicts = new Map<string, boolean>()
    const visible = (ns: string) => {
      let v = verdicts.get(ns)
      if (v === undefined) verdicts.set(ns, (v = consentFilter(ns, thread, ctx, grants, now) !== 'hide'))
      return v
    }
    const ids = (await this.d.store.threadIds(thread)).filter((r) => visible(r.namespace)).map((r) => r.id)
    if (this.#views.size >= MAX_VIEWS) this.#views.delete(this.#views.keys().next().value as string)
    this.#views.set(key, { key, head, grants: grantsKey, at: now, ids })
    return ids
  }

  /** The records asked for, as the feed would serve them (an id not visible is left out silently). */
  async #records(ctx: CallerContext, thread: string, want: readonly string[]) {
    const grants = this.d.registry.grants()
    const now = this.#now()
    const out: string[] = []
    for (const row of await this.d.store.getManyInThread(thread, want)) {
      const verdict = consentFilter(row.namespace, thread, ctx, grants, now)
      if (verdict === 'hide') continue
      out.push(verdict === 'serve' && !row.redacted ? rowToEnvelopeJson(row) : redactedJson(row))
    }
    return `{"object":"reconcile_records","thread":${JSON.stringify(thread)},"records":[${out.join(',')}]}`
  }
}
