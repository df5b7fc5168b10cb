import { SplError } from '@spl/identity'
import {
  type Announcement,
  announcementRecords,
  buildAnnouncement,
  MDNS_SERVICE_TYPE,
  readResponse,
  SERVICES_META,
  sameName,
} from './mdns-records.js'
import { announceTtlSeconds, MdnsRoster, type MdnsRosterEntry } from './mdns-roster.js'
import {
  type MdnsErrorListener,
  type MdnsPacket,
  type MdnsRecord,
  type MdnsRemote,
  type MdnsSocket,
  type MdnsSocketOptions,
  openBonjourSocket,
} from './mdns-socket.js'
import type { DiscoverQuery, DiscoveryLogger, FoundPeer, ListeningAddress, PeerSource, PeerSourceEvents } from './source.js'

/** How often the announcer announces by default; a killed peer is gone 2.5 intervals later. */
export const MDNS_DEFAULT_INTERVAL_MS = 30_000
/** The shortest interval accepted (TTLs are whole seconds). */
export const MDNS_MIN_INTERVAL_MS = 1000
/** `find` returns once no new answer came for this long (or at its timeout). */
const SETTLE_MS = 300
/** Re-announcements for new peers and refresh queries are at most this frequent. */
const MIN_GAP_MS = 1000

export interface MdnsSourceComponents {
  logger: DiscoveryLogger
  now?: () => number
  /** Opens the multicast socket (bonjour-service's by default; tests pass a fake). */
  openSocket?: (options: MdnsSocketOptions, onError: MdnsErrorListener) => MdnsSocket
}

export interface MdnsSourceInit {
  /** This daemon's DID (TXT `did=`; its own announcements are not listed). */
  did: string
  handle?: string | undefined
  /** TXT `ns=`: the namespace this daemon works in. */
  namespace: string
  /** Keep a roster of peers and answer `find` (`[sync.discovery] mdns_listen`). */
  listen: boolean
  /** Announce this daemon and answer queries for it (`mdns_broadcast`). */
  broadcast: boolean
  /** `[sync.discovery] advertise_url`: announced instead of this machine's address. */
  advertiseUrl?: string | undefined
  /** Announce interval (default 30 s); peers expire after two missed ones. */
  intervalMs?: number | undefined
  /** IPv4 address of the interface to use (default: all, sending by route). */
  interface?: string | undefined
  /** UDP port (5353; tests may pick another). */
  port?: number | undefined
}

/** What `GET /v1/discovery/mdns` shows besides the roster. */
export interface MdnsStatus {
  listen: boolean
  broadcast: boolean
  /** This daemon's instance name, when it announces. */
  instance?: string | undefined
  interval_ms: number
  /** Why mDNS is not working (the socket did not bind), when it is not. */
  error?: string | undefined
}

export interface MdnsPeerSource extends PeerSource {
  readonly method: 'mdns'
  on<E extends keyof PeerSourceEvents>(event: E, listener: PeerSourceEvents[E]): void
  /** The roster as it is, without asking the network. */
  roster(): FoundPeer[]
  status(): MdnsStatus
}

export function isMdnsSource(source: PeerSource | undefined): source is MdnsPeerSource {
  return source?.method === 'mdns' && typeof (source as Partial<MdnsPeerSource>).roster === 'function'
}

export function mdnsSource(components: MdnsSourceComponents, init: MdnsSourceInit): MdnsPeerSource {
  return new MdnsSource(components, init)
}

type Listeners = { [E in keyof PeerSourceEvents]: PeerSourceEvents[E][] }

class MdnsSource implements MdnsPeerSource {
  readonly method = 'mdns' as const
  readonly #log: DiscoveryLogger
  readonly #now: () => number
  readonly #open: NonNullable<MdnsSourceComponents['openSocket']>
  readonly #init: MdnsSourceInit
  readonly #interval: number
  readonly #ttl: number
  readonly #roster: MdnsRoster
  readonly #listeners: Listeners = { peer: [], gone: [] }
  #socket: MdnsSocket | undefined
  #announcement: Announcement | undefined
  #failure: Error | undefined
  #timers: NodeJS.Timeout[] = []
  #lastAnnounce = 0
  #announcePending: NodeJS.Timeout | undefined
  #lastQuery = 0
  #lastAnswer = 0
  #lastSendError: string | undefined
  #conflictWarned = false
  #started = false
  #stopped = false

  constructor(components: MdnsSourceComponents, init: MdnsSourceInit) {
    this.#log = components.logger
    this.#now = components.now ?? Date.now
    this.#open = components.openSocket ?? openBonjourSocket
    this.#init = init
    this.#interval = Math.max(MDNS_MIN_INTERVAL_MS, init.intervalMs ?? MDNS_DEFAULT_INTERVAL_MS)
    this.#ttl = announceTtlSeconds(this.#interval)
    this.#roster = new MdnsRoster({ now: this.#now })
  }

  on<E extends keyof PeerSourceEvents>(event: E, listener: PeerSourceEvents[E]): void {
    this.#listeners[event].push(listener)
  }

  status(): MdnsStatus {
    return {
      listen: this.#init.listen,
      broadcast: this.#init.broadcast,
      instance: this.#announcement?.instance,
      interval_ms: this.#interval,
      error: this.#failure ? this.#failure.message : undefined,
    }
  }

  async start(listening: ListeningAddress): Promise<void> {
    if (this.#started || (!this.#init.listen && !this.#init.broadcast)) return
    this.#started = true
    if (this.#init.broadcast) this.#announcement = buildAnnouncement(this.#init, listening)
    try {
      this.#socket = this.#open({ interface: this.#init.interface, port: this.#init.port }, (err, fatal) => this.#socketError(err, fatal))
    } catch (err) {
      this.#socketError(err instanceof Error ? err : new Error(String(err)), true)
      return
    }
    this.#socket.onPacket('response', (packet, from) => this.#onResponse(packet, from))
    if (this.#announcement) this.#socket.onPacket('query', (packet, from) => this.#onQuery(packet, from))
    if (this.#init.listen) this.#query()
    const tick = Math.min(5000, Math.max(250, Math.floor(this.#interval / 4)))
    this.#every(tick, () => this.#maintain())
    if (this.#announcement) {
      // RFC 6762 8.3: announce twice, a second apart; then every interval.
      this.#announce()
      this.#after(1000, () => this.#announce())
      this.#every(this.#interval, () => this.#announce())
      this.#log.info(
        { instance: this.#announcement.instance, port: this.#announcement.port, interval_ms: this.#interval },
        `mdns: announcing ${this.#announcement.fqdn}`,
      )
    }
  }

  async stop(): Promise<void> {
    if (this.#stopped) return
    this.#stopped = true
    for (const t of this.#timers) clearTimeout(t)
    this.#timers = []
    if (this.#announcePending) clearTimeout(this.#announcePending)
    const socket = this.#socket
    if (!socket) return
    if (this.#announcement && !this.#failure) {
      // The goodbye: every record with TTL 0, so listeners drop this daemon at once.
      const records = announcementRecords(this.#announcement, 0)
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 1000)
        socket.respond(records, undefined, (err) => {
          clearTimeout(t)
          if (err) this.#sendError(err, 'goodbye')
          resolve()
        })
      })
    }
    await socket.close()
    this.#socket = undefined
    this.#roster.clear()
  }

  roster(): FoundPeer[] {
    this.#expire()
    if (!this.#init.listen) return []
    return this.#roster
      .entries()
      .map((e): FoundPeer => ({ did: e.did, url: e.url, handle: e.handle, namespace: e.namespace, source: 'mdns', last_seen: e.lastSeen }))
  }

  async find(query: DiscoverQuery): Promise<FoundPeer[]> {
    if (!this.#init.listen) {
      throw new SplError('DISCOVERY_METHOD_OFF', 'the mDNS listener is off on this daemon (it only announces)', {
        status: 409,
        fix: 'set [sync.discovery] mdns_listen = true in config.toml and restart the daemon',
      })
    }
    if (this.#failure || !this.#socket) {
      throw new SplError('MDNS_UNAVAILABLE', `mDNS is not available: ${this.#failure?.message ?? 'the listener is not running'}`, {
        status: 503,
        fix: 'check that UDP port 5353 is free and that a multicast route exists (ip route add 224.0.0.0/4 dev <interface>); see the daemon log',
      })
    }
    const asked = this.#now()
    this.#query(true)
    await this.#settle(asked, query.timeoutMs, query.signal)
    return this.roster()
  }

  /** Waits until answers stopped coming for SETTLE_MS after one came, or `timeoutMs` passed. */
  #settle(asked: number, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (timeoutMs <= 0) return Promise.resolve()
    return new Promise<void>((resolve) => {
      const done = () => {
        clearInterval(poll)
        clearTimeout(limit)
        signal?.removeEventListener('abort', done)
        resolve()
      }
      const poll = setInterval(() => {
        if (this.#lastAnswer >= asked && this.#now() - this.#lastAnswer >= SETTLE_MS) done()
      }, 50)
      const limit = setTimeout(done, timeoutMs)
      signal?.addEventListener('abort', done, { once: true })
    })
  }

  #emit<E extends keyof PeerSourceEvents>(event: E, ...args: Parameters<PeerSourceEvents[E]>): void {
    for (const l of this.#listeners[event]) {
      try {
        ;(l as (...a: Parameters<PeerSourceEvents[E]>) => void)(...args)
      } catch (err) {
        this.#log.warn({ err }, `mdns: a ${event} listener threw`)
      }
    }
  }

  #every(ms: number, fn: () => void): void {
    const t = setInterval(fn, ms)
    t.unref()
    this.#timers.push(t)
  }

  #after(ms: number, fn: () => void): void {
    const t = setTimeout(fn, ms)
    t.unref()
    this.#timers.push(t)
  }

  #socketError(err: Error, fatal: boolean): void {
    const code = (err as NodeJS.ErrnoException).code
    if (fatal) {
      this.#failure = err
      this.#log.warn(
        { err, code },
        `mdns: cannot use UDP ${this.#init.port ?? 5353} (${code ?? err.message}); mDNS is off until restart: ${err.message}`,
      )
      for (const t of this.#timers) clearTimeout(t)
      this.#timers = []
      return
    }
    this.#sendError(err, 'socket')
  }

  /** Logs a send failure with its cause: the first of a kind as a warning, repeats at debug. */
  #sendError(err: Error, what: string): void {
    const code = (err as NodeJS.ErrnoException).code ?? err.message
    const msg = `mdns: ${what} failed (${code}): ${err.message}`
    if (code !== this.#lastSendError) {
      this.#lastSendError = code
      this.#log.warn(
        { err, code },
        `${msg}${code === 'ENETUNREACH' ? ' (no multicast route: ip route add 224.0.0.0/4 dev <interface>)' : ''}`,
      )
    } else {
      this.#log.debug?.({ err, code }, msg)
    }
  }

  #query(force = false): void {
    const socket = this.#socket
    if (!socket || this.#failure) return
    const now = this.#now()
    if (!force && now - this.#lastQuery < MIN_GAP_MS) return
    this.#lastQuery = now
    socket.query({ questions: [{ name: MDNS_SERVICE_TYPE, type: 'PTR' }] }, (err) => {
      if (err) this.#sendError(err, 'query')
    })
  }

  #announce(): void {
    const socket = this.#socket
    const a = this.#announcement
    if (!socket || !a || this.#failure || this.#stopped) return
    this.#lastAnnounce = this.#now()
    socket.respond(announcementRecords(a, this.#ttl), undefined, (err) => {
      if (err) this.#sendError(err, 'announcement')
    })
  }

  /** A new peer appeared: announce soon (at most once a second), so it learns of us now. */
  #announceSoon(): void {
    if (!this.#announcement || this.#announcePending) return
    const wait = Math.max(0, this.#lastAnnounce + MIN_GAP_MS - this.#now())
    this.#announcePending = setTimeout(() => {
      this.#announcePending = undefined
      this.#announce()
    }, wait)
    this.#announcePending.unref()
  }

  #expire(): void {
    for (const e of this.#roster.expire()) this.#gone(e, 'expired')
  }

  #gone(e: MdnsRosterEntry, why: string): void {
    if (!this.#init.listen) return
    this.#log.info({ did: e.did, url: e.url, instance: e.fqdn }, `mdns: ${e.fqdn} ${why}`)
    this.#emit('gone', e.did)
  }

  #maintain(): void {
    this.#expire()
    if (this.#roster.takeRefreshDue() && this.#init.listen) this.#query()
  }

  #onResponse(packet: MdnsPacket, from: MdnsRemote): void {
    if (!this.#init.listen && !this.#announcement) return
    let parsed: ReturnType<typeof readResponse>
    try {
      parsed = readResponse(packet, from)
    } catch (err) {
      this.#log.debug?.({ err, from: from.address }, 'mdns: unreadable response')
      return
    }
    for (const g of parsed.goodbyes) {
      if (g.did === this.#init.did) continue
      for (const e of this.#roster.goodbye(g.fqdn, g.did)) this.#gone(e, 'said goodbye')
    }
    for (const s of parsed.sightings) {
      if (s.did === this.#init.did) continue
      if (this.#announcement && sameName(s.fqdn, this.#announcement.fqdn) && !this.#conflictWarned) {
        this.#conflictWarned = true
        this.#log.warn(
          { did: s.did, instance: s.fqdn },
          `mdns: ${s.did} announces our instance name ${s.fqdn}: set a distinct [identity] handle`,
        )
      }
      this.#lastAnswer = this.#now()
      // An announcer without a listener keeps the roster too (to tell a newcomer from a peer it
      // knows: announcing on every announcement heard would ping-pong), but lists nobody.
      const change = this.#roster.see(s)
      if (change === 'seen') continue
      if (!this.#init.listen) {
        if (change === 'new') this.#announceSoon()
        continue
      }
      this.#log.info({ did: s.did, url: s.url, instance: s.fqdn }, `mdns: ${change === 'new' ? 'found' : 'updated'} ${s.fqdn} at ${s.url}`)
      this.#emit('peer', { did: s.did, url: s.url, handle: s.handle, namespace: s.namespace, source: 'mdns', last_seen: this.#now() })
      if (change === 'new') this.#announceSoon()
    }
  }

  #onQuery(packet: MdnsPacket, from: MdnsRemote): void {
    const a = this.#announcement
    if (!a || this.#failure) return
    const own = announcementRecords(a, this.#ttl)
    const [ptr, srv, txt, ...addrs] = own.answers as [MdnsRecord, MdnsRecord, MdnsRecord, ...MdnsRecord[]]
    const answers: MdnsRecord[] = []
    let additionals: MdnsRecord[] = []
    const add = (list: MdnsRecord[], r: MdnsRecord) => {
      if (!list.includes(r)) list.push(r)
    }
    for (const q of packet.questions ?? []) {
      const any = q.type === 'ANY'
      if (sameName(q.name, MDNS_SERVICE_TYPE) && (any || q.type === 'PTR')) {
        add(answers, ptr)
        additionals.push(srv, txt, ...addrs)
      } else if (sameName(q.name, SERVICES_META) && (any || q.type === 'PTR')) {
        add(answers, own.additionals[0]!)
      } else if (sameName(q.name, a.fqdn)) {
        if (any || q.type === 'SRV') add(answers, srv)
        if (any || q.type === 'TXT') add(answers, txt)
        additionals.push(...addrs)
      } else if (sameName(q.name, a.host) && (any || q.type === 'A')) {
        for (const r of addrs) add(answers, r)
      }
    }
    if (answers.length === 0) return
    additionals = [...new Set(additionals)].filter((r) => !answers.includes(r))
    // A querier not on port 5353 is a legacy unicast resolver (RFC 6762 6.7): answer it directly.
    const legacy = from.port !== (this.#init.port ?? 5353)
    const response: MdnsPacket = legacy
      ? { id: packet.id ?? 0, questions: packet.questions ?? [], answers, additionals }
      : { answers, additionals }
    this.#socket?.respond(response, legacy ? from : undefined, (err) => {
      if (err) this.#sendError(err, 'answer')
    })
  }
}
