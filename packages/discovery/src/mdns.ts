// The `mdns` source (SPEC 8): a listener that keeps a roster of `_syncropel._tcp.local`
// instances on the LAN (on by default) and an announcer for this daemon (opt-in). What a TXT
// record says is a claim: Discovery verifies the manifest at the announced URL before it shows
// an entry as verified. Nothing here is fatal: a socket that cannot bind or send is logged with
// the cause and the daemon runs on without mDNS.
import { createHash } from 'node:crypto'
import os from 'node:os'
import { isDidKey, SplError, shortDid } from '@spl/identity'
import { announceTtlSeconds, MdnsRoster, type MdnsRosterEntry, type MdnsSighting } from './mdns-roster.js'
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

export const MDNS_SERVICE_TYPE = '_syncropel._tcp.local'
const SERVICES_META = '_services._dns-sd._udp.local'
/** How often the announcer announces by default; a killed peer is gone 2.5 intervals later. */
export const MDNS_DEFAULT_INTERVAL_MS = 30_000
/** The shortest interval accepted (TTLs are whole seconds). */
export const MDNS_MIN_INTERVAL_MS = 1000
/** `find` returns once no new answer came for this long (or at its timeout). */
const SETTLE_MS = 300
/** Re-announcements for new peers and refresh queries are at most this frequent. */
const MIN_GAP_MS = 1000
/** The longest TXT value read (a did:key is 56 characters; a URL may be longer). */
const MAX_TXT_VALUE = 2048

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

const lower = (s: string) => s.toLowerCase()
const sameName = (a: string, b: string) => lower(a) === lower(b)

/** An instance name: the handle or the short DID, one DNS label (no dots, ≤ 63 bytes). */
export function instanceName(did: string, handle?: string): string {
  let name = (handle?.trim() || shortDid(did)).replace(/\./g, '-')
  while (Buffer.byteLength(name) > 63) name = name.slice(0, -1)
  return name
}

/** The TXT strings (`key=value`) of an instance record, decoded; the first of a key wins (RFC 6763 6.4). */
export function parseTxt(data: unknown): Map<string, string> {
  const out = new Map<string, string>()
  const items = Array.isArray(data) ? data : data === undefined ? [] : [data]
  for (const item of items) {
    const text = Buffer.isBuffer(item) ? item.toString('utf8') : typeof item === 'string' ? item : ''
    const eq = text.indexOf('=')
    if (eq <= 0) continue
    const key = lower(text.slice(0, eq))
    const value = text.slice(eq + 1)
    if (!out.has(key) && value.length <= MAX_TXT_VALUE) out.set(key, value)
  }
  return out
}

function httpUrl(value: string | undefined): string | undefined {
  if (!value) return undefined
  try {
    const u = new URL(value)
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return undefined
    return value.replace(/\/+$/, '')
  } catch {
    return undefined
  }
}

/** The URL of an announced instance: TXT `url=` when valid, else the sender's address with the SRV port and TXT `path=`. */
export function announcedUrl(txt: Map<string, string>, from: MdnsRemote, port: number): string {
  const url = httpUrl(txt.get('url'))
  if (url) return url
  const host = from.address.includes(':') ? `[${from.address}]` : from.address
  const path = txt.get('path')
  const base = path && /^\/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$/.test(path) ? path.replace(/\/+$/, '') : ''
  return `http://${host}:${port}${base}`
}

interface Srv {
  port: number
  target: string
}

/** The instances a response describes (PTR → SRV + TXT), and the goodbyes it carries. */
export function readResponse(
  packet: MdnsPacket,
  from: MdnsRemote,
): { sightings: MdnsSighting[]; goodbyes: { fqdn: string; did?: string | undefined }[] } {
  const records = [...(packet.answers ?? []), ...(packet.additionals ?? [])]
  const ours = (name: unknown): name is string => typeof name === 'string' && lower(name).endsWith(`.${MDNS_SERVICE_TYPE}`)
  const goodbyes: { fqdn: string; did?: string | undefined }[] = []
  const live = new Set<string>()
  for (const rr of records) {
    const ttl = rr.ttl ?? 0
    if (rr.type === 'PTR' && sameName(rr.name, MDNS_SERVICE_TYPE) && ours(rr.data)) {
      if (ttl === 0) goodbyes.push({ fqdn: rr.data })
      else live.add(lower(rr.data))
    } else if ((rr.type === 'SRV' || rr.type === 'TXT') && ours(rr.name) && ttl > 0) {
      live.add(lower(rr.name))
    }
  }
  // A goodbye names the DID when its TXT record (TTL 0 too) came with it.
  for (const g of goodbyes) {
    const txt = records.find((r) => r.type === 'TXT' && (r.ttl ?? 0) === 0 && sameName(r.name, g.fqdn))
    const did = txt ? parseTxt(txt.data).get('did') : undefined
    if (did) g.did = did
    live.delete(lower(g.fqdn))
  }
  const sightings: MdnsSighting[] = []
  for (const name of live) {
    const srvRec = records.find((r) => r.type === 'SRV' && (r.ttl ?? 0) > 0 && sameName(r.name, name))
    const txtRec = records.find((r) => r.type === 'TXT' && (r.ttl ?? 0) > 0 && sameName(r.name, name))
    const srv = srvRec?.data as Partial<Srv> | undefined
    if (!srvRec || !txtRec || typeof srv?.port !== 'number' || srv.port <= 0 || srv.port > 65535) continue
    const txt = parseTxt(txtRec.data)
    const did = txt.get('did')
    const v = txt.get('v')
    if (!did || !isDidKey(did) || (v !== undefined && v !== '1')) continue
    const ptr = records.find((r) => r.type === 'PTR' && (r.ttl ?? 0) > 0 && typeof r.data === 'string' && sameName(r.data, name))
    const ttls = [srvRec.ttl, txtRec.ttl, ptr?.ttl].filter((t): t is number => typeof t === 'number' && t > 0)
    const handle = txt.get('handle')
    const ns = txt.get('ns')
    sightings.push({
      fqdn: srvRec.name,
      did,
      url: announcedUrl(txt, from, srv.port),
      handle: handle && handle.length <= 64 ? handle : undefined,
      namespace: ns && ns.length <= 200 ? ns : undefined,
      ttlSeconds: Math.min(...ttls),
    })
  }
  return { sightings, goodbyes }
}

function ipv4Addresses(only?: string): string[] {
  const out: string[] = []
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) {
      if (a.family === 'IPv4' && !a.internal && (only === undefined || a.address === only)) out.push(a.address)
    }
  }
  return out
}

/** What this daemon announces: instance, host and port, from `advertise_url` when set. */
export interface Announcement {
  instance: string
  fqdn: string
  /** The SRV target. */
  host: string
  port: number
  /** A records for `host` (none when the SRV target is advertise_url's DNS name). */
  addresses: string[]
  txt: string[]
}

/**
 * Builds the announcement. Without `advertise_url`: SRV `spl-<hash of DID>.local` (a name of its
 * own: namespaces on one machine share its hostname) on the listening port, A records of this
 * machine's addresses. With it: SRV host and port from the URL (an IP literal becomes the A
 * record), and TXT `url=` carries the URL itself (the scheme and path SRV cannot say).
 */
export function buildAnnouncement(
  init: Pick<MdnsSourceInit, 'did' | 'handle' | 'namespace' | 'advertiseUrl' | 'interface'>,
  listening: ListeningAddress,
  localAddresses: () => string[] = () => ipv4Addresses(init.interface),
): Announcement {
  const instance = instanceName(init.did, init.handle)
  const ownHost = `spl-${createHash('sha256').update(init.did).digest('hex').slice(0, 12)}.local`
  const txt = [`did=${init.did}`, `ns=${init.namespace}`]
  if (init.handle) txt.push(`handle=${init.handle}`)
  txt.push('v=1')
  const advertised = init.advertiseUrl ? new URL(init.advertiseUrl) : undefined
  if (!advertised) {
    txt.push('path=/')
    return { instance, fqdn: `${instance}.${MDNS_SERVICE_TYPE}`, host: ownHost, port: listening.port, addresses: localAddresses(), txt }
  }
  const path = advertised.pathname.replace(/\/+$/, '') || '/'
  txt.push(`path=${path}`, `url=${init.advertiseUrl!.replace(/\/+$/, '')}`)
  const port = advertised.port ? Number(advertised.port) : advertised.protocol === 'https:' ? 443 : 80
  const hostname = advertised.hostname.replace(/^\[|\]$/g, '')
  const isIpv4 = /^\d{1,3}(\.\d{1,3}){3}$/.test(hostname)
  const isIp = isIpv4 || hostname.includes(':')
  return {
    instance,
    fqdn: `${instance}.${MDNS_SERVICE_TYPE}`,
    host: isIp ? ownHost : hostname,
    port,
    addresses: isIpv4 ? [hostname] : [],
    txt,
  }
}

/** The records of an announcement, with `ttl` (0 for the goodbye). */
export function announcementRecords(a: Announcement, ttl: number): { answers: MdnsRecord[]; additionals: MdnsRecord[] } {
  const srv: MdnsRecord = { name: a.fqdn, type: 'SRV', ttl, flush: true, data: { port: a.port, target: a.host, priority: 0, weight: 0 } }
  const txt: MdnsRecord = { name: a.fqdn, type: 'TXT', ttl, flush: true, data: a.txt.map((t) => Buffer.from(t)) }
  const ptr: MdnsRecord = { name: MDNS_SERVICE_TYPE, type: 'PTR', ttl, data: a.fqdn }
  const addrs = a.addresses.map((ip): MdnsRecord => ({ name: a.host, type: 'A', ttl, flush: true, data: ip }))
  const meta: MdnsRecord = { name: SERVICES_META, type: 'PTR', ttl, data: MDNS_SERVICE_TYPE }
  return { answers: [ptr, srv, txt, ...addrs], additionals: [meta] }
}

/** The mDNS source. */
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
