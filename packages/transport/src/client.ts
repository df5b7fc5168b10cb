import { type Keypair, SplError } from '@spl/identity'
import { classifyHttpStatus, PullError } from './classify.js'
import { httpGet } from './http-get.js'
import { createRequestProof, PROOF_HEADER, verifyResponseProof } from './proof.js'
import { signedRequest } from './signed-request.js'
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
        body,
      })
    } catch (err) {
      if (err instanceof SplError && err.code === 'IDENTITY_MISMATCH') throw new PullError('IDENTITY_MISMATCH', err.message)
      throw new PullError('IDENTITY_MISMATCH', err instanceof Error ? err.message : String(err))
    }
    return { ...parsed.data, bytes: Buffer.byteLength(body), sentAt, receivedAt }
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
