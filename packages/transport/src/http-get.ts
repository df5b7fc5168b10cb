import http, { type IncomingHttpHeaders } from 'node:http'
import https from 'node:https'
import { classifyFetchError, PullError } from './classify.js'

/** What a GET answered: status, headers (lowercase names) and the body as UTF-8 text. */
export interface HttpAnswer {
  status: number
  headers: IncomingHttpHeaders
  body: string
  /** The body as received: what a response proof's digest covers, hashed without encoding `body` again. */
  raw: Buffer
}

// Keep-alive agents: one pair's next page or long poll reuses its connection.
const agents = {
  'http:': new http.Agent({ keepAlive: true }),
  'https:': new https.Agent({ keepAlive: true }),
}

/** The largest answer read from a peer: the change feed caps its pages at 8 MiB. */
export const MAX_ANSWER_BYTES = 16 * 1024 * 1024

/** Errors of a pooled connection the peer closed while it sat idle (nothing was answered on it). */
const STALE = new Set(['ECONNRESET', 'EPIPE'])

/**
 * Reads a whole answer as UTF-8 text, at most `maxBytes`: PARSE_ERROR when larger or cut off,
 * the classified error of the stream (or of the abort) otherwise. Both peer clients read with it.
 */
export function readAnswer(res: http.IncomingMessage, maxBytes: number, signal: AbortSignal): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    res.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size > maxBytes) {
        res.destroy()
        reject(new PullError('PARSE_ERROR', `the peer's answer is larger than ${maxBytes} bytes`))
        return
      }
      chunks.push(chunk)
    })
    res.on('error', (err) => reject(classifyFetchError(err, 'body')))
    res.on('close', () => {
      if (!res.complete) {
        reject(signal.aborted ? classifyFetchError(signal.reason, 'body') : new PullError('PARSE_ERROR', 'the response body was cut off'))
        return
      }
      const raw = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)
      resolve({ status: res.statusCode ?? 0, headers: res.headers, body: raw.toString('utf8'), raw })
    })
  })
}

/**
 * GET `url` with node:http and a keep-alive agent (no fetch: its WebAssembly HTTP parser costs
 * ~12 MB resident and ~0.5 ms of CPU more per request). Fails with a classified PullError:
 * before the answer's head as CONNECT_REFUSED / DNS_FAILURE / TIMEOUT, while reading the body
 * as PARSE_ERROR (cut off, reset, or over `maxBytes`) or TIMEOUT.
 *
 * `headers` is called for each attempt: when a pooled connection turns out to have been closed
 * by the peer before anything was answered on it, the request is made once more on a new
 * connection with fresh headers (a signed request must not be sent twice with the same proof).
 */
export async function httpGet(
  url: URL,
  headers: () => Record<string, string> | Promise<Record<string, string>>,
  signal: AbortSignal,
  maxBytes: number = MAX_ANSWER_BYTES,
): Promise<HttpAnswer> {
  const agent = agents[url.protocol as keyof typeof agents]
  if (!agent) throw new PullError('CONNECT_REFUSED', `unsupported protocol ${url.protocol}`)
  const get = url.protocol === 'https:' ? https.get : http.get
  const attempt = (sent: Record<string, string>): Promise<HttpAnswer | 'stale'> =>
    new Promise((resolve, reject) => {
      let answered = false
      const req = get(url, { headers: sent, agent, signal }, (res) => {
        answered = true
        readAnswer(res, maxBytes, signal).then(resolve, reject)
      })
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (!answered && req.reusedSocket && STALE.has(err.code ?? '')) resolve('stale')
        else reject(classifyFetchError(err, answered ? 'body' : 'connect'))
      })
    })
  const first = await attempt(await headers())
  if (first !== 'stale') return first
  const second = await attempt(await headers())
  if (second !== 'stale') return second
  throw new PullError('CONNECT_REFUSED', 'the peer closed the connection before answering')
}
