import { isLoopbackHost } from '@spl/transport'
import type { Hono } from 'hono'
import type { DaemonContext } from '../context.js'

/** One doctor check (SPEC 5.4). */
export interface DoctorCheck {
  name: string
  status: 'pass' | 'warn' | 'fail'
  message: string
  fix?: string
}

const SKEW_LIMIT_MS = 30_000

/** The checks only the running daemon can make: bind host, pairs, rejections, database, clocks. */
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
          fix: [...missing].map((ns) => `spl namespace create ${ns}`).join(' && ') + ' && spl fleet sync reset <pair_id>',
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
  return checks
}

/** GET /v1/doctor: the checks only the running daemon can make. */
export function doctorRoutes(app: Hono, ctx: DaemonContext): void {
  app.get('/v1/doctor', async (c) => c.json({ object: 'doctor', checks: await daemonChecks(ctx) }))
}
