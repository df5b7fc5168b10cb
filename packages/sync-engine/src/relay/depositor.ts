import type { Keypair } from '@spl/identity'
import { PeerRefusedError, PullError, signedRequest } from '@spl/transport'
import { type Logger, silentLogger } from '../logger.js'
import type { ChangeFeed } from '../source/feed.js'
import type { ChangeSource } from '../stores.js'
import { DEPOSIT_PLAINTEXT_BUDGET, sealDeposit } from './deposit.js'
import type { FeedReaders, ReaderEntry } from './readers.js'
import type { RelayRef, RelayRoutes } from './routes.js'

/** The mailbox doors of a relay (SPEC 10). */
export const mailboxPath = (did: string) => `/v1/mailbox/${did}`

export interface DepositorDeps {
  keypair: Keypair
  feed: ChangeFeed
  source: ChangeSource
  readers: FeedReaders
  routes: RelayRoutes
  /** Looks at the receiver's manifest for the relays it polls (the daemon fetches and verifies it). */
  learnRelays?: (did: string) => Promise<void>
  /** A record not pulled this long after it was stored is deposited (SPEC 10: 60 s). */
  depositAfterMs: number
  /** How long a deposit may wait at the relay (SPEC 10: 7 days). */
  ttlMs: number
  /** How often the readers are looked at. */
  tickMs?: number
  now?: () => number
  logger?: Logger
}

/** What the sender side did since start (for /metrics and spl status). */
export interface DepositorCounters {
  deposits: number
  records: number
  bytes: number
  failed: Record<string, number>
}

/** A receiver's manifest is looked at again after this long (while it pulls from us). */
const LEARN_EVERY_MS = 60 * 60 * 1000
/** Deposits per reader per tick, so that one big backlog does not hold the others. */
const DEPOSITS_PER_TICK = 16

/**
 * The sender side of SPEC 10: for a caller that pulls a thread from this instance and has not
 * pulled for `depositAfterMs`, the records it would have been served (the feed's own page, consent
 * filter included) that were stored at least that long ago are signed, sealed to it and
 * deposited at a relay it polls.
 */
export class Depositor {
  readonly counters: DepositorCounters = { deposits: 0, records: 0, bytes: 0, failed: {} }
  readonly #d: DepositorDeps
  readonly #now: () => number
  readonly #log: Logger
  readonly #backoff = new Map<string, number>()
  readonly #learning = new Set<string>()
  #timer: NodeJS.Timeout | undefined
  #running: Promise<void> | undefined
  #stopped = true

  constructor(deps: DepositorDeps) {
    this.#d = deps
    this.#now = deps.now ?? Date.now
    this.#log = deps.logger ?? silentLogger
  }

  get tickMs(): number {
    return this.#d.tickMs ?? Math.min(5_000, Math.max(250, Math.floor(this.#d.depositAfterMs / 4)))
  }

  start(): void {
    if (!this.#stopped) return
    this.#stopped = false
    this.#schedule()
  }

  async stop(): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#timer)
    await this.#running
    await this.#d.readers.flush(this.#routed).catch(() => {})
  }

  #schedule(): void {
    if (this.#stopped) return
    this.#timer = setTimeout(() => {
      this.#running = this.tick()
        .catch((err) => this.#log.warn({ err }, 'relay deposit round failed'))
        .finally(() => {
          this.#running = undefined
          this.#schedule()
        })
    }, this.tickMs)
    this.#timer.unref()
  }

  /** One round over every reader (also called by tests). */
  async tick(): Promise<void> {
    const now = this.#now()
    const head = await this.#d.source.headSeq()
    for (const r of this.#d.readers.list()) {
      this.#maybeLearn(r, now)
      const offline = r.active === 0 && now - r.seenAt >= this.#d.depositAfterMs
      if (!offline || Math.max(r.afterSeq, r.depositedSeq) >= head) continue
      const relays = this.#d.routes.routesFor(r.did)
      if (relays.length === 0) continue
      await this.#depositFor(r, relays, now)
    }
    await this.#d.readers.flush(this.#routed)
  }

  /** Readers worth remembering across a restart: those a relay route exists for. */
  readonly #routed = (did: string) => this.#d.routes.routesFor(did).length > 0

  #maybeLearn(r: ReaderEntry, now: number): void {
    const learn = this.#d.learnRelays
    if (!learn || this.#learning.has(r.did)) return
    const online = r.active > 0 || now - r.seenAt < this.#d.depositAfterMs
    const looked = this.#d.routes.lookedAt(r.did)
    if (!online || (looked !== null && now - looked < LEARN_EVERY_MS)) return
    this.#learning.add(r.did)
    learn(r.did)
      .catch((err) => this.#log.debug({ err, did: r.did }, 'could not read the receiver manifest for its relays'))
      .finally(() => this.#learning.delete(r.did))
  }

  async #depositFor(r: ReaderEntry, relays: readonly RelayRef[], now: number): Promise<void> {
    for (let n = 0; n < DEPOSITS_PER_TICK; n++) {
      const from = Math.max(r.afterSeq, r.depositedSeq)
      const page = await this.#d.feed.pageFor(
        { thread: r.thread, limit: 1000, max_bytes: DEPOSIT_PLAINTEXT_BUDGET, include_own: r.includeOwn },
        r.ctx,
        r.did,
        from,
        { storedBefore: now - this.#d.depositAfterMs },
      )
      if (page.served.length === 0) {
        // Only hidden or own records: nothing to deposit, and no need to look at them again.
        this.#d.readers.deposited(r, page.lastSeq)
        return
      }
      const { sealed } = await sealDeposit(this.#d.keypair, r.did, { thread: r.thread, records: page.served, ttlMs: this.#d.ttlMs, now })
      if (!(await this.#send(r.did, relays, sealed, now))) return
      this.counters.deposits++
      this.counters.records += page.served.length
      this.counters.bytes += sealed.length
      this.#d.readers.deposited(r, page.lastSeq)
      this.#log.info({ did: r.did, thread: r.thread, records: page.served.length }, 'deposited at a relay')
      if (!page.hasMore) return
    }
  }

  /** Deposits at the first relay that takes it; false when none did (each one that refused waits). */
  async #send(receiver: string, relays: readonly RelayRef[], sealed: string, now: number): Promise<boolean> {
    for (const relay of relays) {
      const key = `${receiver}\n${relay.url}`
      if ((this.#backoff.get(key) ?? 0) > now) continue
      try {
        await signedRequest(this.#d.keypair, {
          peerUrl: relay.url,
          method: 'POST',
          path: mailboxPath(receiver),
          body: { sealed },
          aud: relay.did,
          timeoutMs: 15_000,
        })
        this.#backoff.delete(key)
        return true
      } catch (err) {
        const code =
          err instanceof PeerRefusedError ? (err.remoteCode ?? `HTTP_${err.httpStatus}`) : err instanceof PullError ? err.code : 'INTERNAL'
        this.counters.failed[code] = (this.counters.failed[code] ?? 0) + 1
        const wait =
          err instanceof PeerRefusedError && err.retryAfterMs !== undefined
            ? err.retryAfterMs
            : err instanceof PeerRefusedError && err.httpStatus === 507
              ? 60_000
              : err instanceof PeerRefusedError
                ? 10 * 60_000
                : 30_000
        this.#backoff.set(key, now + wait)
        this.#log.warn({ did: receiver, relay: relay.url, code, retry_in_ms: wait }, 'relay refused a deposit')
      }
    }
    return false
  }
}
