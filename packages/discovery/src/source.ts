// One interface for every way of finding a peer (SPEC 8). The shape follows libp2p's
// peer-discovery modules: a factory per source takes a components bag, the source has
// start/stop, answers a query with what it found, and may announce peers as they appear.

/** The four discovery methods, as `--method` spells them. */
export const DISCOVERY_METHODS = ['mdns', 'did-web', 'did-sync', 'static'] as const
export type DiscoveryMethod = (typeof DISCOVERY_METHODS)[number]

/** One sighting of a peer by one source: a claim, not yet verified. */
export interface FoundPeer {
  /** The DID the source says the peer has (a did:key: the key that signs its manifest). */
  did: string
  /** Where the source says the peer's daemon answers. */
  url: string
  handle?: string | undefined
  namespace?: string | undefined
  /** Other names the source knows the peer by (a did:web, a did:sync handle). */
  aka?: string[] | undefined
  source: DiscoveryMethod
  /** When the source last saw it (ms since the epoch). */
  last_seen: number
  /**
   * The source answered from its cache (did:web): verify the manifest afresh instead of using a
   * remembered verdict, since the peer may have changed its key after the source last looked.
   */
  reverify?: boolean | undefined
}

/** What `spl fleet sync peers discover` asks for; each source reads the fields it needs. */
export interface DiscoverQuery {
  /** did:web: the domain (or a did:web DID) to resolve. */
  domain?: string | undefined
  /** did:sync: the namespace to list in the directory. */
  namespace?: string | undefined
  /** did:sync: the directory to ask (else the configured one). */
  directory?: string | undefined
  /** How long a source may take (mDNS waits this long for answers to its query). */
  timeoutMs: number
  signal?: AbortSignal | undefined
}

/** The small logger every source gets (pino's child loggers fit). */
export interface DiscoveryLogger {
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  debug?(obj: object, msg?: string): void
}

/** Events a source emits while it runs (mDNS: announcements and goodbyes). */
export interface PeerSourceEvents {
  peer: (peer: FoundPeer) => void
  gone: (did: string) => void
}

/** Where this daemon listens, known once its server is up (an announcer needs the port). */
export interface ListeningAddress {
  port: number
  /** The URL a client on this machine reaches the daemon at. */
  url: string
}

export interface PeerSource {
  readonly method: DiscoveryMethod
  /** Starts listening or announcing (no-op for sources that only answer queries). */
  start(listening: ListeningAddress): Promise<void>
  /** Stops; an announcer says goodbye. Safe to call twice. */
  stop(): Promise<void>
  /** The peers this source knows or finds for `query`. Throws a SplError when it cannot ask. */
  find(query: DiscoverQuery): Promise<FoundPeer[]>
  /** Forgets cached answers (did:web's resolution cache). */
  flush?(): void
  /**
   * The manifest at `sighting.url` failed with `error` (signed by another key, or by no key that
   * verifies): the source may look once more (did:web fetches the document again) and return
   * the sightings to verify instead; undefined when it has nothing new.
   */
  recheck?(sighting: FoundPeer, error: { code: string; message: string }): Promise<FoundPeer[] | undefined>
  on?<E extends keyof PeerSourceEvents>(event: E, listener: PeerSourceEvents[E]): void
}
