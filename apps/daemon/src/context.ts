import { ConsentRegistry } from '@spl/consent'
import { DirectoryStore, type Discovery, type ManifestSigner } from '@spl/discovery'
import { type FederationService, FederationStore } from '@spl/federation'
import type { Keypair } from '@spl/identity'
import { RecordStore, threadPoolCheckerFor } from '@spl/records'
import {
  ChangeFeed,
  type ChangeFeedDeps,
  FeedReaders,
  KyselyPairLeases,
  KyselyReplayStore,
  KyselySyncStore,
  ReconcileDoor,
  SubscriberStats,
  SyncEngine,
  ThreadNotifier,
  WatchDoor,
} from '@spl/sync-engine'
import { PeerClient, ReplayCache } from '@spl/transport'
import { Auditor } from './auditor.js'
import { carryRegistryOver } from './carry-over.js'
import { durationMs, type SplConfig } from './config.js'
import { type OpenDatabase, openPostgres } from './db.js'
import { buildDiscovery } from './discovery.js'
import { buildFederation } from './federation.js'
import type { DaemonSecrets } from './load.js'
import type { Logger } from './logger.js'
import { DaemonMetrics } from './metrics.js'
import { VERSION } from './package-files.js'
import { RecordService } from './records-service.js'
import { buildRelay, type RelayParts } from './relay.js'
import { buildReplicas, leaseHolderId, type Replicas } from './replicas.js'

/** What the context is built on besides the config and the secrets: the home, an open database, a logger. */
export interface ContextDeps {
  home: string
  database: OpenDatabase
  logger: Logger
}

/** The fields of a context, all of them built before the first request. */
export interface DaemonContextFields {
  cfg: SplConfig
  home: string
  version: string
  keypair: Keypair
  adminToken: string
  store: RecordStore
  registry: ConsentRegistry
  records: RecordService
  engine: SyncEngine
  feed: ChangeFeed
  reconcile: ReconcileDoor
  watch: WatchDoor
  auditor: Auditor
  notifier: ThreadNotifier
  subscribers: SubscriberStats
  metrics: DaemonMetrics
  discovery: Discovery
  manifests: ManifestSigner
  directory: DirectoryStore | undefined
  federation: FederationService
  relay: RelayParts
  replay: ReplayCache
  replicas: Replicas | undefined
  logger: Logger
  startedAt: number
  bindHost: string
  integrityCheck: () => string
}

/**
 * Everything the routes need, built once by `fromConfig` and never changed afterwards: the
 * listening address belongs to the server (SplDaemon.url), not to the context.
 */
export class DaemonContext implements Readonly<DaemonContextFields> {
  readonly cfg: SplConfig
  readonly home: string
  readonly version: string
  readonly keypair: Keypair
  readonly adminToken: string
  readonly store: RecordStore
  readonly registry: ConsentRegistry
  readonly records: RecordService
  readonly engine: SyncEngine
  readonly feed: ChangeFeed
  /** The reconcile door of audits (SPEC 13). */
  readonly reconcile: ReconcileDoor
  /** The per-peer watch: one long poll for many threads (docs/federation.md). */
  readonly watch: WatchDoor
  /** Audits each caught-up pair once per sync.audit_interval. */
  readonly auditor: Auditor
  readonly notifier: ThreadNotifier
  readonly subscribers: SubscriberStats
  readonly metrics: DaemonMetrics
  /** Every discovery source the config turns on, merged by DID (SPEC 8). */
  readonly discovery: Discovery
  /** Signs /.well-known/syncropel. */
  readonly manifests: ManifestSigner
  /** The did:sync directory this daemon serves (`[directory] enabled = true`), else undefined. */
  readonly directory: DirectoryStore | undefined
  /** Peer links: the pairing handshake, invites, requests, revocation, renewal (SPEC 9). */
  readonly federation: FederationService
  /** Store-and-forward (SPEC 10): mailboxes if this is a relay, deposits for receivers, collection from our relays. */
  readonly relay: RelayParts
  /** Used SPL-Proof ids (durable, SPEC 7.4), for the peer doors besides the change feed. */
  readonly replay: ReplayCache
  /** On PostgreSQL: this daemon as one replica of the identity (LISTEN/NOTIFY, the `replica` label); undefined on SQLite. */
  readonly replicas: Replicas | undefined
  readonly logger: Logger
  readonly startedAt: number
  /** The host the HTTP server is bound to (for the bind-host warning). */
  readonly bindHost: string
  /** Runs SQLite's quick_check (for doctor). */
  readonly integrityCheck: () => string

  constructor(fields: DaemonContextFields) {
    this.cfg = fields.cfg
    this.home = fields.home
    this.version = fields.version
    this.keypair = fields.keypair
    this.adminToken = fields.adminToken
    this.store = fields.store
    this.registry = fields.registry
    this.records = fields.records
    this.engine = fields.engine
    this.feed = fields.feed
    this.reconcile = fields.reconcile
    this.watch = fields.watch
    this.auditor = fields.auditor
    this.notifier = fields.notifier
    this.subscribers = fields.subscribers
    this.metrics = fields.metrics
    this.discovery = fields.discovery
    this.manifests = fields.manifests
    this.directory = fields.directory
    this.federation = fields.federation
    this.relay = fields.relay
    this.replay = fields.replay
    this.replicas = fields.replicas
    this.logger = fields.logger
    this.startedAt = fields.startedAt
    this.bindHost = fields.bindHost
    this.integrityCheck = fields.integrityCheck
  }

  /** Migrates the database and builds every service: store, registry, records, engine, feed, metrics. */
  static async fromConfig(cfg: SplConfig, secrets: DaemonSecrets, deps: ContextDeps): Promise<DaemonContext> {
    const { keypair, adminToken } = secrets
    const { database, logger } = deps
    const store = await RecordStore.open(database.db)
    const registry = await ConsentRegistry.load(store, keypair.did)
    // Replicas on one PostgreSQL share the pairs through leases (SPEC 11); SQLite has one process.
    const leases =
      database.kind === 'postgres'
        ? await KyselyPairLeases.open(openPostgres(database.url).db, {
            replicaId: leaseHolderId(cfg.storage.replica_id),
            ttlMs: durationMs(cfg.storage.lease_ttl)!,
            // A connection of its own: heartbeats do not wait behind the pulls' commits.
            owned: true,
          })
        : null
    const syncStore = await KyselySyncStore.open(database.db, store, leases)
    const notifier = new ThreadNotifier()
    const records = new RecordService(store, keypair, registry, notifier, Date.now, cfg.records.max_bytes)
    await carryRegistryOver(store, registry, records, keypair.did, logger)
    const subscribers = new SubscriberStats()
    const metrics = new DaemonMetrics()
    // Made after the engine (it makes the link's pairs) and read by the engine's pulls.
    let federation: FederationService | undefined
    // Made last (it reloads the federation and the relay); told by the federation of each change.
    let replicas: Replicas | undefined
    // A pair's child of the latency histogram, looked up once: observe() with a label object
    // hashes the labels on every call, and it runs once per pulled record (~2 → ~1 µs).
    const latencyChildren = new Map<string, ReturnType<typeof metrics.deliveryLatency.labels>>()
    const latencyOf = (pairId: string) => {
      let child = latencyChildren.get(pairId)
      if (!child) latencyChildren.set(pairId, (child = metrics.deliveryLatency.labels({ pair_id: pairId })))
      return child
    }
    const engine = new SyncEngine(
      {
        localDid: keypair.did,
        pairs: syncStore,
        sink: syncStore,
        transport: new PeerClient(keypair),
        checker: threadPoolCheckerFor(cfg.records.max_bytes),
        namespaces: registry,
        logger: logger.child({ component: 'sync' }),
        credentials: (did) => federation?.tokenFor(did) ?? null,
        targetNamespaceFor: (did) => federation?.targetNamespaceFor(did) ?? null,
        observeLatency: (pairId, ms) => latencyOf(pairId).observe(ms / 1000),
        threadIds: async (thread) => (await store.threadIds(thread)).map((r) => r.id),
        ...(leases ? { leases } : {}),
        onStored: (thread, rows) => {
          try {
            records.stored(thread, rows)
          } catch (err) {
            logger.error({ err }, 'post-store hook failed')
          }
        },
      },
      { targetNamespace: cfg.identity.namespace, defaultPollIntervalMs: cfg.sync.poll_interval_ms, watch: cfg.sync.watch },
    )
    const replayStore = await KyselyReplayStore.open(database.db)
    const readers = new FeedReaders()
    const feedDeps: ChangeFeedDeps = {
      keypair,
      store,
      registry,
      notifier,
      subscribers,
      servePolicy: cfg.sync.serve_policy,
      pullsFrom: (did) => federation?.isLinked(did) || engine.listPairs().some((p) => p.peer_did === did),
      isTokenRevoked: (jti) => federation?.isRevoked(jti) ?? false,
      // Used proof ids survive a restart (SPEC 7.4).
      replayStore,
      readers,
    }
    const feed = new ChangeFeed(feedDeps)
    const watch = new WatchDoor(feed, feedDeps)
    metrics.bind(engine, subscribers, { feed, watch })
    const reconcile = new ReconcileDoor({
      keypair,
      store,
      registry,
      servePolicy: cfg.sync.serve_policy,
      pullsFrom: (did) => federation?.isLinked(did) || engine.listPairs().some((p) => p.peer_did === did),
      isTokenRevoked: (jti) => federation?.isRevoked(jti) ?? false,
      replayStore,
    })
    const { discovery, manifests } = buildDiscovery(cfg, keypair, VERSION, logger)
    federation = buildFederation({
      cfg,
      keypair,
      store: await FederationStore.open(database.db),
      engine,
      registry,
      records,
      manifests,
      logger,
      changed: () => replicas?.bus.stateChanged('federation'),
    })
    const directory = cfg.directory.enabled ? await DirectoryStore.open(database.db) : undefined
    const relay = await buildRelay({
      cfg,
      keypair,
      db: database.db as never,
      store,
      feed,
      readers,
      engine,
      federation,
      manifests,
      logger,
    })
    metrics.bindRelay(relay)
    replicas =
      database.kind === 'postgres'
        ? buildReplicas({
            configuredId: cfg.storage.replica_id,
            database,
            notifier,
            store,
            registry,
            records,
            federation,
            relay,
            readers,
            logger,
          })
        : undefined
    if (replicas) metrics.bindReplicas(replicas)
    // PostgreSQL checks its own pages (and an operator's pg_amcheck); SQLite's are checked here.
    const integrityCheck = database.kind === 'sqlite' ? () => String(database.sqlite.pragma('quick_check', { simple: true })) : () => 'ok'
    return new DaemonContext({
      cfg,
      home: deps.home,
      version: VERSION,
      keypair,
      adminToken,
      store,
      registry,
      records,
      engine,
      feed,
      reconcile,
      watch,
      auditor: new Auditor(engine, durationMs(cfg.sync.audit_interval)!, logger.child({ component: 'audit' })),
      notifier,
      subscribers,
      metrics,
      discovery,
      manifests,
      directory,
      federation,
      relay,
      replay: new ReplayCache(replayStore),
      replicas,
      logger,
      startedAt: Date.now(),
      bindHost: cfg.server.host,
      integrityCheck,
    })
  }
}
