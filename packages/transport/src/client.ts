import { type Keypair, SplError } from '@spl/identity'
import { classifyHttpStatus, PullError } from './classify.js'
import { httpGet } from './http-get.js'
import { createRequestProof, PROOF_HEADER, verifyResponseProof } from './proof.js'
import { PeerRefusedError, signedRequest } from './signed-request.js'
import {
  CHANGES_PATH,
  type ChangesQuery,
  type ChangesResponse,
  changesResponseSchema,
  DEFAULT_LONGPOLL_MS,
  errorEnvelopeSchema,
  type Feed,
  MAX_CHANGES_BYTES,
  toSearchParams,
  WATCH_PATH,
  type WatchBody,
  type WatchChange,
  watchResponseSchema,
} from './wire.js'

/** One change-feed request from a puller. */
export interface ChangesRequest {
  peerUrl: string
  peerDid: string
  thread: string
  cursor: string | null
  limit?: number
  feed: Feed
  timeoutMs?: number
  targetNamespace?: string
  /** The most this puller reads from one page, in UTF-8 bytes (sent as `max_bytes`; 8 MiB when left out). */
  maxBytes?: number
  bearer?: string | null
  signal?: AbortSignal
}

/** A verified change-feed page plus what the puller measured while getting it. */
export interface ChangesPage extends ChangesResponse {
  bytes: number
  sentAt: number
  receivedAt: number
}

/** One round (or one records request) to a source's `POST /v1/sync/reconcile` (SPEC 13). */
export interface ReconcileRequest {
  peerUrl: string
  peerDid: string
  body: unknown
  bearer?: string | null
  signal?: AbortSignal
}

/** The source's answer, with the bytes each way (what an audit costs). */
export interface ReconcileAnswer {
  json: unknown
  bytesSent: number
  bytesReceived: number
}

/** One per-peer watch (`POST /v1/sync/watch`): many threads of one peer, each with its cursor. */
export interface WatchRequest {
  peerUrl: string
  peerDid: string
  threads: { thread: string; since: string | null }[]
  timeoutMs: number
  limit?: number
  targetNamespace?: string
  bearer?: string | null
  signal?: AbortSignal
}

/** A thread of a watch's answer as a change-feed page (what `fetchChanges` would have answered), or its refusal. */
export type WatchedChange =
  | { thread: string; page: ChangesPage }
  | { thread: string; error: Extract<WatchChange, { error: unknown }>['error'] }

/** A peer that refuses the watch door (404 from one that predates it): its pairs long-poll one thread each. */
export class WatchUnsupportedError extends PullError {
  constructor(status: number) {
    super('HTTP_4XX', `the peer has no watch door (HTTP ${status}): each pair long-polls on its own`, { httpStatus: status })
  }
}

/** Pulls change-feed pages from peers, signing each request and checking each response proof. */
export class PeerClient {
  constructor(
    private readonly keypair: Keypair,
    private readonly now: () => number = Date.now,
  ) {}

  /** One request to `GET /v1/sync/changes`; throws PullError with a classified code. */
  async fetchChanges(req: ChangesRequest): Promise<ChangesPage> {
    const waitMs = req.feed === 'longpoll' ? (req.timeoutMs ?? DEFAULT_LONGPOLL_MS) : 0
    const query: ChangesQuery = {
      thread: req.thread,
      since: req.cursor || undefined,
      limit: req.limit ? String(req.limit) : undefined,
      feed: req.feed,
      timeout: req.feed === 'longpoll' ? String(waitMs) : undefined,
      target_namespace: req.targetNamespace || undefined,
      max_bytes: String(req.maxBytes ?? MAX_CHANGES_BYTES),
    }
    const url = new URL(CHANGES_PATH, req.peerUrl)
    url.search = toSearchParams(query).toString()
    const pathAndQuery = url.pathname + url.search
    // A fresh proof (and jti) for each attempt: see httpGet.
    let jti = ''
    const headers = async () => {
      const proof = await createRequestProof(this.keypair, { method: 'GET', pathAndQuery, aud: req.peerDid })
      jti = proof.jti
      const h: Record<string, string> = { [PROOF_HEADER]: proof.token, accept: 'application/json' }
      if (req.bearer) h['authorization'] = `Bearer ${req.bearer}`
      return h
    }
    const timeout = AbortSignal.timeout(waitMs + 15_000)
    const signal = req.signal ? AbortSignal.any([timeout, req.signal]) : timeout
    const sentAt = this.now()
    const res = await httpGet(url, headers, signal)
    const body = res.body
    const receivedAt = this.now()
    if (res.status < 200 || res.status > 299) {
      let envelope: { code?: string; message?: string } | null = null
      try {
        const parsed = errorEnvelopeSchema.safeParse(JSON.parse(body))
        if (parsed.success) envelope = parsed.data
      } catch {
        // a non-JSON error page: keep the status only
      }
      throw classifyHttpStatus(res.status, envelope)
    }
    let json: unknown
    try {
      json = JSON.parse(body)
    } catch {
      throw new PullError('PARSE_ERROR', `the peer answered ${body.length} bytes that are not JSON`)
    }
    const parsed = changesResponseSchema.safeParse(json)
    if (!parsed.success) {
      const issue = parsed.error.issues[0]
      throw new PullError('PARSE_ERROR', `the change feed answer does not fit the schema (${issue?.path.join('.')}: ${issue?.message})`)
    }
    try {
      const proof = res.headers[PROOF_HEADER.toLowerCase()]
      await verifyResponseProof(typeof proof === 'string' ? proof : null, {
        peerDid: req.peerDid,
        callerDid: this.keypair.did,
        jti,
        body: res.raw,
      })
    } catch (err) {
      if (err instanceof SplError && err.code === 'IDENTITY_MISMATCH') throw new PullError('IDENTITY_MISMATCH', err.message)
      throw new PullError('IDENTITY_MISMATCH', err instanceof Error ? err.message : String(err))
    }
    return { ...parsed.data, bytes: res.raw.length, sentAt, receivedAt }
  }

  /**
   * One watch: held by the source until a named thread has something for this caller (or the
   * timeout), then each such thread's page. A 4xx → WatchUnsupportedError (an older peer, most often).
   */
  async watch(req: WatchRequest): Promise<WatchedChange[]> {
    const body: WatchBody = {
      threads: req.threads.map((t) => (t.since ? { thread: t.thread, since: t.since } : { thread: t.thread })),
      timeout: req.timeoutMs,
      max_bytes: MAX_CHANGES_BYTES,
      ...(req.limit ? { limit: req.limit } : {}),
      ...(req.targetNamespace ? { target_namespace: req.targetNamespace } : {}),
    }
    const sentAt = this.now()
    let answer: { json: unknown }
    try {
      answer = await signedRequest(this.keypair, {
        peerUrl: req.peerUrl,
        method: 'POST',
        path: WATCH_PATH,
        body,
        aud: req.peerDid,
        bearer: req.bearer ?? undefined,
        timeoutMs: req.timeoutMs + 15_000,
        // The pages of every thread together are at most the feed's page size, plus their frames.
        maxAnswerBytes: MAX_CHANGES_BYTES + 1024 * 1024,
        ...(req.signal ? { signal: req.signal } : {}),
      })
    } catch (err) {
      // Any refusal of the door as a whole (404 from an older peer, 400 from a server that routes
      // it elsewhere, 401/403): each pair asks alone, and meets what it meets as its own pull would.
      if (err instanceof PeerRefusedError && err.httpStatus !== undefined && err.httpStatus < 500) {
        throw new WatchUnsupportedError(err.httpStatus)
      }
      throw err
    }
    const receivedAt = this.now()
    const parsed = watchResponseSchema.safeParse(answer.json)
    if (!parsed.success) {
      const issue = parsed.error.issues[0]
      throw new PullError('PARSE_ERROR', `the watch answer does not fit the schema (${issue?.path.join('.')}: ${issue?.message})`)
    }
    const { changes, server_time } = parsed.data
    return changes.map((c): WatchedChange => {
      if ('error' in c) return { thread: c.thread, error: c.error }
      const { thread, ...page } = c
      // What a page weighed is not sent; its records' share of the answer stands in for it.
      const bytes = JSON.stringify(page.records).length
      return { thread, page: { ...page, server_time, bytes, sentAt, receivedAt } }
    })
  }

  /** A signed request to the reconcile door; the answer's proof is checked. */
  async reconcile(req: ReconcileRequest): Promise<ReconcileAnswer> {
    const answer = await signedRequest(this.keypair, {
      peerUrl: req.peerUrl,
      method: 'POST',
      path: '/v1/sync/reconcile',
      body: req.body,
      aud: req.peerDid,
      bearer: req.bearer ?? undefined,
      timeoutMs: 60_000,
      maxAnswerBytes: 32 * 1024 * 1024,
      ...(req.signal ? { signal: req.signal } : {}),
    })
    return {
      json: answer.json,
      bytesSent: Buffer.byteLength(JSON.stringify(req.body)),
      bytesReceived: Buffer.byteLength(JSON.stringify(answer.json)),
    }
  }
}
