// Signed JSON requests to a peer's doors other than the change feed (pairing, link management):
// an SPL-Proof on the request, the peer's SPL-Proof checked on the answer (SPEC 7.4).
import http from 'node:http'
import https from 'node:https'
import type { Keypair } from '@spl/identity'
import { classifyFetchError, PullError } from './classify.js'
import { type HttpAnswer, readAnswer } from './http-get.js'
import { createRequestProof, PROOF_HEADER, verifyResponseProof } from './proof.js'
import { errorEnvelopeSchema } from './wire.js'

/** The largest answer read from a peer's management doors. */
const MAX_ANSWER_BYTES = 1024 * 1024

export interface SignedRequest {
  /** The peer's base URL (its path is kept: a daemon behind https://host/spl/). */
  peerUrl: string
  method: 'POST' | 'GET' | 'DELETE'
  /** The door's path, e.g. `/v1/federation/pair`. */
  path: string
  body?: unknown
  /** The peer's DID: the proof's `aud`, and who must sign the answer. `'*'` on a first contact. */
  aud: string
  /** Who must sign the answer (defaults to `aud`; on a first contact, the DID of the manifest). */
  responder?: string
  bearer?: string | undefined
  timeoutMs?: number
  signal?: AbortSignal
  /** The largest answer read (1 MiB unless said). */
  maxAnswerBytes?: number
}

/** What a peer answered: the status and the parsed JSON (an error envelope for 4xx/5xx). */
export interface SignedAnswer<T = unknown> {
  status: number
  json: T
}

/** An answer that is an error: status and the peer's code kept. */
export class PeerRefusedError extends PullError {
  constructor(
    status: number,
    envelope: { code?: string; message?: string; fix?: string } | null,
    /** True when the answer carried the peer's valid SPL-Proof (a refusal only it could make). */
    readonly signed = false,
    /** The answer's Retry-After, in ms (a 429 or 503 says when to come back). */
    readonly retryAfterMs?: number,
  ) {
    super(status >= 500 ? 'HTTP_5XX' : 'HTTP_4XX', envelope?.code ? `${envelope.code}: ${envelope.message ?? ''}` : `HTTP ${status}`, {
      httpStatus: status,
      ...(envelope?.code ? { remoteCode: envelope.code } : {}),
    })
    this.peerFix = envelope?.fix
  }
  /** The peer's own fix, when it sent one. */
  readonly peerFix: string | undefined
}

function send(
  url: URL,
  method: string,
  headers: Record<string, string>,
  body: string | undefined,
  signal: AbortSignal,
  maxBytes: number,
): Promise<HttpAnswer> {
  const request = url.protocol === 'https:' ? https.request : http.request
  return new Promise((resolve, reject) => {
    // No keep-alive: a POST is never sent twice because a pooled socket turned out stale.
    const req = request(url, { method, headers, signal, agent: false }, (res) => {
      readAnswer(res, maxBytes, signal).then(resolve, reject)
    })
    req.on('error', (err) => reject(classifyFetchError(err, 'connect')))
    req.end(body)
  })
}

/**
 * Sends one signed JSON request and checks the answer's proof. Answers 2xx → `{status, json}`;
 * 4xx/5xx → PeerRefusedError with the peer's code; network trouble → PullError.
 */
export async function signedRequest<T = unknown>(keypair: Keypair, req: SignedRequest): Promise<SignedAnswer<T>> {
  const base = req.peerUrl.replace(/\/+$/, '')
  let url: URL
  try {
    url = new URL(`${base}${req.path}`)
  } catch {
    throw new PullError('DNS_FAILURE', `'${req.peerUrl.slice(0, 200)}' is not a URL`)
  }
  const pathAndQuery = url.pathname + url.search
  const proof = await createRequestProof(keypair, { method: req.method, pathAndQuery, aud: req.aud })
  const body = req.body === undefined ? undefined : JSON.stringify(req.body)
  const headers: Record<string, string> = { [PROOF_HEADER]: proof.token, accept: 'application/json' }
  if (body !== undefined) {
    headers['content-type'] = 'application/json'
    headers['content-length'] = String(Buffer.byteLength(body))
  }
  if (req.bearer) headers['authorization'] = `Bearer ${req.bearer}`
  const timeout = AbortSignal.timeout(req.timeoutMs ?? 10_000)
  const signal = req.signal ? AbortSignal.any([timeout, req.signal]) : timeout
  const res = await send(url, req.method, headers, body, signal, req.maxAnswerBytes ?? MAX_ANSWER_BYTES)
  let json: unknown
  try {
    json = JSON.parse(res.body)
  } catch {
    // An error page that is not JSON (a proxy's, or a server without this door) is still a refusal with its status.
    if (res.status >= 400) throw new PeerRefusedError(res.status, null)
    throw new PullError('PARSE_ERROR', `the peer answered HTTP ${res.status} with ${res.body.length} bytes that are not JSON`)
  }
  const responder = req.responder ?? req.aud
  const header = res.headers[PROOF_HEADER.toLowerCase()]
  const checkProof = () =>
    verifyResponseProof(typeof header === 'string' ? header : null, {
      peerDid: responder,
      callerDid: keypair.did,
      jti: proof.jti,
      body: res.raw,
    })
  if (res.status < 200 || res.status > 299) {
    const parsed = errorEnvelopeSchema.safeParse(json)
    // A refusal is believed as the peer's only when it is signed by the peer (else it may be forged on the way).
    const signed =
      responder !== '*' &&
      typeof header === 'string' &&
      (await checkProof().then(
        () => true,
        () => false,
      ))
    const retry = Number(res.headers['retry-after'])
    throw new PeerRefusedError(
      res.status,
      parsed.success ? parsed.data : null,
      signed,
      Number.isFinite(retry) && retry >= 0 ? retry * 1000 : undefined,
    )
  }
  if (responder !== '*') {
    try {
      await checkProof()
    } catch (err) {
      throw new PullError('IDENTITY_MISMATCH', err instanceof Error ? err.message : String(err))
    }
  }
  return { status: res.status, json: json as T }
}
