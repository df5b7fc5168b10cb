import type http from 'node:http'
import type { AddressInfo } from 'node:net'
import { SplError } from '@spl/identity'
import { createApp } from './app.js'
import { type ConfigOverrides, homePaths } from './config.js'
import { DaemonContext } from './context.js'
import { type OpenDatabase, openStorage } from './db.js'
import { createHttpServer } from './http-server.js'
import { acquireLock, writeDaemonInfo } from './lifecycle.js'
import { loadDaemonStart, loadSecrets } from './load.js'
import { createLogger, type Logger } from './logger.js'
import { VERSION } from './package-files.js'

export interface DaemonOptions extends ConfigOverrides {
  home?: string
  logger?: Logger
}

type Server = http.Server

/** The spl daemon: one hono app, the sync engine and the store, with a clean start and stop. */
export class SplDaemon {
  #server: Server | null = null
  /** Known once listening (port 0 picks the port then); kept here so that the context never changes. */
  #url: string | undefined
  #destroyed = false

  private constructor(
    readonly ctx: DaemonContext,
    private readonly database: OpenDatabase,
    private readonly releaseLock: () => void,
  ) {}

  /** Reads the home, takes its lock, opens and migrates the database, and builds the context. */
  static async create(options: DaemonOptions = {}): Promise<SplDaemon> {
    const { home, cfg, logLevel } = loadDaemonStart(options)
    const secrets = loadSecrets(home, cfg)
    const logger = options.logger ?? createLogger({ level: logLevel })
    const paths = homePaths(home)
    const releaseLock = acquireLock(paths.runDir, home)
    let database: OpenDatabase | undefined
    try {
      database = await openStorage(cfg.storage.url, paths.db)
      const ctx = await DaemonContext.fromConfig(cfg, secrets, { home, database, logger })
      return new SplDaemon(ctx, database, releaseLock)
    } catch (err) {
      database?.close()
      releaseLock()
      throw err
    }
  }

  /** This daemon's URL as a client on this machine reaches it. */
  get url(): string {
    if (this.#url === undefined) throw new Error('the daemon is not listening yet: call start() first')
    return this.#url
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
        // Errors of the HTTP layer itself (431, a bad request line, …) answer the envelope too.
        const s = createHttpServer(app, {
          hostname: cfg.server.host,
          onInternal: (err) => this.ctx.logger.error({ err }, 'unhandled error in the HTTP layer'),
        })
        s.once('error', reject)
        s.listen(cfg.server.port, cfg.server.host, () => resolve(s))
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
    const url = `http://${clientHost}:${port}`
    this.#url = url
    writeDaemonInfo(homePaths(this.ctx.home).runDir, {
      pid: process.pid,
      url,
      host,
      port,
      started_at: this.ctx.startedAt,
      version: VERSION,
    })
    await this.ctx.replicas?.start(port)
    if (this.ctx.replicas) this.ctx.metrics.labelReplica(this.ctx.replicas.id)
    await this.ctx.engine.start()
    await this.ctx.federation.start()
    this.ctx.relay.start()
    this.ctx.auditor.start()
    await this.ctx.discovery.start({ port, url })
    this.ctx.logger.info({ did: this.did, url, host, port }, 'spl daemon listening')
    return this
  }

  /** Stops pulls (an open commit finishes), closes HTTP and the database, releases the lock. */
  async destroy(): Promise<void> {
    if (this.#destroyed) return
    this.#destroyed = true
    // Goodbye on mDNS first, while the network is still up.
    await this.ctx.discovery.stop()
    this.ctx.federation.stop()
    await this.ctx.relay.stop()
    this.ctx.auditor.stop()
    await this.ctx.engine.stop()
    // The last notifications go out before the database closes.
    await this.ctx.replicas?.close()
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
