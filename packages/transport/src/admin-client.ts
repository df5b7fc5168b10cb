import http from 'node:http'
import https from 'node:https'
import { SplError } from '@spl/identity/errors'
import { errorEnvelopeSchema } from './wire.js'

/** The largest admin answer read (a long thread's records): far above any page, below memory trouble. */
const MAX_ADMIN_ANSWER_BYTES = 512 * 1024 * 1024

interface Answer {
  status: number
  type: string
  text: string
}

/**
 * One HTTP exchange with node:http (no fetch: loading its WebAssembly parser costs the CLI
 * ~100 ms at start, issue 14). Idle keep-alive sockets of the global agent are unref'd, so a
 * one-shot CLI exits as soon as it is done.
 */
function exchange(url: URL, method: string, headers: Record<string, string>, body: string | undefined, timeoutMs: number): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const send = url.protocol === 'https:' ? https.request : http.request
    const req = send(url, { method, headers, signal: AbortSignal.timeout(timeoutMs) }, (res) => {
      const chunks: Buffer[] = []
      let size = 0
      res.on('data', (chunk: Buffer) => {
        size += chunk.length
        if (size > MAX_ADMIN_ANSWER_BYTES) {
          res.destroy(new Error(`the answer is larger than ${MAX_ADMIN_ANSWER_BYTES} bytes`))
          return
        }
        chunks.push(chunk)
      })
      res.on('error', reject)
      res.on('end', () => {
        const type = res.headers['content-type']
        resolve({
          status: res.statusCode ?? 0,
          type: typeof type === 'string' ? type : '',
          text: Buffer.concat(chunks, size).toString('utf8'),
        })
      })
    })
    req.on('error', reject)
    req.end(body)
  })
}

/** An error answered by a daemon, carried to the caller with its code and fix. */
export class RemoteError extends SplError {
  override readonly name = 'RemoteError'
}

/** The daemon could not be reached at all. */
export class DaemonUnreachableError extends SplError {
  override readonly name = 'DaemonUnreachableError'
  constructor(
    readonly url: string,
    cause: unknown,
  ) {
    super('DAEMON_UNREACHABLE', `no spl daemon answers at ${url}.`, {
      status: 503,
      fix: 'start it with `spl serve --daemon` (or point SPL_DAEMON_URL at the right daemon)',
      cause,
    })
  }
}

/** A typed JSON client for a daemon's admin doors, used by the CLI and tests. */
export class SplClient {
  constructor(
    readonly baseUrl: string,
    private readonly adminToken?: string,
    private readonly timeoutMs = 30_000,
  ) {}

  /** Calls `method path` with an optional JSON body; returns the parsed JSON or throws RemoteError. */
  async request<T = unknown>(method: string, path: string, body?: unknown, init: { timeoutMs?: number } = {}): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' }
    if (this.adminToken) headers['authorization'] = `Bearer ${this.adminToken}`
    if (body !== undefined) headers['content-type'] = 'application/json'
    const payload = body === undefined ? undefined : JSON.stringify(body)
    if (payload !== undefined) headers['content-length'] = String(Buffer.byteLength(payload))
    let res: Answer
    try {
      res = await exchange(new URL(path, this.baseUrl), method, headers, payload, init.timeoutMs ?? this.timeoutMs)
    } catch (err) {
      throw new DaemonUnreachableError(this.baseUrl, err)
    }
    const text = res.text
    const type = res.type
    let json: unknown = text
    if (type.includes('json') && text.length > 0) {
      try {
        json = JSON.parse(text)
      } catch {
        throw new RemoteError('PARSE_ERROR', `${method} ${path} answered malformed JSON`, {
          status: res.status,
        })
      }
    }
    if (res.status < 200 || res.status >= 300) {
      const env = errorEnvelopeSchema.safeParse(json)
      if (env.success) {
        throw new RemoteError(env.data.code, env.data.message, {
          status: res.status,
          ...(env.data.fix ? { fix: env.data.fix } : {}),
        })
      }
      throw new RemoteError(`HTTP_${res.status}`, `${method} ${path} answered ${res.status}`, {
        status: res.status,
      })
    }
    return json as T
  }

  get<T = unknown>(path: string): Promise<T> {
    return this.request<T>('GET', path)
  }
  post<T = unknown>(path: string, body: unknown = {}): Promise<T> {
    return this.request<T>('POST', path, body)
  }
  delete<T = unknown>(path: string): Promise<T> {
    return this.request<T>('DELETE', path)
  }
}
