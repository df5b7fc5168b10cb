// A client of a did:sync directory (another daemon's /directory/* doors). Every entry it hands
// back was checked again here against its own signature: a directory can drop entries, but not
// invent or alter one.
import http from 'node:http'
import https from 'node:https'
import { type Keypair, SplError } from '@spl/identity'
import { type Registration, type RegistrationInit, signDelete, signRegistration, verifyRegistration } from './registration.js'
import type { DirectoryEntry, ImportResult } from './store.js'

/** The largest answer read from a directory (an export page of 1000 entries of 8 KiB, and room). */
const MAX_ANSWER_BYTES = 16 * 1024 * 1024
/** At most this many pages are followed for one listing. */
const MAX_PAGES = 100

interface Answer {
  status: number
  json: unknown
}

/** The directory did not answer (refused, timed out, not HTTP). */
export class DirectoryUnreachableError extends SplError {
  override readonly name = 'DirectoryUnreachableError'
  constructor(url: string, detail: string, cause?: unknown) {
    super('DIRECTORY_UNREACHABLE', `the directory at ${url.slice(0, 200)} did not answer: ${detail}`, {
      status: 502,
      cause,
      fix: 'check --directory (or [sync.discovery] directory_url) and that the daemon there runs with [directory] enabled = true',
    })
  }
}

/** One JSON request with node:http(s): GET, POST (a JSON body) or DELETE. */
function requestJson(
  method: 'GET' | 'POST' | 'DELETE',
  url: URL,
  options: { body?: unknown; headers?: Record<string, string>; signal: AbortSignal },
): Promise<Answer> {
  const body = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body), 'utf8')
  const send = url.protocol === 'https:' ? https.request : http.request
  return new Promise((resolve, reject) => {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      reject(new DirectoryUnreachableError(url.origin, `unsupported protocol ${url.protocol}`))
      return
    }
    const req = send(
      url,
      {
        method,
        signal: options.signal,
        headers: {
          accept: 'application/json',
          ...(body ? { 'content-type': 'application/json', 'content-length': String(body.length) } : {}),
          ...options.headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = []
        let size = 0
        res.on('data', (chunk: Buffer) => {
          size += chunk.length
          if (size > MAX_ANSWER_BYTES) {
            res.destroy()
            reject(new DirectoryUnreachableError(url.origin, `the answer is larger than ${MAX_ANSWER_BYTES} bytes`))
            return
          }
          chunks.push(chunk)
        })
        res.on('error', (err) => reject(new DirectoryUnreachableError(url.origin, err.message, err)))
        res.on('end', () => {
          const text = Buffer.concat(chunks, size).toString('utf8')
          let json: unknown
          try {
            json = JSON.parse(text)
          } catch {
            reject(new DirectoryUnreachableError(url.origin, `HTTP ${res.statusCode}, and the answer is not JSON: not a directory?`))
            return
          }
          resolve({ status: res.statusCode ?? 0, json })
        })
      },
    )
    req.on('error', (err: NodeJS.ErrnoException) => {
      const detail = options.signal.aborted ? 'timed out' : err.code ? `${err.code}: ${err.message}` : err.message
      reject(new DirectoryUnreachableError(url.origin, detail, err))
    })
    req.end(body)
  })
}

/** The directory's error envelope as a SplError (its code kept), or a plain one for a non-envelope. */
function answerError(a: Answer, what: string): SplError {
  const env = a.json as { object?: unknown; code?: unknown; message?: unknown; fix?: unknown } | null
  if (env && env.object === 'error' && typeof env.code === 'string') {
    return new SplError(env.code, `${what}: ${String(env.message ?? '')}`, {
      status: a.status,
      ...(typeof env.fix === 'string' ? { fix: env.fix } : {}),
    })
  }
  return new SplError('DIRECTORY_ERROR', `${what}: the directory answered HTTP ${a.status}`, { status: 502 })
}

export interface DirectoryClientOptions {
  /** Per request (ms). */
  timeoutMs?: number
  signal?: AbortSignal | undefined
  now?: () => number
}

/** An entry a directory handed out, checked against its own signature (the claims are the JWT's). */
export interface CheckedEntry extends Registration {}

/** A did:sync directory at `baseUrl` (a daemon with `[directory] enabled = true`). */
export class DirectoryClient {
  readonly baseUrl: string
  readonly #timeoutMs: number
  readonly #signal: AbortSignal | undefined
  readonly #now: () => number

  constructor(baseUrl: string, options: DirectoryClientOptions = {}) {
    let u: URL
    try {
      u = new URL(baseUrl)
    } catch {
      throw new SplError('URL_INVALID', `'${baseUrl.slice(0, 200)}' is not a directory URL`, { fix: 'give a URL such as http://host:9100' })
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') {
      throw new SplError('URL_INVALID', `'${baseUrl.slice(0, 200)}' is not an http(s) URL`, { fix: 'give a URL such as http://host:9100' })
    }
    this.baseUrl = baseUrl.replace(/\/+$/, '')
    this.#timeoutMs = options.timeoutMs ?? 5000
    this.#signal = options.signal
    this.#now = options.now ?? Date.now
  }

  async #call(method: 'GET' | 'POST' | 'DELETE', path: string, init: { body?: unknown; headers?: Record<string, string> } = {}) {
    const timeout = AbortSignal.timeout(this.#timeoutMs)
    const signal = this.#signal ? AbortSignal.any([this.#signal, timeout]) : timeout
    return requestJson(method, new URL(`${this.baseUrl}${path}`), { ...init, signal })
  }

  /** The entry checked again here; undefined (dropped) when it does not verify or says something else than the directory. */
  async #checked(entry: unknown): Promise<CheckedEntry | undefined> {
    const e = entry as Partial<DirectoryEntry> | null
    if (!e || typeof e.jwt !== 'string') return undefined
    try {
      const reg = await verifyRegistration(e.jwt, { now: this.#now() })
      return e.did === undefined || e.did === reg.did ? reg : undefined
    } catch {
      return undefined
    }
  }

  /** Signs a registration of `keypair.did` and registers it; returns the entry and whether it replaced one. */
  async register(keypair: Keypair, init: RegistrationInit): Promise<{ entry: CheckedEntry; replaced: boolean }> {
    return this.registerSigned(await signRegistration(keypair, { ...init, now: init.now ?? this.#now() }))
  }

  /** Registers an already signed registration. */
  async registerSigned(jwt: string): Promise<{ entry: CheckedEntry; replaced: boolean }> {
    const a = await this.#call('POST', '/directory/register', { body: { registration: jwt } })
    if (a.status !== 200 && a.status !== 201) throw answerError(a, 'the directory refused the registration')
    const body = a.json as { entry?: unknown; replaced?: unknown }
    const entry = await this.#checked(body.entry)
    if (!entry || entry.jwt !== jwt)
      throw new SplError('DIRECTORY_ERROR', 'the directory answered another entry than the one registered', { status: 502 })
    return { entry, replaced: body.replaced === true }
  }

  /** Deletes `keypair.did`'s entry with a delete signed by it. */
  async unregister(keypair: Keypair): Promise<void> {
    const token = await signDelete(keypair, { now: this.#now() })
    const a = await this.#call('DELETE', `/directory/${encodeURIComponent(keypair.did)}`, { headers: { authorization: `Bearer ${token}` } })
    if (a.status !== 200) throw answerError(a, 'the directory refused the delete')
  }

  async #one(path: string, what: string): Promise<CheckedEntry | undefined> {
    const a = await this.#call('GET', path)
    if (a.status === 404 && (a.json as { code?: unknown })?.code === 'DIRECTORY_ENTRY_NOT_FOUND') return undefined
    if (a.status !== 200) throw answerError(a, what)
    return this.#checked(a.json)
  }

  /** The entry of a DID (or of `did:sync:<handle>`); undefined when none. */
  resolve(did: string): Promise<CheckedEntry | undefined> {
    return this.#one(`/directory/resolve/${encodeURIComponent(did)}`, `resolving ${did.slice(0, 200)}`)
  }

  /** The entry that claims `handle`; undefined when none (or it names another handle). */
  async byHandle(handle: string): Promise<CheckedEntry | undefined> {
    const bare = handle.startsWith('did:sync:') ? handle.slice('did:sync:'.length) : handle
    const entry = await this.#one(`/directory/handle/${encodeURIComponent(bare)}`, `looking up the handle ${bare.slice(0, 100)}`)
    return entry?.handle === bare ? entry : undefined
  }

  /** Every entry registered in `namespace` (pages followed), each checked; entries of other namespaces are dropped. */
  async byNamespace(namespace: string): Promise<CheckedEntry[]> {
    const out: CheckedEntry[] = []
    for (const page of await this.#pages(`/directory/namespaces/${encodeURIComponent(namespace)}`, 'entries', `listing ${namespace}`)) {
      const e = await this.#checked(page)
      if (e?.namespaces.includes(namespace)) out.push(e)
    }
    return out
  }

  /** Every entry of the directory, as signed registrations (pages followed); each verifies. */
  async export(): Promise<string[]> {
    const jwts = (await this.#pages('/directory/export', 'entries', 'exporting')) as unknown[]
    const out: string[] = []
    for (const jwt of jwts) if ((await this.#checked({ jwt })) !== undefined) out.push(jwt as string)
    return out
  }

  /** Posts registrations (an export of another directory) to this one's import, in batches. */
  async import(jwts: readonly string[], batch = 500): Promise<ImportResult> {
    const total: ImportResult = { object: 'directory_import', added: 0, replaced: 0, unchanged: 0, skipped: [] }
    for (let i = 0; i < jwts.length; i += batch) {
      const a = await this.#call('POST', '/directory/import', { body: { entries: jwts.slice(i, i + batch) } })
      if (a.status !== 200) throw answerError(a, 'the directory refused the import')
      const r = a.json as ImportResult
      total.added += r.added
      total.replaced += r.replaced
      total.unchanged += r.unchanged
      total.skipped.push(...r.skipped.map((s) => ({ ...s, index: s.index + i })))
    }
    return total
  }

  /** Follows `next` through the pages of a listing and returns the items of `key`. */
  async #pages(path: string, key: 'entries', what: string): Promise<unknown[]> {
    const items: unknown[] = []
    let after: string | undefined
    for (let n = 0; n < MAX_PAGES; n++) {
      const a = await this.#call('GET', after === undefined ? path : `${path}?after=${encodeURIComponent(after)}`)
      if (a.status !== 200) throw answerError(a, what)
      const body = a.json as { [k: string]: unknown; next?: unknown }
      const list = body[key]
      if (!Array.isArray(list)) throw new SplError('DIRECTORY_ERROR', `${what}: the answer has no ${key} list`, { status: 502 })
      items.push(...list)
      if (typeof body.next !== 'string' || body.next === after) break
      after = body.next
    }
    return items
  }
}
