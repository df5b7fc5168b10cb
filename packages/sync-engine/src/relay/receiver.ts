import type { Keypair } from '@spl/identity'
import { migrateWith } from '@spl/records'
import { PeerRefusedError, PullError, signedRequest } from '@spl/transport'
import type { Kysely, Migration } from 'kysely'
import { z } from 'zod'
import { type Logger, silentLogger } from '../logger.js'
import type { DeliveryResult } from '../puller/pull-loop.js'
import { DepositRefusedError, MAX_DEPOSIT_BYTES, openDeposit } from './deposit.js'
import { mailboxPath } from './depositor.js'
import type { RelayRef } from './routes.js'

/**
 * The receiver side of SPEC 10: the relays this instance registered at, polled for deposits;
 * each deposit is opened, its sender's signature checked, refused once seen (a relay that replays),
 * and its records go through the pair's own ingest (checks, plan, counters). A deposit is acked —
 * dropped at the relay — once its records are durable here, or once it is refused for good.
 */

interface ReceiverTables {
  spl_relay_registrations: {
    url: string
    relay_did: string
    registered_at: number
    last_poll_at: number | null
    last_ok_at: number | null
    last_error: string | null
  }
  spl_relay_seen: { deposit_id: string; until_ms: number }
}

const migrations: Record<string, Migration> = {
  '0001_registrations': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('spl_relay_registrations')
        .ifNotExists()
        .addColumn('url', 'text', (c) => c.primaryKey())
        .addColumn('relay_did', 'text', (c) => c.notNull())
        .addColumn('registered_at', 'integer', (c) => c.notNull())
        .addColumn('last_poll_at', 'integer')
        .addColumn('last_ok_at', 'integer')
        .addColumn('last_error', 'text')
        .execute()
      await db.schema
        .createTable('spl_relay_seen')
        .ifNotExists()
        .addColumn('deposit_id', 'text', (c) => c.primaryKey())
        .addColumn('until_ms', 'integer', (c) => c.notNull())
        .execute()
    },
  },
}

/** One registration, as `spl relay list` shows it. */
export interface RelayRegistration {
  url: string
  relay_did: string
  registered_at: number
  last_poll_at: number | null
  last_ok_at: number | null
  last_error: string | null
}

/** What a relay's receive door answers. */
export const receiveAnswerSchema = z.object({
  object: z.literal('list'),
  data: z
    .array(
      z.object({
        id: z.string().max(100),
        sender: z.string().max(200),
        size: z.number(),
        deposited_at: z.number(),
        expires_at: z.number(),
        sealed: z.string().max(MAX_DEPOSIT_BYTES),
      }),
    )
    .max(1000),
  has_more: z.boolean(),
})

/** Where opened deposits go: the sync engine's `deliver` fits. */
export type DeliverFn = (
  peerDid: string,
  thread: string,
  records: readonly unknown[],
) => Promise<({ status: 'ingested' } & DeliveryResult) | { status: 'held' | 'unsolicited' }>

export interface ReceiverCounters {
  polls: number
  deposits: number
  records: number
  stored: number
  duplicates: number
  held: number
  refused: Record<string, number>
}

export interface ReceiverDeps {
  keypair: Keypair
  deliver: DeliverFn
  /** How often each relay is polled. */
  pollIntervalMs: number
  /** Told when the registrations change (the manifest names them). */
  onChange?: (relays: RelayRef[]) => void
  now?: () => number
  logger?: Logger
}

/** Bytes of deposits asked for per receive. */
const RECEIVE_MAX_BYTES = 8 * 1024 * 1024
/** Receive pages per relay per poll. */
const PAGES_PER_POLL = 20

export class RelayReceiver {
  readonly counters: ReceiverCounters = { polls: 0, deposits: 0, records: 0, stored: 0, duplicates: 0, held: 0, refused: {} }
  #registrations: RelayRegistration[] = []
  #timer: NodeJS.Timeout | undefined
  #running: Promise<void> | undefined
  #stopped = true
  readonly #now: () => number
  readonly #log: Logger

  private constructor(
    private readonly db: Kysely<ReceiverTables>,
    private readonly d: ReceiverDeps,
  ) {
    this.#now = d.now ?? Date.now
    this.#log = d.logger ?? silentLogger
  }

  static async open<DB>(db: Kysely<DB>, deps: ReceiverDeps): Promise<RelayReceiver> {
    await migrateWith(db as unknown as Kysely<unknown>, 'relay_receiver', { getMigrations: async () => migrations })
    const r = new RelayReceiver(db as unknown as Kysely<ReceiverTables>, deps)
    await r.#load()
    await r.db.deleteFrom('spl_relay_seen').where('until_ms', '<=', r.#now()).execute()
    return r
  }

  /** Reads the registrations again (a replica on the same database registered or left a relay). */
  reload(): Promise<void> {
    return this.#load(true)
  }

  async #load(onlyIfChanged = false): Promise<void> {
    const before = onlyIfChanged ? JSON.stringify(this.relays()) : null
    this.#registrations = await this.db.selectFrom('spl_relay_registrations').selectAll().orderBy('registered_at').execute()
    // A reload that finds what was there leaves the signed manifest as it is.
    if (before === null || JSON.stringify(this.relays()) !== before) this.d.onChange?.(this.relays())
  }

  list(): RelayRegistration[] {
    return this.#registrations.map((r) => ({ ...r }))
  }

  /** The relays this instance polls (for its manifest). */
  relays(): RelayRef[] {
    return this.#registrations.map((r) => ({ url: r.url, did: r.relay_did }))
  }

  /** Registers this instance's DID at `relay` (signed) and polls it from now on. */
  async register(relay: RelayRef): Promise<{ created: boolean }> {
    await signedRequest(this.d.keypair, {
      peerUrl: relay.url,
      method: 'POST',
      path: `${mailboxPath(this.d.keypair.did)}/register`,
      body: {},
      aud: relay.did,
    })
    const now = this.#now()
    await this.db
      .insertInto('spl_relay_registrations')
      .values({ url: relay.url, relay_did: relay.did, registered_at: now, last_poll_at: null, last_ok_at: null, last_error: null })
      .onConflict((oc) => oc.column('url').doUpdateSet({ relay_did: relay.did }))
      .executeTakeFirst()
    const created = !this.#registrations.some((x) => x.url === relay.url)
    await this.#load()
    this.kick()
    return { created }
  }

  /** Unregisters at the relay (best effort) and stops polling it; `relay_error` says why the relay did not hear it. */
  async unregister(url: string): Promise<{ removed: boolean; relay_error: string | null }> {
    const reg = this.#registrations.find((r) => r.url === url)
    if (!reg) return { removed: false, relay_error: null }
    let relayError: string | null = null
    try {
      await signedRequest(this.d.keypair, { peerUrl: url, method: 'DELETE', path: mailboxPath(this.d.keypair.did), aud: reg.relay_did })
    } catch (err) {
      relayError = err instanceof Error ? err.message : String(err)
    }
    await this.db.deleteFrom('spl_relay_registrations').where('url', '=', url).execute()
    await this.#load()
    return { removed: true, relay_error: relayError }
  }

  /** Asks one relay whether it answers for this instance's mailbox (signed, nothing collected); null when it does. */
  async probe(url: string, timeoutMs = 5_000): Promise<string | null> {
    const reg = this.#registrations.find((r) => r.url === url)
    if (!reg) return `not registered at ${url}`
    try {
      await signedRequest(this.d.keypair, {
        peerUrl: url,
        method: 'GET',
        path: `${mailboxPath(this.d.keypair.did)}/receive?limit=0`,
        aud: reg.relay_did,
        timeoutMs,
      })
      return null
    } catch (err) {
      const code =
        err instanceof PeerRefusedError ? (err.remoteCode ?? `HTTP_${err.httpStatus}`) : err instanceof PullError ? err.code : 'INTERNAL'
      return `${code}: ${err instanceof Error ? err.message : String(err)}`
    }
  }

  start(): void {
    if (!this.#stopped) return
    this.#stopped = false
    this.#schedule(1_000)
  }

  async stop(): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#timer)
    await this.#running
  }

  /** Polls soon (after a registration). */
  kick(): void {
    if (this.#stopped || this.#running) return
    clearTimeout(this.#timer)
    this.#schedule(0)
  }

  #schedule(ms: number): void {
    if (this.#stopped) return
    this.#timer = setTimeout(() => {
      this.#running = this.pollAll()
        .catch((err) => this.#log.warn({ err }, 'relay poll failed'))
        .finally(() => {
          this.#running = undefined
          this.#schedule(this.d.pollIntervalMs)
        })
    }, ms)
    this.#timer.unref()
  }

  /** Polls every relay once (also called by tests and doctor). */
  async pollAll(): Promise<void> {
    for (const reg of this.#registrations) await this.pollOne(reg)
  }

  async #note(url: string, ok: boolean, error: string | null): Promise<void> {
    const now = this.#now()
    await this.db
      .updateTable('spl_relay_registrations')
      .set(ok ? { last_poll_at: now, last_ok_at: now, last_error: null } : { last_poll_at: now, last_error: error })
      .where('url', '=', url)
      .execute()
    const reg = this.#registrations.find((r) => r.url === url)
    if (reg) {
      reg.last_poll_at = now
      if (ok) reg.last_ok_at = now
      reg.last_error = ok ? null : error
    }
  }

  /** Collects what waits at one relay; returns how many deposits were taken in. */
  async pollOne(reg: RelayRegistration): Promise<number> {
    this.counters.polls++
    let taken = 0
    try {
      for (let page = 0; page < PAGES_PER_POLL; page++) {
        const answer = await signedRequest(this.d.keypair, {
          peerUrl: reg.url,
          method: 'GET',
          path: `${mailboxPath(this.d.keypair.did)}/receive?limit=50&max_bytes=${RECEIVE_MAX_BYTES}`,
          aud: reg.relay_did,
          maxAnswerBytes: RECEIVE_MAX_BYTES + 2 * MAX_DEPOSIT_BYTES,
          timeoutMs: 30_000,
        })
        const parsed = receiveAnswerSchema.safeParse(answer.json)
        if (!parsed.success) throw new PullError('PARSE_ERROR', 'the relay answered a receive that is not a list of deposits')
        const ack: string[] = []
        let stop = false
        for (const d of parsed.data.data) {
          const outcome = await this.#take(d.sealed)
          if (outcome === 'keep') {
            stop = true
            continue
          }
          if (outcome === 'held') continue
          ack.push(d.id)
          if (outcome === 'taken') taken++
        }
        if (ack.length > 0) {
          await signedRequest(this.d.keypair, {
            peerUrl: reg.url,
            method: 'POST',
            path: `${mailboxPath(this.d.keypair.did)}/ack`,
            body: { ids: ack },
            aud: reg.relay_did,
          })
        }
        if (stop || !parsed.data.has_more || ack.length === 0) break
      }
      await this.#note(reg.url, true, null)
    } catch (err) {
      const code =
        err instanceof PeerRefusedError ? (err.remoteCode ?? `HTTP_${err.httpStatus}`) : err instanceof PullError ? err.code : 'INTERNAL'
      const message = err instanceof Error ? err.message : String(err)
      await this.#note(reg.url, false, `${code}: ${message}`.slice(0, 500)).catch(() => {})
      this.#log.warn({ relay: reg.url, code, err: message }, 'could not collect deposits from the relay')
    }
    return taken
  }

  #refused(code: string): 'refused' {
    this.counters.refused[code] = (this.counters.refused[code] ?? 0) + 1
    return 'refused'
  }

  /**
   * One deposit: `taken` (durable here: ack), `refused` (never usable: ack, counted), `held`
   * (its pair is paused: leave it at the relay), `keep` (could not store now: leave it, stop).
   */
  async #take(sealed: string): Promise<'taken' | 'refused' | 'held' | 'keep'> {
    const now = this.#now()
    let opened: Awaited<ReturnType<typeof openDeposit>>
    try {
      opened = await openDeposit(this.d.keypair, sealed, now)
    } catch (err) {
      if (err instanceof DepositRefusedError) {
        this.#log.warn({ code: err.code, reason: err.message }, 'refused a deposit from a relay')
        return this.#refused(err.code)
      }
      throw err
    }
    const seen = await this.db.selectFrom('spl_relay_seen').select('deposit_id').where('deposit_id', '=', opened.id).executeTakeFirst()
    if (seen) {
      this.#log.warn({ deposit: opened.id, sender: opened.sender }, 'refused a deposit collected before (a relay replays)')
      return this.#refused('DEPOSIT_REPLAYED')
    }
    let result: Awaited<ReturnType<DeliverFn>>
    try {
      result = await this.d.deliver(opened.sender, opened.thread, opened.records)
    } catch (err) {
      this.#log.error({ err, deposit: opened.id }, 'could not store a deposit; it stays at the relay')
      return 'keep'
    }
    if (result.status !== 'ingested') {
      if (result.status === 'held') {
        this.counters.held++
        return 'held'
      }
      this.#log.warn({ sender: opened.sender, thread: opened.thread }, 'refused a deposit for a thread no pair pulls')
      return this.#refused('DEPOSIT_UNSOLICITED')
    }
    // Remembered until it could no longer be opened anyway (its own expiry), plus a day of skew.
    await this.db
      .insertInto('spl_relay_seen')
      .values({ deposit_id: opened.id, until_ms: opened.exp + 24 * 3600 * 1000 })
      .onConflict((oc) => oc.doNothing())
      .execute()
    this.counters.deposits++
    this.counters.records += result.received
    this.counters.stored += result.stored
    this.counters.duplicates += result.duplicates
    this.#log.info(
      { sender: opened.sender, thread: opened.thread, stored: result.stored, duplicates: result.duplicates },
      'took in a deposit',
    )
    return 'taken'
  }
}
