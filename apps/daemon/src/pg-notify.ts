import type { ThreadNotifier } from '@spl/sync-engine'
import type pg from 'pg'
import { loadPg } from './db.js'
import type { Logger } from './logger.js'

// Replicas on one PostgreSQL (docs/postgres.md, "Replicas"): each store of records is told on
// `spl_records` ('<thread>\t<seq>'), each change of shared state that a replica keeps in memory
// on `spl_state` (the component's name); every replica LISTENs on one connection of its own.

/** Records stored: one line `<thread>\t<highest seq>` per notification. */
export const RECORDS_CHANNEL = 'spl_records'
/** Shared state changed: the name of the component to reload ('federation', 'relay', …). */
export const STATE_CHANNEL = 'spl_state'
/** PostgreSQL refuses payloads of 8000 bytes or more. */
export const MAX_PAYLOAD_BYTES = 7999

/** Sends each payload as one notification on `channel`, in one statement. */
export type NotifySend = (channel: string, payloads: readonly string[]) => Promise<void>

/**
 * Coalesces what is to be told: records stored in a thread within `windowMs` become one
 * notification carrying the highest seq; a component changed several times is named once.
 * Sends are made in order, one flush at a time.
 */
export class NotifyCoalescer {
  readonly #threads = new Map<string, number>()
  readonly #states = new Set<string>()
  #timer: NodeJS.Timeout | undefined
  #chain: Promise<void> = Promise.resolve()
  #closed = false
  /** Notifications sent, by channel. */
  readonly sent = { records: 0, state: 0 }

  constructor(
    private readonly send: NotifySend,
    private readonly windowMs = 5,
    private readonly onError: (err: unknown) => void = () => {},
  ) {}

  /** Records up to `seq` were stored in `thread`. */
  records(thread: string, seq: number): void {
    const prev = this.#threads.get(thread)
    if (prev === undefined || seq > prev) this.#threads.set(thread, seq)
    this.#arm()
  }

  /** `component` changed in the database. */
  state(component: string): void {
    this.#states.add(component)
    this.#arm()
  }

  #arm(): void {
    if (this.#timer !== undefined || this.#closed) return
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      void this.flush()
    }, this.windowMs)
  }

  /** Sends what is pending now; resolves once it (and every earlier flush) is sent or failed. */
  flush(): Promise<void> {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
    const records: string[] = []
    for (const [thread, seq] of this.#threads) {
      const line = `${thread}\t${seq}`
      if (Buffer.byteLength(line) <= MAX_PAYLOAD_BYTES) records.push(line)
    }
    const states = [...this.#states]
    this.#threads.clear()
    this.#states.clear()
    if (records.length === 0 && states.length === 0) return this.#chain
    this.#chain = this.#chain.then(async () => {
      try {
        if (records.length > 0) {
          await this.send(RECORDS_CHANNEL, records)
          this.sent.records += records.length
        }
        if (states.length > 0) {
          await this.send(STATE_CHANNEL, states)
          this.sent.state += states.length
        }
      } catch (err) {
        this.onError(err)
      }
    })
    return this.#chain
  }

  /** Sends what is pending and takes nothing more. */
  close(): Promise<void> {
    const done = this.flush()
    this.#closed = true
    return done
  }
}

/** What the bus needs: where to listen, a pool to send on while the listener is away, what to wake and reload. */
export interface ReplicaBusDeps {
  url: string
  /** The query pool: notifications go through it only while the listener's connection is down. */
  pool: Pick<pg.Pool, 'query'>
  notifier: ThreadNotifier
  /** Reloads of shared state by component name (spl_state payloads), also run after a reconnect and every `backstopMs`. */
  reloaders: Readonly<Record<string, () => Promise<void>>>
  /** The component a record on `thread` changes (the registry threads: 'consent'), else null. */
  componentOf: (thread: string) => string | null
  logger: Logger
  windowMs?: number
  /** Every component is reloaded this often even without a notification (a lost one). */
  backstopMs?: number
  backoff?: { minMs: number; maxMs: number }
}

const SEND_SQL = 'select pg_notify($1, p) from unnest($2::text[]) as p'

/**
 * The replica's side of LISTEN/NOTIFY: one dedicated `pg.Client` (not from the query pool,
 * docs/decisions.md 131) that LISTENs on both channels and also sends this replica's
 * notifications, so its own come back with its own backend pid and are ignored. Reconnects with
 * backoff; after a reconnect every waiter is woken once and every component reloaded (what was
 * told in the gap is lost).
 */
export class ReplicaBus {
  readonly #d: ReplicaBusDeps
  readonly #coalescer: NotifyCoalescer
  readonly #reloads = new Map<string, { again: boolean; done: Promise<void> }>()
  #client: pg.Client | null = null
  #pid: number | null = null
  #closed = false
  #attempt = 0
  #everConnected = false
  #retry: NodeJS.Timeout | undefined
  #backstop: NodeJS.Timeout | undefined
  /** Notifications received from other replicas, own ones ignored, reconnects after a loss. */
  readonly counters = { receivedRecords: 0, receivedState: 0, own: 0, reconnects: 0, reloads: 0 }

  constructor(deps: ReplicaBusDeps) {
    this.#d = deps
    this.#coalescer = new NotifyCoalescer(
      (channel, payloads) => this.#send(channel, payloads),
      deps.windowMs ?? 5,
      (err) => this.#d.logger.warn({ err }, 'replicas: a notification could not be sent'),
    )
  }

  /** Notifications sent, by channel. */
  get sent(): { records: number; state: number } {
    return this.#coalescer.sent
  }

  /** True while the listener's connection is up. */
  get connected(): boolean {
    return this.#client !== null
  }

  /** Connects and LISTENs (a failure is retried in the background), starts the backstop reloads. */
  async start(): Promise<void> {
    await this.#connect()
    const every = this.#d.backstopMs ?? 30_000
    this.#backstop = setInterval(() => void this.reloadAll(), every)
    this.#backstop.unref()
  }

  /** Records up to `seq` were stored in `thread` (committed): tell the other replicas. */
  recordsStored(thread: string, seq: number): void {
    if (!this.#closed) this.#coalescer.records(thread, seq)
  }

  /** Shared state of `component` changed in the database (committed): the other replicas reload it. */
  stateChanged(component: string): void {
    if (!this.#closed) this.#coalescer.state(component)
  }

  /** Sends what is pending (tests, shutdown). */
  flush(): Promise<void> {
    return this.#coalescer.flush()
  }

  /** Reloads `component`; a reload asked while one runs runs once more after it. */
  reload(component: string): Promise<void> {
    const fn = this.#d.reloaders[component]
    if (!fn) return Promise.resolve()
    const running = this.#reloads.get(component)
    if (running) {
      running.again = true
      return running.done
    }
    const entry = { again: true, done: Promise.resolve() }
    entry.done = (async () => {
      while (entry.again && !this.#closed) {
        entry.again = false
        this.counters.reloads++
        try {
          await fn()
        } catch (err) {
          this.#d.logger.warn({ err, component }, 'replicas: reloading shared state failed (tried again at the next notification)')
        }
      }
      this.#reloads.delete(component)
    })()
    this.#reloads.set(component, entry)
    return entry.done
  }

  /** Reloads every component. */
  async reloadAll(): Promise<void> {
    await Promise.all(Object.keys(this.#d.reloaders).map((c) => this.reload(c)))
  }

  /** Sends what is pending, stops listening and reconnecting. */
  async close(): Promise<void> {
    await this.#coalescer.close()
    this.#closed = true
    clearTimeout(this.#retry)
    clearInterval(this.#backstop)
    const client = this.#client
    this.#client = null
    await client?.end().catch(() => {})
  }

  async #send(channel: string, payloads: readonly string[]): Promise<void> {
    const client = this.#client
    if (client) {
      try {
        await client.query(SEND_SQL, [channel, payloads])
        return
      } catch {
        // The listener's connection failed under it: the pool is tried once.
      }
    }
    await this.#d.pool.query(SEND_SQL, [channel, payloads])
  }

  async #connect(): Promise<void> {
    if (this.#closed) return
    const client = new (loadPg().Client)({ connectionString: this.#d.url, connectionTimeoutMillis: 5000, keepAlive: true })
    let lost = false
    const onLost = (err?: unknown) => {
      if (lost) return
      lost = true
      this.#lost(client, err)
    }
    client.on('error', onLost)
    client.on('end', () => onLost())
    client.on('notification', (n) => this.#onNotification(n))
    try {
      await client.connect()
      await client.query(`LISTEN ${RECORDS_CHANNEL}; LISTEN ${STATE_CHANNEL}`)
    } catch (err) {
      client.end().catch(() => {})
      onLost(err)
      return
    }
    if (this.#closed || lost) {
      client.end().catch(() => {})
      return
    }
    this.#client = client
    this.#pid = (client as unknown as { processID: number | null }).processID
    this.#attempt = 0
    if (this.#everConnected) {
      this.counters.reconnects++
      this.#d.logger.info({}, 'replicas: listening again; every waiter looks again and shared state is reloaded')
      // Whatever was told while away is lost: heads are looked up again, every long poll and
      // watch looks again once.
      this.#d.notifier.forgetHeads()
      this.#d.notifier.notifyAll()
      void this.reloadAll()
    }
    this.#everConnected = true
  }

  #lost(client: pg.Client, err?: unknown): void {
    if (this.#client === client) {
      this.#client = null
      this.#pid = null
    }
    if (this.#closed) return
    // The other replicas' stores are not heard from now on: no head told before is trusted.
    this.#d.notifier.forgetHeads()
    if (this.#attempt === 0) this.#d.logger.warn({ err }, 'replicas: the LISTEN connection is lost; reconnecting')
    const { minMs, maxMs } = this.#d.backoff ?? { minMs: 250, maxMs: 5000 }
    const delay = Math.min(maxMs, minMs * 2 ** this.#attempt) * (0.75 + Math.random() * 0.5)
    this.#attempt++
    clearTimeout(this.#retry)
    this.#retry = setTimeout(() => void this.#connect(), delay)
    this.#retry.unref()
  }

  #onNotification(n: pg.Notification): void {
    if (n.processId === this.#pid) {
      this.counters.own++
      return
    }
    const payload = n.payload ?? ''
    if (n.channel === STATE_CHANNEL) {
      this.counters.receivedState++
      for (const component of payload.split('\n')) if (component) void this.reload(component)
      return
    }
    if (n.channel !== RECORDS_CHANNEL) return
    this.counters.receivedRecords++
    for (const line of payload.split('\n')) {
      const tab = line.indexOf('\t')
      const thread = tab < 0 ? line : line.slice(0, tab)
      if (!thread) continue
      const seq = tab < 0 ? Number.NaN : Number(line.slice(tab + 1))
      const head = Number.isSafeInteger(seq) && seq > 0 ? seq : undefined
      const component = this.#d.componentOf(thread)
      // A registry record: the registry folds it in before any long poll looks again.
      if (component) void this.reload(component).then(() => this.#d.notifier.notify(thread, head))
      else this.#d.notifier.notify(thread, head)
    }
  }
}
