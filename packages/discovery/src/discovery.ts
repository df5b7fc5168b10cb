// The one place that asks every source, merges what they found by DID and decides `verified`
// (SPEC 8): a sighting proves nothing until the manifest fetched from its URL is signed by the
// DID it claims. Discovery only reports; it never creates a pair.
import { SplError } from '@spl/identity'
import { fetchVerifiedManifest, type VerifiedManifest } from './manifest.js'
import type { DiscoverQuery, DiscoveryLogger, DiscoveryMethod, FoundPeer, ListeningAddress, PeerSource } from './source.js'

/** A peer as discovery reports it: every sighting merged under its DID. */
export interface DiscoveredPeer {
  did: string
  /** The URL to use: a verified one when there is one. */
  url: string
  handle?: string | undefined
  namespace?: string | undefined
  aka?: string[] | undefined
  /** The methods that found it. */
  sources: DiscoveryMethod[]
  /** Each sighting: which source, which URL, when. */
  found: { source: DiscoveryMethod; url: string; last_seen: number }[]
  last_seen: number
  /** True once the manifest at `url` was fetched and is signed by `did`. */
  verified: boolean
  /** Why it is not verified (the manifest's error), when it was tried. */
  verify_error?: { code: string; message: string } | undefined
}

/** A source that could not answer (a directory down, a domain without did.json). */
export interface SourceFailure {
  method: DiscoveryMethod
  code: string
  message: string
  fix?: string | undefined
}

export interface DiscoverResult {
  peers: DiscoveredPeer[]
  failures: SourceFailure[]
}

export type ManifestVerifier = (url: string, expectedDid: string, signal?: AbortSignal) => Promise<VerifiedManifest>

export interface DiscoveryComponents {
  sources: readonly PeerSource[]
  logger: DiscoveryLogger
  /** Fetches and verifies a manifest (the real one by default; tests may wrap it). */
  verify?: ManifestVerifier
  now?: () => number
}

interface Verdict {
  ok: boolean
  at: number
  error?: { code: string; message: string }
}

/** How long a verdict is kept: a success for 10 minutes, a failure for 15 s (so a fix shows soon). */
const VERDICT_OK_MS = 10 * 60 * 1000
const VERDICT_FAIL_MS = 15 * 1000
const MAX_VERDICTS = 4096
/** At most this many URLs are tried for one DID. */
const MAX_URLS_PER_DID = 4
/** Manifest failures after which a source with `recheck` looks again (the peer's key may have changed). */
const RECHECK_CODES = new Set(['MANIFEST_DID_MISMATCH', 'MANIFEST_SIGNATURE_INVALID'])

export class Discovery {
  readonly #sources: Map<DiscoveryMethod, PeerSource>
  readonly #verify: ManifestVerifier
  readonly #logger: DiscoveryLogger
  readonly #now: () => number
  readonly #verdicts = new Map<string, Verdict>()
  readonly #pending = new Map<string, Promise<Verdict>>()

  constructor(components: DiscoveryComponents) {
    this.#sources = new Map(components.sources.map((s) => [s.method, s]))
    this.#verify = components.verify ?? ((url, did, signal) => fetchVerifiedManifest(url, { expectedDid: did, signal, timeoutMs: 3000 }))
    this.#logger = components.logger
    this.#now = components.now ?? Date.now
    for (const source of components.sources) {
      // Verify a peer as soon as a source announces it, so that a later query finds it verified.
      source.on?.('peer', (peer) => {
        void this.#verdict(peer.url, peer.did)
      })
    }
  }

  /** The configured sources' methods. */
  get methods(): DiscoveryMethod[] {
    return [...this.#sources.keys()]
  }

  source(method: DiscoveryMethod): PeerSource | undefined {
    return this.#sources.get(method)
  }

  async start(listening: ListeningAddress): Promise<void> {
    for (const source of this.#sources.values()) {
      try {
        await source.start(listening)
      } catch (err) {
        // A source that cannot start (no multicast, port taken) is logged; the daemon runs on.
        this.#logger.warn({ err, method: source.method }, `discovery: ${source.method} did not start`)
      }
    }
  }

  async stop(): Promise<void> {
    for (const source of this.#sources.values()) {
      try {
        await source.stop()
      } catch (err) {
        this.#logger.warn({ err, method: source.method }, `discovery: ${source.method} did not stop cleanly`)
      }
    }
  }

  /** Forgets cached resolutions and verdicts (`spl fleet sync peers flush`). */
  flush(): void {
    this.#verdicts.clear()
    for (const source of this.#sources.values()) source.flush?.()
  }

  /** Asks the sources of `methods` (all by default), merges by DID and verifies every URL found. */
  async discover(query: DiscoverQuery, methods: readonly DiscoveryMethod[] = this.methods): Promise<DiscoverResult> {
    const failures: SourceFailure[] = []
    const found: FoundPeer[] = []
    await Promise.all(
      methods.map(async (method) => {
        const source = this.#sources.get(method)
        if (!source) {
          failures.push({
            method,
            code: 'DISCOVERY_METHOD_OFF',
            message: `${method} discovery is not enabled on this daemon`,
            fix: fixFor(method),
          })
          return
        }
        try {
          found.push(...(await source.find(query)))
        } catch (err) {
          const e = SplError.from(err)
          failures.push({ method, code: e.code, message: e.message, fix: e.fix })
        }
      }),
    )
    failures.sort((a, b) => methods.indexOf(a.method) - methods.indexOf(b.method))
    let peers = await this.merge(found, query.signal)
    const again = await this.#recheck(found, peers)
    if (again) peers = await this.merge(again, query.signal)
    return { peers, failures }
  }

  /**
   * Sightings whose manifest is signed by another key may come from a source's old answer (a
   * did:web document from before a key rotation): such a source looks again, once, and the
   * sightings are merged again with its new answer. Undefined when no source had anything new.
   */
  async #recheck(found: readonly FoundPeer[], peers: readonly DiscoveredPeer[]): Promise<FoundPeer[] | undefined> {
    const failed = new Map(
      peers.flatMap((p) => (p.verify_error && RECHECK_CODES.has(p.verify_error.code) ? [[p.did, p.verify_error] as const] : [])),
    )
    if (failed.size === 0) return undefined
    let changed = false
    const next = await Promise.all(
      found.map(async (f): Promise<FoundPeer[]> => {
        const error = failed.get(f.did)
        const source = this.#sources.get(f.source)
        if (error && source?.recheck) {
          try {
            const fresh = await source.recheck(f, error)
            if (fresh) {
              changed = true
              return fresh
            }
          } catch (err) {
            this.#logger.warn({ err, method: f.source }, `discovery: ${f.source} could not look again at ${f.did}`)
          }
        }
        // Verified just now: the second merge uses that verdict.
        return [{ ...f, reverify: false }]
      }),
    )
    return changed ? next.flat() : undefined
  }

  /** Merges sightings by DID and verifies each distinct URL (at most a few per DID). */
  async merge(found: readonly FoundPeer[], signal?: AbortSignal): Promise<DiscoveredPeer[]> {
    const byDid = new Map<string, FoundPeer[]>()
    for (const f of found) {
      const list = byDid.get(f.did)
      if (list) list.push(f)
      else byDid.set(f.did, [f])
    }
    const peers = await Promise.all(
      [...byDid].map(async ([did, sightings]) => {
        const urls = [...new Set(sightings.map((s) => s.url))].slice(0, MAX_URLS_PER_DID)
        const afresh = new Set(sightings.filter((s) => s.reverify).map((s) => s.url))
        const verdicts = await Promise.all(urls.map((u) => this.#verdict(u, did, signal, afresh.has(u))))
        const good = urls.findIndex((_, i) => verdicts[i]!.ok)
        const pick = <K extends 'handle' | 'namespace'>(k: K) => sightings.find((s) => s[k] !== undefined)?.[k]
        const aka = [...new Set(sightings.flatMap((s) => s.aka ?? []))]
        const peer: DiscoveredPeer = {
          did,
          url: urls[Math.max(good, 0)]!,
          handle: pick('handle'),
          namespace: pick('namespace'),
          ...(aka.length ? { aka } : {}),
          sources: [...new Set(sightings.map((s) => s.source))],
          found: sightings.map((s) => ({ source: s.source, url: s.url, last_seen: s.last_seen })),
          last_seen: Math.max(...sightings.map((s) => s.last_seen)),
          verified: good >= 0,
          ...(good < 0 && verdicts[0]?.error ? { verify_error: verdicts[0].error } : {}),
        }
        return peer
      }),
    )
    return peers.sort((a, b) => Number(b.verified) - Number(a.verified) || b.last_seen - a.last_seen)
  }

  /** Whether the manifest at `url` is signed by `did` (cached; one fetch at a time per pair). */
  async isVerified(url: string, did: string): Promise<boolean> {
    return (await this.#verdict(url, did)).ok
  }

  /** The cached verdict for `url`/`did` without fetching (undefined when never tried or stale). */
  knownVerdict(url: string, did: string): { ok: boolean; error?: { code: string; message: string } } | undefined {
    const v = this.#verdicts.get(`${did} ${url}`)
    if (!v || this.#now() - v.at > (v.ok ? VERDICT_OK_MS : VERDICT_FAIL_MS)) return undefined
    return v
  }

  #verdict(url: string, did: string, signal?: AbortSignal, afresh = false): Promise<Verdict> {
    const key = `${did} ${url}`
    const known = afresh ? undefined : this.#verdicts.get(key)
    if (known && this.#now() - known.at <= (known.ok ? VERDICT_OK_MS : VERDICT_FAIL_MS)) return Promise.resolve(known)
    const running = this.#pending.get(key)
    if (running) return running
    const p = this.#verify(url, did, signal)
      .then(
        (): Verdict => ({ ok: true, at: this.#now() }),
        (err): Verdict => {
          const e = SplError.from(err)
          this.#logger.info({ did, url, code: e.code }, `discovery: ${url} not verified as ${did}: ${e.message}`)
          return { ok: false, at: this.#now(), error: { code: e.code, message: e.message } }
        },
      )
      .then((v) => {
        this.#pending.delete(key)
        // An aborted query says nothing about the peer: do not remember it.
        if (!signal?.aborted) {
          if (this.#verdicts.size >= MAX_VERDICTS) this.#verdicts.delete(this.#verdicts.keys().next().value as string)
          this.#verdicts.set(key, v)
        }
        return v
      })
    this.#pending.set(key, p)
    return p
  }
}

function fixFor(method: DiscoveryMethod): string {
  switch (method) {
    case 'mdns':
      return 'set [sync.discovery] mdns_listen = true in config.toml and restart the daemon'
    case 'did-sync':
      return 'pass --directory URL or set [sync.discovery] directory_url in config.toml'
    case 'did-web':
      return 'pass --domain DOMAIN'
    case 'static':
      return 'add [[sync.discovery.static]] entries to config.toml'
  }
}
