import { randomBytes } from 'node:crypto'
import os from 'node:os'
import { ConsentRegistry } from '@spl/consent'
import type { FederationService } from '@spl/federation'
import type { RecordStore } from '@spl/records'
import type { FeedReaders, ThreadNotifier } from '@spl/sync-engine'
import type { MiddlewareHandler } from 'hono'
import type { OpenDatabase } from './db.js'
import type { Logger } from './logger.js'
import { ReplicaBus } from './pg-notify.js'
import type { RecordService } from './records-service.js'
import type { RelayParts } from './relay.js'

/**
 * Doors whose success changes the relay's shared state: a mailbox opened (POST …/register) or
 * closed (DELETE /v1/mailbox/:did), registrations at relays and routes (admin). Deposits and
 * acks are not told: each replica counts its own against the quota, recounted at every reload.
 */
export function isRelayWrite(method: string, path: string): boolean {
  if (/^\/v1\/relay\/(registrations|routes)$/.test(path)) return method !== 'GET'
  if (/^\/v1\/mailbox\/[^/]+\/register$/.test(path)) return method === 'POST'
  return method === 'DELETE' && /^\/v1\/mailbox\/[^/]+$/.test(path)
}

/**
 * This daemon as one replica of an identity on PostgreSQL (docs/postgres.md, "Replicas"): its
 * name in /metrics and the bus that tells the other replicas what it stored and changed.
 */
export class Replicas {
  #id: string

  constructor(
    readonly bus: ReplicaBus,
    configuredId: string,
  ) {
    this.#id = configuredId
  }

  /** `[storage] replica_id`, else `<hostname>:<port>` once listening. */
  get id(): string {
    return this.#id
  }

  /** Names the replica (the port is known now) and starts listening. */
  async start(port: number): Promise<void> {
    if (this.#id === '') this.#id = `${os.hostname()}:${port}`
    await this.bus.start()
  }

  close(): Promise<void> {
    return this.bus.close()
  }

  /** Tells the other replicas after a relay write answered 2xx (they reload receivers, registrations, routes). */
  middleware(): MiddlewareHandler {
    return async (c, next) => {
      await next()
      if (c.res.status < 300 && isRelayWrite(c.req.method, c.req.path)) this.bus.stateChanged('relay')
    }
  }
}

/** What the replica wiring reads: the shared state each replica keeps in memory. */
export interface ReplicaParts {
  configuredId: string
  database: OpenDatabase & { kind: 'postgres' }
  notifier: ThreadNotifier
  store: RecordStore
  registry: ConsentRegistry
  records: RecordService
  federation: FederationService
  relay: RelayParts
  readers: FeedReaders
  logger: Logger
}

/**
 * The bus of a daemon on PostgreSQL: stored records go out on `spl_records`; a registry record
 * that comes in folds into the registry (then every long poll looks again); `spl_state` names
 * federation or relay, which reload from the database.
 */
export function buildReplicas(p: ReplicaParts): Replicas {
  const bus = new ReplicaBus({
    url: p.database.url,
    pool: p.database.pool,
    notifier: p.notifier,
    reloaders: {
      consent: async () => {
        // Grants or namespaces changed: every long poll looks again (SPEC 6.2), as on the replica that stored them.
        if ((await p.registry.refresh(p.store)) > 0) p.notifier.notifyAll()
      },
      federation: () => p.federation.reload(),
      relay: async () => {
        await p.relay.routes.reload()
        await p.relay.receiver.reload()
        await p.relay.mailboxes?.reload()
      },
      // Who pulls from the other replicas, so that the depositor here does not take them for away:
      // told by nobody (it changes with every request), merged at the backstop and after a reconnect.
      readers: () => p.readers.merge(),
    },
    componentOf: (thread) => (ConsentRegistry.concerns(thread) ? 'consent' : null),
    logger: p.logger.child({ component: 'replicas' }),
  })
  p.records.onStored((thread, head) => bus.recordsStored(thread, head))
  return new Replicas(bus, p.configuredId)
}

/**
 * The name this process holds pair leases under: the replica's name (or the host), the pid and a
 * random tail, so a restarted replica is a new holder (it takes leases as any other would; the
 * leases of the process that died expire) and two processes never share one.
 */
export function leaseHolderId(configuredId: string): string {
  return `${configuredId || os.hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`
}
