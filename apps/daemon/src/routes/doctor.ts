import { statfs } from 'node:fs/promises'
import { isLoopbackHost } from '@spl/transport'
import type { Hono } from 'hono'
import type { DaemonContext } from '../context.js'
import { mdnsDoctorCheck } from '../mdns-doctor.js'

/** One doctor check (SPEC 5.4). */
export interface DoctorCheck {
  name: string
  status: 'pass' | 'warn' | 'fail'
  message: string
  fix?: string
}

const SKEW_LIMIT_MS = 30_000
/** Free space under which doctor warns: 100 MiB, or 5 % of a filesystem smaller than 2 GiB. */
const LOW_DISK_BYTES = 100 * 1024 * 1024
const LOW_DISK_SHARE = 0.05

const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`

/** Free space of the filesystem that holds the home (fs.statfs), and the pairs a full disk stops. */
async function diskCheck(home: string, diskFullPairs: readonly string[]): Promise<DoctorCheck> {
  const fix = `free space on the disk of ${home} (df -h ${home}); pulls and writes resume by themselves within seconds`
  let free: number
  let size: number
  try {
    const s = await statfs(home)
    free = s.bavail * s.bsize
    size = s.blocks * s.bsize
  } catch (err) {
    return { name: 'disk space', status: 'warn', message: `cannot read the free space of ${home}: ${(err as Error).message}` }
  }
  const threshold = Math.min(LOW_DISK_BYTES, size * LOW_DISK_SHARE)
  if (diskFullPairs.length > 0) {
    return {
      name: 'disk space',
      status: 'fail',
      message: `DISK_FULL: ${diskFullPairs.length} pair(s) cannot store what they pull (${diskFullPairs.join(', ')}); ${mib(free)} free of ${mib(size)}`,
      fix,
    }
  }
  if (free < threshold) {
    return { name: 'disk space', status: 'warn', message: `${mib(free)} free of ${mib(size)} on the disk of ${home}`, fix }
  }
  return { name: 'disk space', status: 'pass', message: `${mib(free)} free of ${mib(size)}` }
}

/** The checks only the running daemon can make: bind host, pairs, rejections, database, clocks. */
/** Every relay this instance registered at answers for its mailbox (SPEC 10). */
async function relayCheck(ctx: DaemonContext): Promise<DoctorCheck> {
  const regs = ctx.relay.receiver.list()
  if (regs.length === 0) return { name: 'relays', status: 'pass', message: 'none registered' }
  const answers = await Promise.all(regs.map(async (r) => ({ url: r.url, error: await ctx.relay.receiver.probe(r.url) })))
  const bad = answers.filter((a) => a.error !== null)
  if (bad.length === 0) return { name: 'relays', status: 'pass', message: `${regs.length} relay(s) answer for this instance's mailbox` }
  return {
    name: 'relays',
    status: 'warn',
    message: bad.map((b) => `${b.url}: ${b.error}`).join('; '),
    fix: 'check that the relay runs (spl serve --relay) and is reachable; spl relay register <url> again if it lost the mailbox (RECEIVER_NOT_REGISTERED)',
  }
}

/** Peer links that are degraded or whose token renewal failed (SPEC 9.2). */
function linkCheck(ctx: DaemonContext): DoctorCheck {
  const links = ctx.federation.snapshot().filter((l) => l.state !== 'revoked')
  const trouble = links.filter((l) => l.state === 'degraded' || l.renewal_error)
  if (!trouble.length)
    return { name: 'peer links', status: 'pass', message: links.length ? `${links.length} link(s), none degraded` : 'none' }
  return {
    name: 'peer links',
    status: 'warn',
    message: trouble
      .map(
        (l) =>
          `${l.link_id} ${l.state}${l.renewal_error ? ` (token renewal failed: ${l.renewal_error.code}: ${l.renewal_error.message})` : ''}`,
      )
      .join('; '),
    fix: 'spl federation show <link> for the reason; spl federation refresh <link> renews the token once the peer answers',
  }
}

async function daemonChecks(ctx: DaemonContext): Promise<DoctorCheck[]> {
  const checks: DoctorCheck[] = []
  const pairs = ctx.engine.listPairs()
  const host = ctx.bindHost
  const loopback = isLoopbackHost(host)
  if (pairs.length > 0 && loopback) {
    checks.push({
      name: 'federation bind host',
      status: 'warn',
      message: `${pairs.length} sync pair(s) configured but daemon is bound to ${host}. Remote peers cannot reach this instance. Restart with \`spl serve --host 0.0.0.0 --daemon\`.`,
      fix: 'spl serve --stop && spl serve --host 0.0.0.0 --daemon',
    })
  } else {
    checks.push({
      name: 'federation bind host',
      status: 'pass',
      message: `bound to ${host}${pairs.length ? `, ${pairs.length} pair(s)` : ''}`,
    })
  }

  const failing = pairs.filter((p) => p.state === 'failing')
  checks.push(
    failing.length
      ? {
          name: 'failing pairs',
          status: 'warn',
          message: failing.map((p) => `${p.pair_id.slice(0, 8)} ${p.last_error?.code ?? 'UNKNOWN'}`).join(', '),
          fix: 'spl fleet sync status <pair_id> for the reason; spl fleet sync kick <pair_id> to retry now',
        }
      : { name: 'failing pairs', status: 'pass', message: 'none' },
  )

  checks.push(linkCheck(ctx))
  checks.push(await relayCheck(ctx))
  const diverged = pairs.filter((p) => (ctx.engine.lastAuditOf(p.pair_id)?.puller_lacks ?? 0) > 0)
  checks.push(
    diverged.length
      ? {
          name: 'audits',
          status: 'warn',
          message: `diverged: ${diverged.map((p) => `${p.pair_id.slice(0, 8)} lacks ${ctx.engine.lastAuditOf(p.pair_id)!.puller_lacks} record(s) its source serves`).join('; ')}`,
          fix: diverged.map((p) => `spl fleet sync audit ${p.pair_id.slice(0, 8)} --heal`).join(' && '),
        }
      : { name: 'audits', status: 'pass', message: 'no pair diverged from its source at its last audit' },
  )

  const polling = pairs.filter((p) => p.poll_only && p.mode === 'longpoll' && p.state !== 'stopped')
  checks.push(
    polling.length
      ? {
          name: 'long polls',
          status: 'warn',
          message: polling
            .map((p) => `${p.pair_id.slice(0, 8)} polls instead: ${p.notice?.message ?? 'the peer does not hold long polls'}`)
            .join('; '),
          fix: "check the peer's version and any proxy in front of it; spl fleet sync remove <pair_id> and add it again to retry long polls",
        }
      : { name: 'long polls', status: 'pass', message: 'every longpoll pair long-polls' },
  )

  checks.push(
    await diskCheck(
      ctx.home,
      failing.filter((p) => p.last_error?.code === 'DISK_FULL').map((p) => p.pair_id.slice(0, 8)),
    ),
  )

  const missing = new Set<string>()
  for (const p of pairs) {
    if (!p.totals.rejected['NAMESPACE_REJECTED']) continue
    for (const r of await ctx.engine.rejections(p.pair_id, 200)) {
      const m = /ancestor '([^']+)'/.exec(r.message)
      if (r.code === 'NAMESPACE_REJECTED' && m && ctx.registry.namespace(m[1]!)?.status !== 'active') missing.add(m[1]!)
    }
  }
  checks.push(
    missing.size
      ? {
          name: 'rejected namespaces',
          status: 'warn',
          message: `records were rejected in unregistered namespace(s): ${[...missing].join(', ')}`,
          fix:
            [...missing].map((ns) => `spl namespace create ${ns}`).join(' && ') +
            ' (the rejected records are taken in again by themselves)',
        }
      : { name: 'rejected namespaces', status: 'pass', message: 'no rejections for unregistered namespaces' },
  )

  const integrity = ctx.integrityCheck()
  checks.push(
    integrity === 'ok'
      ? { name: 'database integrity', status: 'pass', message: 'PRAGMA quick_check: ok' }
      : {
          name: 'database integrity',
          status: 'fail',
          message: `PRAGMA quick_check: ${integrity}`,
          fix: 'stop the daemon and restore spl.db from a backup',
        },
  )

  const skewed = pairs
    .map((p) => ({ p, skew: ctx.engine.skewOf(p.pair_id) }))
    .filter(({ skew }) => skew !== null && Math.abs(skew) > SKEW_LIMIT_MS)
  checks.push(
    skewed.length
      ? {
          name: 'clock skew',
          status: 'warn',
          message: skewed.map(({ p, skew }) => `${p.pair_id.slice(0, 8)} peer clock off by ${Math.round(skew! / 1000)} s`).join(', '),
          fix: 'enable NTP on both machines (SPL-Proof tolerates 30 s)',
        }
      : { name: 'clock skew', status: 'pass', message: 'paired peers within 30 s' },
  )
  // Broadcasting on mDNS without a multicast route (only when mdns_broadcast is on).
  const mdns = await mdnsDoctorCheck(ctx)
  if (mdns) checks.push(mdns)
  return checks
}

/** GET /v1/doctor: the checks only the running daemon can make. */
export function doctorRoutes(app: Hono, ctx: DaemonContext): void {
  app.get('/v1/doctor', async (c) => c.json({ object: 'doctor', checks: await daemonChecks(ctx) }))
}
