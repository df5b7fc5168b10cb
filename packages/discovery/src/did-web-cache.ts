// The did:web resolver and its cache (SPEC 8): a resolution is fresh for 1 h, then stale — served
// at once while one fetch refreshes it in the background — and expired after 1 day, when the
// next resolution waits for the fetch. A refresh that fails on the network keeps the stale copy
// (the domain may be briefly down); one the domain answers with "not found" or a bad document
// drops it. `resolve(did, {refresh: true})` fetches now (a manifest signed by another key);
// `flush()` forgets everything.
import { SplError } from '@spl/identity'
import { type DidWebResolution, fetchDidWebDocument, readDidWebDocument, toDidWeb } from './did-web.js'
import type { DiscoveryLogger } from './source.js'

export const DID_WEB_STALE_MS = 60 * 60 * 1000
export const DID_WEB_EXPIRE_MS = 24 * 60 * 60 * 1000

export interface DidWebResolverOptions {
  now?: () => number
  /** Fetches the document of a (normalised) did:web and returns its parsed JSON; throws DidWebError. */
  fetchDocument?: (did: string) => Promise<unknown>
  /** Fresh this long (1 h). */
  staleMs?: number
  /** Dropped this long after its fetch (1 day). */
  expireMs?: number
  /** One fetch may take this long (5 s). */
  timeoutMs?: number
  /** At most this many documents are kept (the oldest goes first). */
  maxEntries?: number
  logger?: DiscoveryLogger
}

/** A resolution, and whether it came from the cache (then it may be up to a day old). */
export type CachedResolution = DidWebResolution & { fromCache: boolean }

export class DidWebResolver {
  readonly #now: () => number
  readonly #fetch: (did: string) => Promise<unknown>
  readonly #staleMs: number
  readonly #expireMs: number
  readonly #maxEntries: number
  readonly #logger: DiscoveryLogger | undefined
  readonly #cache = new Map<string, DidWebResolution>()
  readonly #inFlight = new Map<string, Promise<DidWebResolution>>()
  /** Bumped by flush(): a fetch started before it does not fill the cache after it. */
  #generation = 0

  constructor(options: DidWebResolverOptions = {}) {
    this.#now = options.now ?? Date.now
    const timeoutMs = options.timeoutMs ?? 5000
    this.#fetch = options.fetchDocument ?? ((did) => fetchDidWebDocument(did, { timeoutMs }))
    this.#staleMs = options.staleMs ?? DID_WEB_STALE_MS
    this.#expireMs = options.expireMs ?? DID_WEB_EXPIRE_MS
    this.#maxEntries = options.maxEntries ?? 1024
    this.#logger = options.logger
  }

  /**
   * Resolves `input` (a domain, domain:port or did:web): from the cache while fresh, from the
   * cache while stale (refreshing in the background), else by fetching. `refresh` fetches now.
   * Throws DidWebError (DID_WEB_INVALID, DID_NOT_FOUND, DID_RESOLVE_FAILED, DID_DOCUMENT_INVALID).
   */
  async resolve(input: string, options: { refresh?: boolean } = {}): Promise<CachedResolution> {
    const did = toDidWeb(input)
    const cached = this.#cache.get(did)
    const age = cached ? this.#now() - cached.fetchedAt : Number.POSITIVE_INFINITY
    if (cached && !options.refresh && age < this.#expireMs) {
      if (age >= this.#staleMs) this.#refreshInBackground(did)
      return { ...cached, fromCache: true }
    }
    if (cached && age >= this.#expireMs) this.#cache.delete(did)
    return { ...(await this.#fetchOnce(did)), fromCache: false }
  }

  /** The cached resolution of `input` without fetching (also when stale; undefined when expired or unknown). */
  peek(input: string): DidWebResolution | undefined {
    const cached = this.#cache.get(toDidWeb(input))
    return cached && this.#now() - cached.fetchedAt < this.#expireMs ? cached : undefined
  }

  /** Forgets every cached document (`spl fleet sync peers flush`). */
  flush(): void {
    this.#generation++
    this.#cache.clear()
    this.#inFlight.clear()
  }

  /** Cached documents (fresh, stale or expired but not yet dropped). */
  get size(): number {
    return this.#cache.size
  }

  #refreshInBackground(did: string): void {
    if (this.#inFlight.has(did)) return
    this.#fetchOnce(did).catch((err: unknown) => {
      const e = SplError.from(err)
      this.#logger?.warn({ did, code: e.code }, `did:web: refreshing ${did} failed: ${e.message}`)
    })
  }

  /** One fetch per DID at a time; stores what it got, drops the entry on "not found" or a bad document. */
  #fetchOnce(did: string): Promise<DidWebResolution> {
    const running = this.#inFlight.get(did)
    if (running) return running
    const p = this.#load(did, this.#generation)
    this.#inFlight.set(did, p)
    p.then(
      () => this.#settled(did, p),
      () => this.#settled(did, p),
    )
    return p
  }

  #settled(did: string, p: Promise<DidWebResolution>): void {
    if (this.#inFlight.get(did) === p) this.#inFlight.delete(did)
  }

  async #load(did: string, generation: number): Promise<DidWebResolution> {
    try {
      const resolution = readDidWebDocument(await this.#fetch(did), did, this.#now())
      if (generation === this.#generation) {
        this.#cache.delete(did)
        if (this.#cache.size >= this.#maxEntries) this.#cache.delete(this.#cache.keys().next().value as string)
        this.#cache.set(did, resolution)
      }
      return resolution
    } catch (err) {
      const code = err instanceof SplError ? err.code : ''
      // The domain answered that there is no usable document: a stale copy must not outlive that.
      if ((code === 'DID_NOT_FOUND' || code === 'DID_DOCUMENT_INVALID') && generation === this.#generation) this.#cache.delete(did)
      throw err
    }
  }
}
