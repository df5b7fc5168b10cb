// The multicast socket under the mDNS source. bonjour-service opens it (its multicast-dns
// server with our bind/interface options) and we use that socket directly: its public API
// announces on a fixed back-off (1 s, 3 s, 9 s … 1 h) with fixed TTLs, never expires what it
// saw and throws send errors from a callback, while SPEC 8 needs a fixed announce interval,
// TTLs tied to it, expiry after two missed announcements and every failure logged. So the source
// builds, announces and answers its own records (mdns.ts) over this narrow interface, which
// tests replace with a fake.
import { createRequire } from 'node:module'
import type BonjourType from 'bonjour-service'

export interface MdnsQuestion {
  name: string
  type: string
  class?: string
}

export interface MdnsRecord {
  name: string
  type: string
  ttl?: number
  class?: string
  /** The cache-flush bit (RFC 6762 10.2): set on unique records (SRV, TXT, A). */
  flush?: boolean
  data?: unknown
}

export interface MdnsPacket {
  id?: number
  type?: 'query' | 'response'
  flags?: number
  questions?: MdnsQuestion[]
  answers?: MdnsRecord[]
  additionals?: MdnsRecord[]
  authorities?: MdnsRecord[]
}

export interface MdnsRemote {
  address: string
  port: number
}

export type SendCallback = (err?: Error | null) => void

/** What the source needs from a multicast DNS socket. */
export interface MdnsSocket {
  /** Multicasts a query. */
  query(packet: MdnsPacket, cb: SendCallback): void
  /** Multicasts a response (or sends it to `to`: a legacy unicast querier). */
  respond(packet: MdnsPacket, to: MdnsRemote | undefined, cb: SendCallback): void
  onPacket(kind: 'query' | 'response', listener: (packet: MdnsPacket, from: MdnsRemote) => void): void
  close(): Promise<void>
}

export interface MdnsSocketOptions {
  /** The IPv4 address of the interface to join and send on (default: every interface, sent by route). */
  interface?: string | undefined
  /** UDP port (5353). */
  port?: number | undefined
}

/** Socket trouble: `fatal` when the socket could not bind (no mDNS at all). */
export type MdnsErrorListener = (err: Error, fatal: boolean) => void

interface MulticastDns {
  query(packet: MdnsPacket, cb: SendCallback): void
  respond(packet: MdnsPacket, rinfo: MdnsRemote | SendCallback, cb?: SendCallback): void
  on(event: string, listener: (...args: never[]) => void): void
  destroy(cb?: () => void): void
}

function isMulticastDns(x: unknown): x is MulticastDns {
  const m = x as Partial<Record<keyof MulticastDns, unknown>> | undefined
  return !!m && ['query', 'respond', 'on', 'destroy'].every((k) => typeof m[k as keyof MulticastDns] === 'function')
}

/**
 * Opens the socket through bonjour-service: bound to 0.0.0.0:5353 (so that it works inside
 * network namespaces, where the interface is the namespace's veth), joined to 224.0.0.251.
 * `onError` gets bind failures (fatal) and send/socket warnings; listeners are attached before
 * the socket binds, so no error event goes unhandled.
 */
export function openBonjourSocket(options: MdnsSocketOptions, onError: MdnsErrorListener): MdnsSocket {
  const opts = {
    bind: '0.0.0.0',
    port: options.port ?? 5353,
    ...(options.interface ? { interface: options.interface } : {}),
    loopback: true,
    reuseAddr: true,
  }
  // bonjour-service's errorCallback fires when answering from its own registry fails; we
  // register nothing there, but a throw from it would end the daemon, so it only reports.
  // Loaded here, not at import: a daemon with mDNS off (or not yet announcing) never needs it.
  const { Bonjour } = createRequire(import.meta.url)('bonjour-service') as { Bonjour: typeof BonjourType }
  const bonjour = new Bonjour(opts as unknown as ConstructorParameters<typeof BonjourType>[0], (err: unknown) =>
    onError(err instanceof Error ? err : new Error(String(err)), false),
  )
  const mdns = (bonjour as unknown as { server?: { mdns?: unknown } }).server?.mdns
  if (!isMulticastDns(mdns)) {
    bonjour.destroy()
    throw new Error('bonjour-service has no multicast-dns server where 1.4.x has it (server.mdns): check its version')
  }
  mdns.on('error', (err: Error) => onError(err, true))
  mdns.on('warning', (err: Error) => onError(err, false))
  let closed = false
  return {
    query: (packet, cb) => mdns.query(packet, cb),
    respond: (packet, to, cb) => (to ? mdns.respond(packet, to, cb) : mdns.respond(packet, cb)),
    onPacket: (kind, listener) => mdns.on(kind, listener as (...args: never[]) => void),
    close: () =>
      new Promise<void>((resolve) => {
        if (closed) return resolve()
        closed = true
        try {
          bonjour.destroy(() => resolve())
        } catch {
          // A socket that never bound throws on close: nothing left to release.
          resolve()
        }
      }),
  }
}
