// What the link service is given (components, settings) and what `pair` answers: the shapes an
// application composing `FederationService` fills in.
import type { PairPolicy, WellKnownDocument } from '@spl/discovery'
import type { Keypair } from '@spl/identity'
import type { LinkView } from './link.js'
import type { FederationStore } from './store.js'

/** What the service needs from the sync engine. */
export interface LinkPairs {
  add(input: { peer_did: string; peer_url: string; thread_id: string }): Promise<{ pair_id: string }>
  remove(pairId: string): Promise<void>
  pause(pairId: string): Promise<void>
  resume(pairId: string): Promise<void>
  /** The pairs pulling from `peerDid` (their health makes a link degraded). */
  of(peerDid: string): {
    pair_id: string
    thread_id: string
    state: string
    last_error: { code: string; message: string } | null
    last_success_at: number | null
    created_at: number
  }[]
}

export interface FederationComponents {
  keypair: Keypair
  store: FederationStore
  pairs: LinkPairs
  /** Consent bindings (SPEC 6.4) and the namespace check for a mapping. */
  bindings: {
    bindingOf(did: string): string | null
    bind(did: string, namespace: string): Promise<void>
    assertUsable(namespace: string): void
  }
  /** Appends a `core.federation.pair.v1` record to th_federation_pairs. */
  journal(body: Record<string, unknown>): Promise<void>
  /** This daemon's signed manifest, as a peer reaching `origin` would get it. */
  ownManifest(origin: string): WellKnownDocument
  logger: { info(obj: object, msg?: string): void; warn(obj: object, msg?: string): void }
  now?: () => number
  /** Called after each change of links or revocations, once it is in the store (replicas reload then). */
  changed?: () => void
}

export interface FederationSettings {
  policy: PairPolicy
  /** Lifetime of the tokens this side issues (SPEC 7.5: 90 days). */
  tokenTtlMs: number
  /** A link is degraded when its peer was unreachable for longer than this. */
  degradedAfterMs: number
  /** The namespace this instance reads as (`identity.namespace`). */
  namespace: string
}

/** What `spl federation pair` did, step by step. */
export interface PairOutcome {
  outcome: 'linked' | 'pending' | 'existing' | 'rejected'
  link: LinkView | null
  steps: string[]
  pairs: string[]
}
