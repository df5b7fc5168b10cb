import { fetchVerifiedManifest, type ManifestSigner } from '@spl/discovery'
import type { FederationService } from '@spl/federation'
import type { Keypair } from '@spl/identity'
import type { RecordStore } from '@spl/records'
import { type ChangeFeed, Depositor, type FeedReaders, Mailboxes, RelayReceiver, RelayRoutes, type SyncEngine } from '@spl/sync-engine'
import type { Kysely } from 'kysely'
import { durationMs, type SplConfig } from './config.js'
import type { Logger } from './logger.js'

/**
 * The relay of SPEC 10 in one daemon: the mailboxes it serves (`[relay] enabled`), the
 * depositor (sender side: always on, it acts only for receivers that name relays), the
 * receiver (the relays this instance registered at), and the sender's routes.
 */
export interface RelayParts {
  /** Only with `[relay] enabled` (or `spl serve --relay`). */
  mailboxes: Mailboxes | undefined
  depositor: Depositor
  receiver: RelayReceiver
  routes: RelayRoutes
  start(): void
  stop(): Promise<void>
}

/** Mailboxes are swept of expired deposits this often. */
const SWEEP_EVERY_MS = 10 * 60 * 1000

export async function buildRelay(d: {
  cfg: SplConfig
  keypair: Keypair
  db: Kysely<unknown>
  store: RecordStore
  feed: ChangeFeed
  readers: FeedReaders
  engine: SyncEngine
  federation: FederationService
  manifests: ManifestSigner
  logger: Logger
}): Promise<RelayParts> {
  const { cfg, keypair, logger } = d
  const log = logger.child({ component: 'relay' })
  const ttlMs = durationMs(cfg.relay.ttl)!
  const mailboxes = cfg.relay.enabled
    ? await Mailboxes.open(d.db, { maxWaiting: cfg.relay.max_waiting, senderBytesPerDay: cfg.relay.sender_bytes_per_day, ttlMs })
    : undefined
  await d.readers.persistIn(d.db)
  const routes = await RelayRoutes.open(d.db)
  const receiver = await RelayReceiver.open(d.db, {
    keypair,
    deliver: (peer, thread, records) => d.engine.deliver(peer, thread, records),
    pollIntervalMs: durationMs(cfg.relay.poll_interval)!,
    onChange: (relays) => d.manifests.setRelays(relays),
    logger: log,
  })
  /** Where the receiver answers: its link, else a pair of ours towards it. */
  const urlOf = (did: string): string | undefined =>
    d.federation.snapshot().find((l) => l.peer_did === did && l.state !== 'revoked')?.peer_url ??
    d.engine.listPairs().find((p) => p.peer_did === did)?.peer_url
  const depositor = new Depositor({
    keypair,
    feed: d.feed,
    source: d.store,
    readers: d.readers,
    routes,
    depositAfterMs: durationMs(cfg.relay.deposit_after)!,
    ttlMs,
    logger: log,
    learnRelays: async (did) => {
      const url = urlOf(did)
      if (!url) return
      const { manifest } = await fetchVerifiedManifest(url, { expectedDid: did, timeoutMs: 5_000 })
      await routes.learned(did, manifest.relays ?? [], Date.now())
    },
  })
  let sweep: NodeJS.Timeout | undefined
  return {
    mailboxes,
    depositor,
    receiver,
    routes,
    start() {
      depositor.start()
      receiver.start()
      if (mailboxes) {
        sweep = setInterval(
          () => {
            mailboxes.sweep().then(
              (n) => n > 0 && log.info({ expired: n }, 'expired deposits swept'),
              (err) => log.warn({ err }, 'mailbox sweep failed'),
            )
          },
          Math.min(SWEEP_EVERY_MS, Math.max(1_000, Math.floor(ttlMs / 4))),
        )
        sweep.unref()
      }
    },
    async stop() {
      clearInterval(sweep)
      await Promise.all([depositor.stop(), receiver.stop()])
    },
  }
}
