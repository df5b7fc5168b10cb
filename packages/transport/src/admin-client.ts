import { SplError } from '@spl/identity/errors'
import { errorEnvelopeSchema } from './wire.js'

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
    let res: Response
    try {
      res = await fetch(new URL(path, this.baseUrl), {
        method,
        headers,
        body: body === undefined ? null : JSON.stringify(body),
        signal: AbortSignal.timeout(init.timeoutMs ?? this.timeoutMs),
      })
    } catch (err) {
      throw new DaemonUnreachableError(this.baseUrl, err)
    }
    const text = await res.text()
    const type = res.headers.get('content-type') ?? ''
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
    if (!res.ok) {
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
