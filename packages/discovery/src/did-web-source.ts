// The `did-web` PeerSource (SPEC 8): resolves a domain's DID document through the cached
// resolver and reports the daemon it names; discovery then verifies that daemon's manifest.
import { SplError } from '@spl/identity'
import { DID_WEB_PREFIX, type DidWebResolution } from './did-web.js'
import { DidWebResolver, type DidWebResolverOptions } from './did-web-cache.js'
import type { DiscoveryLogger, FoundPeer, PeerSource } from './source.js'

export interface DidWebSourceComponents extends DidWebResolverOptions {
  /** A resolver to share (one is made from the other options otherwise). */
  resolver?: DidWebResolver
  logger?: DiscoveryLogger
}

/** The manifest check failures a re-fetch of the document may cure (the key was rotated). */
const RECHECK_CODES = new Set(['MANIFEST_DID_MISMATCH', 'MANIFEST_SIGNATURE_INVALID'])
/** After a re-fetch that did not change the key, the next one for the same failure waits this long. */
export const DID_WEB_RECHECK_AGAIN_MS = 10 * 60 * 1000

/** The sighting a resolution gives. */
function sightingOf(r: DidWebResolution & { fromCache: boolean }): FoundPeer {
  return { did: r.didKey, url: r.url, aka: [r.did], source: 'did-web', last_seen: r.fetchedAt, ...(r.fromCache ? { reverify: true } : {}) }
}

/**
 * The `did-web` source: `find({domain})` resolves the domain's DID document (cached, see
 * DidWebResolver) and reports the daemon it names: `did` = the did:key of its Ed25519 key,
 * `aka` = the did:web, `url` = its SyncropelDaemon endpoint. When the manifest at that URL is
 * signed by another key (a rotated key, an old cached document), discovery asks `recheck`, which
 * fetches the document again once.
 */
export function didWebSource(components: DidWebSourceComponents = {}): PeerSource & { readonly resolver: DidWebResolver } {
  const resolver = components.resolver ?? new DidWebResolver(components)
  const now = components.now ?? Date.now
  /** `${did:web} ${failing did:key}` → fetchedAt of the document a re-fetch for that failure gave. */
  const rechecked = new Map<string, number>()
  return {
    method: 'did-web',
    resolver,
    async start() {},
    async stop() {},
    async find(query) {
      if (query.domain === undefined || query.domain.trim() === '') {
        throw new SplError('DID_WEB_DOMAIN_REQUIRED', 'did-web discovery needs the domain to resolve', {
          status: 400,
          fix: 'pass --domain DOMAIN (e.g. --domain alice.dev, or a did:web:… DID)',
        })
      }
      return [sightingOf(await resolver.resolve(query.domain))]
    },
    async recheck(sighting, error) {
      const web = sighting.aka?.find((a) => a.startsWith(DID_WEB_PREFIX))
      // A document fetched for this very query would say the same again.
      if (!web || !sighting.reverify || !RECHECK_CODES.has(error.code)) return undefined
      const key = `${web} ${sighting.did}`
      const cached = resolver.peek(web)
      let fresh: DidWebResolution
      if (cached && cached.fetchedAt > sighting.last_seen) {
        // A background refresh brought a newer document meanwhile.
        fresh = cached
      } else {
        const last = rechecked.get(key)
        // Exactly one re-fetch per failure: a document a re-fetch for this same failure brought is not fetched again soon.
        if (cached && last === cached.fetchedAt && now() - last < DID_WEB_RECHECK_AGAIN_MS) return undefined
        try {
          fresh = await resolver.resolve(web, { refresh: true })
        } catch (err) {
          components.logger?.info({ did: web, code: SplError.from(err).code }, `did:web: re-fetching ${web} after ${error.code} failed`)
          return undefined
        }
        if (rechecked.size >= 4096) rechecked.clear()
        rechecked.set(key, fresh.fetchedAt)
      }
      if (fresh.didKey === sighting.did && fresh.url === sighting.url) return undefined
      components.logger?.info({ did: web, from: sighting.did, to: fresh.didKey }, `did:web: ${web} now names ${fresh.didKey}`)
      return [sightingOf({ ...fresh, fromCache: false })]
    },
    flush() {
      rechecked.clear()
      resolver.flush()
    },
  }
}
