import dgram from 'node:dgram'
import os from 'node:os'
import type { ConsentRegistry } from '@spl/consent'
import { CONSENT_THREAD } from '@spl/consent'
import type { ManifestSigner } from '@spl/discovery'
import { FederationService, type FederationStore } from '@spl/federation'
import type { Keypair } from '@spl/identity'
import type { SyncEngine } from '@spl/sync-engine'
import { durationMs, type SplConfig } from './config.js'
import type { Logger } from './logger.js'
import type { RecordService } from './records-service.js'

/** The thread that keeps the history of this instance's peer links (SPEC 9.1 step 5). */
export const FEDERATION_THREAD = 'th_federation_pairs'

/** A LEARN record on th_consent signed here (grants, bindings: SPEC 6.2, 6.4). */
export function learnConsent(records: RecordService, body: Record<string, unknown>) {
  return records.emit({ act: 'LEARN', thread: CONSENT_THREAD, body, parents: [], data_type: 'SCALAR' })
}

/** The link service over this daemon's engine, registry and records (SPEC 9). */
export function buildFederation(deps: {
  cfg: SplConfig
  keypair: Keypair
  store: FederationStore
  engine: SyncEngine
  registry: ConsentRegistry
  records: RecordService
  manifests: ManifestSigner
  logger: Logger
  /** Called after each change of links or revocations (replicas reload them). */
  changed?: () => void
}): FederationService {
  const { cfg, engine, registry, records } = deps
  return new FederationService(
    {
      keypair: deps.keypair,
      store: deps.store,
      pairs: {
        add: async (input) => (await engine.addPair(input)).pair,
        remove: async (id) => void (await engine.removePair(id)),
        pause: async (id) => void (await engine.pausePair(id)),
        resume: async (id) => void (await engine.resumePair(id)),
        of: (did) => engine.listPairs().filter((p) => p.peer_did === did),
      },
      bindings: {
        bindingOf: (did) => registry.bindingOf(did),
        bind: async (did, ns) => void (await learnConsent(records, { kind: 'core.consent.bind.v1', did, bound_namespace: ns })),
        assertUsable: (ns) => registry.assertUsable(ns),
      },
      journal: async (body) =>
        void (await records.emit({ act: 'LEARN', thread: FEDERATION_THREAD, body, parents: [], data_type: 'SCALAR' })),
      ownManifest: (origin) => deps.manifests.forOrigin(origin),
      logger: deps.logger.child({ component: 'federation' }),
      ...(deps.changed ? { changed: deps.changed } : {}),
    },
    {
      policy: cfg.federation.accept_pair_requests,
      tokenTtlMs: durationMs(cfg.federation.token_ttl)!,
      degradedAfterMs: durationMs(cfg.federation.degraded_after)!,
      namespace: cfg.identity.namespace,
    },
  )
}

/**
 * The URL a peer at `peerUrl` can reach this daemon at: advertise_url, else the local address
 * this machine would use towards the peer (a connected UDP socket sends nothing) with our port.
 */
export async function selfUrlFor(peerUrl: string, cfg: SplConfig, port: number): Promise<string> {
  if (cfg.sync.discovery.advertise_url) return cfg.sync.discovery.advertise_url.replace(/\/+$/, '')
  const bound = cfg.server.host
  if (bound !== '0.0.0.0' && bound !== '::') return `http://${bound.includes(':') ? `[${bound}]` : bound}:${port}`
  const peer = new URL(peerUrl)
  const host = peer.hostname.replace(/^\[|\]$/g, '')
  const local = await new Promise<string | undefined>((resolve) => {
    const socket = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4')
    socket.on('error', () => {
      socket.close()
      resolve(undefined)
    })
    socket.connect(Number(peer.port) || 80, host, () => {
      const address = socket.address().address
      socket.close()
      // Without a route the socket stays unbound (0.0.0.0): not an address a peer can use.
      resolve(address === '0.0.0.0' || address === '::' ? undefined : address)
    })
  })
  // No route towards the peer (a host with no default route, asked for an invite's line): the
  // first address of a non-loopback interface, so that the printed line does not say 127.0.0.1.
  const h = local ?? firstExternalAddress() ?? '127.0.0.1'
  return `http://${h.includes(':') ? `[${h}]` : h}:${port}`
}

function firstExternalAddress(): string | undefined {
  const all = Object.values(os.networkInterfaces()).flatMap((list) => list ?? [])
  return (all.find((a) => !a.internal && a.family === 'IPv4') ?? all.find((a) => !a.internal && !a.address.startsWith('fe80:')))?.address
}
