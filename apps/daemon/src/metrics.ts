import {
  type ChangeFeed,
  type Depositor,
  LATENCY_BUCKETS,
  type Mailboxes,
  type RelayReceiver,
  type SubscriberStats,
  type SyncEngine,
  type WatchDoor,
} from '@spl/sync-engine'
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { Replicas } from './replicas.js'

/** The daemon's Prometheus registry; pair figures are read from the engine at scrape time. */
export class DaemonMetrics {
  readonly registry = new Registry()
  readonly httpDuration: Histogram<'method' | 'route' | 'status'>
  readonly deliveryLatency: Histogram<'pair_id'>
  #engine: SyncEngine | undefined
  #subscribers: SubscriberStats | undefined
  #doors: { feed: ChangeFeed; watch: WatchDoor } | undefined
  #relay: { mailboxes: Mailboxes | undefined; depositor: Depositor; receiver: RelayReceiver } | undefined

  constructor() {
    const registers = [this.registry]
    this.httpDuration = new Histogram({
      name: 'spl_http_request_duration_seconds',
      help: 'HTTP request durations by method, route and status',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30],
      registers,
    })
    this.deliveryLatency = new Histogram({
      name: 'spl_sync_delivery_latency_seconds',
      help: 'Emit-to-stored latency of pulled records (source stored_at, skew-corrected)',
      labelNames: ['pair_id'],
      buckets: LATENCY_BUCKETS.map((ms) => ms / 1000),
      registers,
    })
    const engine = () => this.#engine
    new Gauge({
      name: 'spl_sync_pairs',
      help: 'Pairs by state',
      labelNames: ['state'],
      registers,
      collect() {
        this.reset()
        for (const s of ['starting', 'running', 'paused', 'failing', 'stopped']) this.set({ state: s }, 0)
        for (const p of engine()?.listPairs({ all: true }) ?? []) this.inc({ state: p.state })
      },
    })
    const totals: [string, string, (t: ReturnType<SyncEngine['listPairs']>[number]['totals']) => number][] = [
      ['spl_sync_pulls_total', 'Change-feed requests that succeeded', (t) => t.pulls],
      ['spl_sync_records_received_total', 'Records received from peers', (t) => t.records_received],
      ['spl_sync_records_stored_total', 'Records stored from peers', (t) => t.records_stored],
      ['spl_sync_duplicates_total', 'Duplicate records received (no-ops)', (t) => t.duplicates],
      ['spl_sync_bytes_received_total', 'Change-feed bytes received', (t) => t.bytes_received],
      ['spl_sync_cursor_resets_total', 'Cursor resets answered by peers', (t) => t.cursor_resets],
    ]
    // Replicas: a pair's counters are said by the replica that pulls it, so sums over replicas hold.
    const pulledHere = () => {
      const e = engine()
      return (e?.listPairs({ all: true }) ?? []).filter((p) => e!.pullsHere(p.pair_id))
    }
    for (const [name, help, pick] of totals) {
      new Counter({
        name,
        help,
        labelNames: ['pair_id'],
        registers,
        collect() {
          this.reset()
          for (const p of pulledHere()) this.inc({ pair_id: p.pair_id }, pick(p.totals))
        },
      })
    }
    new Counter({
      name: 'spl_sync_rejections_total',
      help: 'Records rejected on ingest, by pair and code',
      labelNames: ['pair_id', 'code'],
      registers,
      collect() {
        this.reset()
        for (const p of pulledHere()) {
          for (const [code, n] of Object.entries(p.totals.rejected)) this.inc({ pair_id: p.pair_id, code }, n)
        }
      },
    })
    const subscribers = () => this.#subscribers
    new Counter({
      name: 'spl_feed_records_served_total',
      help: 'Records the change feed served to callers, by how (served, redacted) — hidden ones are counted too',
      labelNames: ['peer_did', 'thread', 'outcome'],
      registers,
      collect() {
        this.reset()
        for (const s of subscribers()?.list() ?? []) {
          this.inc({ peer_did: s.peer_did, thread: s.thread_id, outcome: 'served' }, s.served)
          this.inc({ peer_did: s.peer_did, thread: s.thread_id, outcome: 'redacted' }, s.redacted)
          this.inc({ peer_did: s.peer_did, thread: s.thread_id, outcome: 'hidden' }, s.hidden)
        }
      },
    })
    const doors = () => this.#doors
    new Gauge({
      name: 'spl_feed_held_requests',
      help: 'Peer requests held open now: long polls of one thread (changes) and per-peer watches of many (watch)',
      labelNames: ['door'],
      registers,
      collect() {
        this.set({ door: 'changes' }, doors()?.feed.held ?? 0)
        this.set({ door: 'watch' }, doors()?.watch.held.watches ?? 0)
      },
    })
    new Gauge({
      name: 'spl_feed_watched_threads',
      help: 'Threads named by the per-peer watches held now',
      registers,
      collect() {
        this.set(doors()?.watch.held.threads ?? 0)
      },
    })
    new Gauge({
      name: 'spl_pair_leases_held',
      help: 'Pairs whose lease this replica holds (PostgreSQL replicas; 0 on SQLite, where one process pulls every pair)',
      registers,
      collect() {
        this.set(engine()?.replica?.pairs_held ?? 0)
      },
    })
    this.#relayMetrics(registers)
  }

  /** The relay's figures (SPEC 10): this relay's mailboxes, deposits made for receivers away, deposits collected. */
  #relayMetrics(registers: Registry[]): void {
    const relay = () => this.#relay
    new Gauge({
      name: 'spl_relay_mailbox_depth',
      help: "Deposits waiting in this relay's mailboxes (0 when not a relay)",
      registers,
      async collect() {
        this.set((await relay()?.mailboxes?.depth()) ?? 0)
      },
    })
    const counters: [string, string, (r: NonNullable<ReturnType<typeof relay>>) => Record<string, number>][] = [
      [
        'spl_relay_mailbox_total',
        'This relay: deposits taken, delivered (acked), expired',
        (r) => ({
          deposited: r.mailboxes?.counters.deposits ?? 0,
          delivered: r.mailboxes?.counters.deliveries ?? 0,
          expired: r.mailboxes?.counters.expired ?? 0,
        }),
      ],
      [
        'spl_relay_mailbox_refusals_total',
        'This relay: deposits and requests refused, by code',
        (r) => r.mailboxes?.counters.refused ?? {},
      ],
      [
        'spl_relay_deposited_total',
        'Deposits made at relays for receivers away (deposits, records)',
        (r) => ({ deposits: r.depositor.counters.deposits, records: r.depositor.counters.records }),
      ],
      ['spl_relay_deposit_failures_total', 'Deposits a relay did not take, by code', (r) => r.depositor.counters.failed],
      [
        'spl_relay_collected_total',
        'Deposits collected from the relays this instance registered at (deposits, records, stored, duplicates)',
        (r) => ({
          deposits: r.receiver.counters.deposits,
          records: r.receiver.counters.records,
          stored: r.receiver.counters.stored,
          duplicates: r.receiver.counters.duplicates,
        }),
      ],
      [
        'spl_relay_collect_refusals_total',
        'Collected deposits refused (tampered, replayed, misaddressed…), by code',
        (r) => r.receiver.counters.refused,
      ],
    ]
    for (const [name, help, pick] of counters) {
      new Counter({
        name,
        help,
        labelNames: ['kind'],
        registers,
        collect() {
          this.reset()
          const r = relay()
          if (!r) return
          for (const [kind, n] of Object.entries(pick(r))) this.inc({ kind }, n)
        },
      })
    }
  }

  /**
   * The bus of a replica on PostgreSQL: notifications sent and received, reconnects, whether it
   * listens now (registered only there: SQLite's /metrics stay as they were).
   */
  bindReplicas(replicas: Replicas): void {
    const registers = [this.registry]
    const bus = replicas.bus
    new Gauge({
      name: 'spl_replica_listening',
      help: 'Whether the LISTEN connection to PostgreSQL is up (1) or reconnecting (0)',
      registers,
      collect() {
        this.set(bus.connected ? 1 : 0)
      },
    })
    new Counter({
      name: 'spl_replica_notifications_total',
      help: 'NOTIFY messages sent by this replica and received from the others, by channel (own ones that came back are not counted)',
      labelNames: ['direction', 'channel'],
      registers,
      collect() {
        this.reset()
        this.inc({ direction: 'sent', channel: 'spl_records' }, bus.sent.records)
        this.inc({ direction: 'sent', channel: 'spl_state' }, bus.sent.state)
        this.inc({ direction: 'received', channel: 'spl_records' }, bus.counters.receivedRecords)
        this.inc({ direction: 'received', channel: 'spl_state' }, bus.counters.receivedState)
      },
    })
    new Counter({
      name: 'spl_replica_reconnects_total',
      help: 'Times the LISTEN connection came back after a loss',
      registers,
      collect() {
        this.reset()
        this.inc(bus.counters.reconnects)
      },
    })
    new Counter({
      name: 'spl_replica_reloads_total',
      help: 'Reloads of shared state kept in memory (consent, federation, relay) after a notification, a reconnect or the 30 s backstop',
      registers,
      collect() {
        this.reset()
        this.inc(bus.counters.reloads)
      },
    })
  }

  /** Every series of this replica carries `replica="<id>"` (PostgreSQL only; docs/decisions.md 153). */
  labelReplica(id: string): void {
    this.registry.setDefaultLabels({ replica: id })
  }

  /** Connects the relay's parts (read at scrape time). */
  bindRelay(relay: { mailboxes: Mailboxes | undefined; depositor: Depositor; receiver: RelayReceiver }): void {
    this.#relay = relay
  }

  /** Connects the live sources read at scrape time. */
  bind(engine: SyncEngine, subscribers: SubscriberStats, doors: { feed: ChangeFeed; watch: WatchDoor }): void {
    this.#engine = engine
    this.#subscribers = subscribers
    this.#doors = doors
  }
}
