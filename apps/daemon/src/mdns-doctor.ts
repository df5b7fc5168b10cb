// `spl doctor`'s mDNS check (SPEC 8, 5.4): broadcasting without a route that covers
// 224.0.0.251 sends nothing (every announcement fails with ENETUNREACH). The table is the
// kernel's /proc/net/route of the daemon's own network namespace; parsing it is pure.
import { readFile } from 'node:fs/promises'
import { isMdnsSource, type MdnsStatus } from '@spl/discovery'
import type { DaemonContext } from './context.js'

export interface MdnsDoctorCheck {
  name: string
  status: 'pass' | 'warn' | 'fail'
  message: string
  fix?: string
}

const MDNS_GROUP = [224, 0, 0, 251] as const
const RTF_UP = 0x1

/** A 32-bit value as /proc/net/route prints addresses (host byte order, little-endian here). */
const asProcRoute = (octets: readonly number[]) => ((octets[3]! << 24) | (octets[2]! << 16) | (octets[1]! << 8) | octets[0]!) >>> 0

/** The route of a /proc/net/route table that 224.0.0.251 would leave by (the most specific up route), if any. */
export function multicastRoute(table: string): { iface: string; prefix: number; isDefault: boolean } | undefined {
  const group = asProcRoute(MDNS_GROUP)
  let best: { iface: string; prefix: number; isDefault: boolean } | undefined
  for (const line of table.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/)
    if (f.length < 8) continue
    const [iface, destHex, , flagsHex, , , , maskHex] = f
    const dest = Number.parseInt(destHex!, 16)
    const mask = Number.parseInt(maskHex!, 16)
    const flags = Number.parseInt(flagsHex!, 16)
    if (![dest, mask, flags].every(Number.isFinite) || !(flags & RTF_UP)) continue
    if ((group & mask) >>> 0 !== (dest & mask) >>> 0) continue
    const prefix = mask.toString(2).replace(/0/g, '').length
    if (!best || prefix > best.prefix) best = { iface: iface!, prefix, isDefault: prefix === 0 }
  }
  return best
}

/** The check, from the config's broadcast flag, the routing table (undefined: unreadable) and the source's state. */
export function mdnsRouteCheck(
  broadcast: boolean,
  table: string | undefined,
  status?: Pick<MdnsStatus, 'error'> | undefined,
  readError?: string | undefined,
): MdnsDoctorCheck | undefined {
  if (!broadcast) return undefined
  const name = 'mdns multicast route'
  const fix = 'add a route for multicast (ip route add 224.0.0.0/4 dev <interface>), or set [sync.discovery] mdns_broadcast = false'
  if (status?.error) {
    return {
      name,
      status: 'warn',
      message: `mdns_broadcast is on but mDNS is not working: ${status.error}`,
      fix: 'free UDP port 5353 (another mDNS responder?) and restart the daemon; see the daemon log',
    }
  }
  if (table === undefined) {
    return { name, status: 'warn', message: `mdns_broadcast is on; cannot read the routing table: ${readError ?? 'unknown error'}` }
  }
  const route = multicastRoute(table)
  if (!route) {
    return {
      name,
      status: 'warn',
      message: 'mdns_broadcast is on but no route covers 224.0.0.251: announcements cannot leave this host',
      fix,
    }
  }
  return {
    name,
    status: 'pass',
    message: `announcing via ${route.iface}${route.isDefault ? ' (the default route)' : ` (224.0.0.0/${route.prefix} route)`}`,
  }
}

/** Reads this namespace's routing table (Linux) and makes the check; undefined when broadcasting is off or not on Linux. */
export async function mdnsDoctorCheck(ctx: DaemonContext, routeFile = '/proc/net/route'): Promise<MdnsDoctorCheck | undefined> {
  const broadcast = ctx.cfg.sync.discovery.mdns_broadcast
  if (!broadcast || process.platform !== 'linux') return undefined
  const source = ctx.discovery.source('mdns')
  const status = isMdnsSource(source) ? source.status() : undefined
  try {
    return mdnsRouteCheck(broadcast, await readFile(routeFile, 'utf8'), status)
  } catch (err) {
    return mdnsRouteCheck(broadcast, undefined, status, (err as Error).message)
  }
}
