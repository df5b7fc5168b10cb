import http, { type IncomingHttpHeaders } from 'node:http'
import https from 'node:https'
import { classifyFetchError, PullError } from './classify.js'

/** What a GET answered: status, headers (lowercase names) and the body as UTF-8 text. */
export interface HttpAnswer {
  status: number
  headers: IncomingHttpHeaders
  body: string
}

// Keep-alive agents: one pair's next page or long poll reuses its connection.
const agents = {
  'http:': new http.Agent({ keepAlive: true }),
  'https:': new https.Agent({ keepAlive: true }),
}

/** The largest answer read from a peer: the change feed caps its pages at 8 MiB. */
export const MAX_ANSWER_BYTES = 16 * 1024 * 1024

/**
 * GET `url` with node:http and a keep-alive agent (no fetch: its WebAssembly HTTP parser costs
 * ~12 MB resident and ~0.5 ms of CPU more per request). Fails with a classified PullError:
 * before the answer's head as CONNECT_REFUSED / DNS_FAILURE / TIMEOUT, while reading the body
 * as PARSE_ERROR (cut off, or over `maxBytes`) or TIMEOUT. A connection the peer closed while it
 * sat idle in the pool is retried once on a new one.
 */
export function httpGet(
  url: URL,
  headers: Record<string, string>,
  signal: AbortSignal,
  maxBytes: number = MAX_ANSWER_BYTES,
): Promise<HttpAnswer> {
  const agent = agents[url.protocol as keyof typeof agents]
  if (!agent) return Promise.reject(new PullError('CONNECT_REFUSED', `unsupported protocol ${url.protocol}`))
  const attempt = (retry: boolean): Promise<HttpAnswer> =>
    new Promise((resolve, reject) => {
      const get = url.protocol === 'https:' ? https.get : http.get
      const req = get(url, { headers, agent, signal }, (res) => {
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
            reject(
              signal.aborted ? classifyFetchError(signal.reason, 'body') : new PullError('PARSE_ERROR', 'the response body was cut off'),
            )
            return
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks, size).toString('utf8') })
        })
      })
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (retry && req.reusedSocket && err.code === 'ECONNRESET') resolve(attempt(false))
        else reject(classifyFetchError(err, 'connect'))
      })
    })
  return attempt(true)
}
