import { SplError } from '@spl/identity'

/** The `last_error.code` values of a failing pair (seed: "Pair error codes"). */
const PULL_ERROR_CODES = ['CONNECT_REFUSED', 'TIMEOUT', 'DNS_FAILURE', 'HTTP_4XX', 'HTTP_5XX', 'PARSE_ERROR', 'IDENTITY_MISMATCH'] as const
export type PullErrorCode = (typeof PULL_ERROR_CODES)[number]

const FIXES: Record<PullErrorCode, string> = {
  CONNECT_REFUSED: "check the peer is running; if cross-machine, make sure it's not bound only to 127.0.0.1",
  TIMEOUT: 'the network is slow or the peer is overloaded',
  DNS_FAILURE: 'typo in peer_url, or DNS is unavailable',
  HTTP_4XX: 'the peer rejected the request: check namespaces registered, consent grants, signatures',
  HTTP_5XX: "peer daemon error: check the peer's logs",
  PARSE_ERROR: "the peer returned malformed JSON: version mismatch, or the peer isn't an spl daemon",
  IDENTITY_MISMATCH: 'peer_url answers with another DID than the pair names: check the URL (curl <peer_url>/v1/identity)',
}

/** A failed call to a peer, classified. */
export class PullError extends SplError {
  override readonly name = 'PullError'
  constructor(
    readonly pullCode: PullErrorCode,
    detail: string,
    options: { status?: number; cause?: unknown; remoteCode?: string; httpStatus?: number } = {},
  ) {
    super(pullCode, detail, { status: options.status ?? 502, fix: FIXES[pullCode], cause: options.cause })
    this.remoteCode = options.remoteCode
    this.httpStatus = options.httpStatus
  }
  /** The error code in the peer's error envelope, when it sent one. */
  readonly remoteCode: string | undefined
  /** The HTTP status the peer answered, for HTTP_4XX / HTTP_5XX. */
  readonly httpStatus: number | undefined
}

function causeCode(err: unknown): string | undefined {
  let e: unknown = err
  for (let depth = 0; depth < 5 && e && typeof e === 'object'; depth++) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string') return code
    const errors = (e as { errors?: unknown }).errors
    if (Array.isArray(errors) && errors.length > 0) {
      const inner = causeCode(errors[0])
      if (inner) return inner
    }
    e = (e as { cause?: unknown }).cause
  }
  return undefined
}

/**
 * Maps a failed request (node:http or fetch; before or while reading the response) to a pull error code.
 * `phase` says whether response headers had arrived: a failure after that is a cut-off body.
 */
export function classifyFetchError(err: unknown, phase: 'connect' | 'body' = 'connect'): PullError {
  if (err instanceof PullError) return err
  const name = err instanceof Error ? err.name : ''
  const code = causeCode(err)
  const text = err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err)
  if (
    name === 'TimeoutError' ||
    name === 'AbortError' ||
    code === 'ETIMEDOUT' ||
    (code?.startsWith('UND_ERR_') && code.includes('TIMEOUT'))
  ) {
    return new PullError('TIMEOUT', `no answer in time (${code ?? name})`, { cause: err })
  }
  if (phase === 'body') return new PullError('PARSE_ERROR', `the response body was cut off (${code ?? text})`, { cause: err })
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_NONAME' || code === 'EAI_FAIL') {
    return new PullError('DNS_FAILURE', `the peer host does not resolve (${code})`, { cause: err })
  }
  if (
    code === 'ECONNREFUSED' ||
    code === 'ECONNRESET' ||
    code === 'EHOSTUNREACH' ||
    code === 'ENETUNREACH' ||
    code === 'EPIPE' ||
    code === 'UND_ERR_SOCKET' ||
    code === 'UND_ERR_CLOSED'
  ) {
    return new PullError('CONNECT_REFUSED', `cannot connect to the peer (${code})`, { cause: err })
  }
  return new PullError('CONNECT_REFUSED', `the request failed: ${text}`, { cause: err })
}

/** Maps an HTTP error status (with the peer's error envelope, if any) to a pull error. */
export function classifyHttpStatus(status: number, envelope: { code?: string; message?: string } | null): PullError {
  const what = envelope?.code ? `${envelope.code}: ${envelope.message ?? ''}`.trim() : `HTTP ${status}`
  const opts = { status: 502, httpStatus: status, ...(envelope?.code ? { remoteCode: envelope.code } : {}) }
  return status >= 500
    ? new PullError('HTTP_5XX', `peer answered ${status} (${what})`, opts)
    : new PullError('HTTP_4XX', `peer answered ${status} (${what})`, opts)
}
