import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { serve } from '@hono/node-server'
import { ConsentRegistry } from '@spl/consent'
import { SplError } from '@spl/identity'
import { RecordStore, threadPoolVerifier } from '@spl/records'
import { ChangeFeed, KyselySyncStore, SubscriberStats, SyncEngine, ThreadNotifier } from '@spl/sync-engine'
import { PeerClient } from '@spl/transport'
import { createApp } from './app.js'
import { carryRegistryOver } from './carry-over.js'
import { type ConfigOverrides, envToCfg, homePaths, readEnv } from './config.js'
import type { DaemonContext } from './context.js'
import { type OpenDatabase, openDatabase } from './db.js'
import { readAdminToken, readKeyFile } from './home.js'
import { acquireLock, writeDaemonInfo } from './lifecycle.js'
import { createLogger, type Logger } from './logger.js'
import { DaemonMetrics } from './metrics.js'
import { RecordService } from './records-service.js'
import { VERSION } from './version.js'

export interface DaemonOptions extends ConfigOverrides {
  home?: string
  logger?: Logger
}

type Server = ReturnType<typeof serve>

/** The spl daemon: one hono app, the sync engine and the store, with a clean start and stop. */
export class SplDaemon {
  #server: Server | null = null
  #destroyed = false

  private constructor(
    readonly ctx: DaemonContext,
    private readonly database: OpenDatabase,
    private readonly releaseLock: () => void,
  ) {}

  /** Reads the home, takes its lock, opens and migrates the database, and wires everything. */
  static async create(options: DaemonOptions = {}): Promise<SplDaemon> {
    const env = readEnv()
    const home = options.home ?? env.home
    const cfg = envToCfg({ ...env, home }, options)
    const paths = homePaths(home)
    const keypair = readKeyFile(path.resolve(home, cfg.identity.key_path), cfg.identity.did)
    const adminToken = readAdminToken(home)
    if (!adminToken) throw new Error(`${paths.adminToken} is missing: run spl init`)
    const logger = options.logger ?? createLogger({ level: env.logLevel })
    const releaseLock = acquireLock(paths.runDir, home)
    let database: OpenDatabase | undefined
    try {
      database = openDatabase(paths.db)
      const store = await RecordStore.open(database.db)
      const registry = await ConsentRegistry.load(store, keypair.did)
      const syncStore = await KyselySyncStore.open(database.db, store)
      const notifier = new ThreadNotifier()
      const records = new RecordService(store, keypair, registry, notifier)
      await carryRegistryOver(store, registry, records, keypair.did, logger)
      const subscribers = new SubscriberStats()
      const metrics = new DaemonMetrics()
      const engine = new SyncEngine(
        {
          localDid: keypair.did,
          pairs: syncStore,
          sink: syncStore,
          transport: new PeerClient(keypair),
          verifier: threadPoolVerifier,
          namespaces: registry,
          logger: logger.child({ component: 'sync' }),
          observeLatency: (pairId, ms) => metrics.deliveryLatency.observe({ pair_id: pairId }, ms / 1000),
          onStored: (thread, ids) => {
            records.storedIds(thread, ids).catch((err) => logger.error({ err }, 'post-store hook failed'))
          },
        },
        { targetNamespace: cfg.identity.namespace, defaultPollIntervalMs: cfg.sync.poll_interval_ms },
      )
      metrics.bind(engine, subscribers)
      const feed = new ChangeFeed({
        keypair,
        store,
        registry,
        notifier,
        subscribers,
        servePolicy: cfg.sync.serve_policy,
        pullsFrom: (did) => engine.listPairs().some((p) => p.peer_did === did),
        isTokenRevoked: () => false,
      })
      const sqlite = database.sqlite
      const ctx: DaemonContext = {
        cfg,
        home,
        version: VERSION,
        keypair,
        adminToken,
        store,
        registry,
        records,
        engine,
        feed,
        notifier,
        subscribers,
        metrics,
        logger,
        startedAt: Date.now(),
        bindHost: cfg.server.host,
        url: '',
        integrityCheck: () => String(sqlite.pragma('quick_check', { simple: true })),
      }
      return new SplDaemon(ctx, database, releaseLock)
    } catch (err) {
      database?.sqlite.close()
      releaseLock()
      throw err
    }
  }

  /** This daemon's URL as a client on this machine reaches it. */
  get url(): string {
    return this.ctx.url
  }

  get did(): string {
    return this.ctx.keypair.did
  }

  /** Listens, writes run/daemon.json, starts the sync engine. */
  async start(): Promise<this> {
    const { cfg } = this.ctx
    const app = createApp(this.ctx)
    let server: Server
    try {
      server = await new Promise<Server>((resolve, reject) => {
        const s = serve({ fetch: app.fetch, hostname: cfg.server.host, port: cfg.server.port }, () => resolve(s))
        s.once('error', reject)
      })
    } catch (err) {
      // Nothing listens: release the database, the workers and the lock before saying why.
      await this.destroy()
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'EADDRINUSE') {
        throw new SplError('PORT_IN_USE', `port ${cfg.server.port} on ${cfg.server.host} is already in use.`, {
          status: 500,
          fix: 'pick another with --port, or stop what listens there',
        })
      }
      if (code === 'EADDRNOTAVAIL' || code === 'EACCES') {
        throw new SplError('BIND_FAILED', `cannot listen on ${cfg.server.host}:${cfg.server.port} (${code}).`, {
          status: 500,
          fix: 'use --host 127.0.0.1 or 0.0.0.0, and a port above 1023',
        })
      }
      throw err
    }
    this.#server = server
    const port = (server.address() as AddressInfo).port
    const host = cfg.server.host
    const clientHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host
    this.ctx.url = `http://${clientHost}:${port}`
    writeDaemonInfo(homePaths(this.ctx.home).runDir, {
      pid: process.pid,
      url: this.ctx.url,
      host,
      port,
      started_at: this.ctx.startedAt,
      version: VERSION,
    })
    await this.ctx.engine.start()
    this.ctx.logger.info({ did: this.did, url: this.ctx.url, host, port }, 'spl daemon listening')
    return this
  }

  /** Stops pulls (an open commit finishes), closes HTTP and the database, releases the lock. */
  async destroy(): Promise<void> {
    if (this.#destroyed) return
    this.#destroyed = true
    await this.ctx.engine.stop()
    this.ctx.notifier.close()
    const server = this.#server
    if (server) {
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
        if ('closeAllConnections' in server) server.closeAllConnections()
      })
    }
    await this.database.db.destroy()
    this.releaseLock()
    if (server) this.ctx.logger.info({}, 'spl daemon stopped')
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.destroy()
  }
}
