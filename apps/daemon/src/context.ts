import type { ConsentRegistry } from '@spl/consent'
import type { Keypair } from '@spl/identity'
import type { RecordStore } from '@spl/records'
import type { ChangeFeed, SubscriberStats, SyncEngine, ThreadNotifier } from '@spl/sync-engine'
import type { SplConfig } from './config.js'
import type { Logger } from './logger.js'
import type { DaemonMetrics } from './metrics.js'
import type { RecordService } from './records-service.js'

/** Everything the routes need, built once by the server. */
export interface DaemonContext {
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
  notifier: ThreadNotifier
  subscribers: SubscriberStats
  metrics: DaemonMetrics
  logger: Logger
  startedAt: number
  /** The host the HTTP server is bound to (for the bind-host warning). */
  bindHost: string
  /** The URL peers and the CLI reach this daemon at. */
  url: string
  /** Runs SQLite's quick_check (for doctor). */
  integrityCheck: () => string
}
