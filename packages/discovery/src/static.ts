// Peers listed by hand in config.toml (`[[sync.discovery.static]]`): for air-gapped networks and
// debugging. They are sightings like any other: verified only once their manifest checks out.
import type { FoundPeer, PeerSource } from './source.js'

export interface StaticPeerEntry {
  did: string
  url: string
  handle?: string | undefined
}

export interface StaticSourceComponents {
  now?: () => number
}

/** The `static` source over the configured entries. */
export function staticSource(entries: readonly StaticPeerEntry[], components: StaticSourceComponents = {}): PeerSource {
  const now = components.now ?? Date.now
  return {
    method: 'static',
    async start() {},
    async stop() {},
    async find() {
      const t = now()
      return entries.map(
        (e): FoundPeer => ({ did: e.did, url: e.url.replace(/\/+$/, ''), handle: e.handle, source: 'static', last_seen: t }),
      )
    },
  }
}
