// The DNS-SD records of an spl daemon on mDNS (SPEC 8): the instance name, the TXT keys, what an
// announcement holds and the records it is sent as, and reading a response into sightings. Pure:
// no socket, no clock of its own.
import { createHash } from 'node:crypto'
import os from 'node:os'
import { isDidKey, shortDid } from '@spl/identity'
import type { MdnsSourceInit } from './mdns.js'
import type { MdnsSighting } from './mdns-roster.js'
import type { MdnsPacket, MdnsRecord, MdnsRemote } from './mdns-socket.js'
import type { ListeningAddress } from './source.js'

export const MDNS_SERVICE_TYPE = '_syncropel._tcp.local'
export const SERVICES_META = '_services._dns-sd._udp.local'
/** The longest TXT value read (a did:key is 56 characters; a URL may be longer). */
const MAX_TXT_VALUE = 2048

const lower = (s: string) => s.toLowerCase()
export const sameName = (a: string, b: string) => lower(a) === lower(b)

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
