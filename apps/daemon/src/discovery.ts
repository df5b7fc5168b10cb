import { Discovery, didWebSource, directorySource, ManifestSigner, mdnsSource, type PeerSource, staticSource } from '@spl/discovery'
import type { Keypair } from '@spl/identity'
import type { SplConfig } from './config.js'
import type { Logger } from './logger.js'

/** Discovery and the manifest of one daemon, built from its config (SPEC 8). */
export interface DaemonDiscovery {
  discovery: Discovery
  manifests: ManifestSigner
}

/** Builds every discovery source the config turns on, and the manifest signer. */
export function buildDiscovery(cfg: SplConfig, keypair: Keypair, version: string, logger: Logger): DaemonDiscovery {
  const log = logger.child({ component: 'discovery' })
  const settings = cfg.sync.discovery
  const sources: PeerSource[] = [staticSource(settings.static)]
  // did:sync: the configured directory, or the one a query names (--directory); the home namespace by default.
  sources.push(directorySource({ directoryUrl: settings.directory_url || undefined, namespace: cfg.identity.namespace }))
  // mDNS (SPEC 8): the listener is on by default, the announcer only with mdns_broadcast; SPL_MDNS=off turns both off.
  if (settings.mdns_listen || settings.mdns_broadcast) {
    sources.push(
      mdnsSource(
        { logger: log.child({ method: 'mdns' }) },
        {
          did: keypair.did,
          handle: cfg.identity.handle,
          namespace: cfg.identity.namespace,
          listen: settings.mdns_listen,
          broadcast: settings.mdns_broadcast,
          advertiseUrl: settings.advertise_url || undefined,
          intervalMs: settings.mdns_interval_ms,
        },
      ),
    )
  }
  // did:web: always on; a query names the domain (--domain), resolutions are cached (SPEC 8).
  sources.push(didWebSource({ logger: log }))
  const discovery = new Discovery({ sources, logger: log })
  const manifests = new ManifestSigner({
    keypair,
    version,
    namespaces: [cfg.identity.namespace],
    acceptsPairRequests: cfg.federation.accept_pair_requests,
    advertiseUrl: settings.advertise_url || undefined,
  })
  return { discovery, manifests }
}
