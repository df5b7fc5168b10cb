import { getConnInfo } from '@hono/node-server/conninfo'
import { PayloadTooLargeError } from '@spl/identity'
import { RECONCILE_PATH } from '@spl/sync-engine'
import { adminAuth, errorHandler, errorResponse, jsonBodiesOnly, MAX_REQUEST_BODY, notFoundHandler, WATCH_PATH } from '@spl/transport'
import { type Context, Hono } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import { routePath } from 'hono/route'
import type { DaemonContext } from './context.js'
import { consentRoutes } from './routes/consent.js'
import { directoryRoutes } from './routes/directory.js'
import { discoveryRoutes } from './routes/discovery.js'
import { doctorRoutes } from './routes/doctor.js'
import { federationPeerRoutes, federationRoutes } from './routes/federation.js'
import { namespaceRoutes } from './routes/namespaces.js'
import { publicRoutes } from './routes/public.js'
import { recordRoutes } from './routes/records.js'
import { relayPeerRoutes, relayRoutes } from './routes/relay.js'
import { syncRoutes } from './routes/sync.js'
import { uiAdminRoutes, uiRoutes } from './routes/ui.js'

function remoteAddress(c: Context): string | undefined {
  try {
    return getConnInfo(c).remote.address
  } catch {
    return undefined // app.request() in tests has no socket
  }
}

/**
 * The names that a `Host` header may use for this daemon besides the loopback names (SPEC 7.1):
 * the bound host (unless a wildcard) and the host of `[sync.discovery] advertise_url`.
 */
export function daemonHostnames(ctx: Pick<DaemonContext, 'cfg'>): string[] {
  const names: string[] = []
  const bound = ctx.cfg.server.host
  if (bound !== '0.0.0.0' && bound !== '::' && bound !== '') names.push(bound)
  const advertise = ctx.cfg.sync.discovery.advertise_url
  if (advertise) {
    try {
      names.push(new URL(advertise).hostname)
    } catch {
      // the config schema checks the URL; nothing to add otherwise
    }
  }
  return names
}

/** A reconcile round is at most 512 ranges and 8,192 ids: 1 MiB is room enough. */
const reconcileLimit = bodyLimit({ maxSize: 1024 * 1024, onError: (c) => errorResponse(c, new PayloadTooLargeError()) })

/** A watch names at most 1,000 threads with their cursors: 1 MiB is room enough. */
const watchLimit = bodyLimit({ maxSize: 1024 * 1024, onError: (c) => errorResponse(c, new PayloadTooLargeError()) })

/** Builds the daemon's HTTP app: open doors, the peer door, then admin doors behind the token. */
export function createApp(ctx: DaemonContext): Hono {
  const app = new Hono()
  app.onError(errorHandler((err, c) => ctx.logger.error({ err, method: c.req.method, path: c.req.path }, 'unhandled error')))
  app.notFound(notFoundHandler)
  app.use('*', bodyLimit({ maxSize: MAX_REQUEST_BODY, onError: (c) => errorResponse(c, new PayloadTooLargeError()) }))
  app.use('*', async (c, next) => {
    const end = ctx.metrics.httpDuration.startTimer()
    await next()
    end({ method: c.req.method, route: routePath(c, -1) || 'unmatched', status: String(c.res.status) })
  })
  // On PostgreSQL: a relay write tells the other replicas (the federation and the records tell them themselves).
  if (ctx.replicas) app.use('*', ctx.replicas.middleware())
  publicRoutes(app, ctx)
  // The did:sync directory's doors are open: each write is signed by the DID it is about.
  directoryRoutes(app, ctx)
  // The web console (/ui): its page is open, its data calls need the console's session (routes/ui.ts).
  uiRoutes(app, ctx)

  // The peer door authenticates with SPL-Proof, not the admin token.
  app.get('/v1/sync/changes', async (c) => {
    const answer = await ctx.feed.handle(
      new URL(c.req.url),
      { proof: c.req.header('spl-proof'), authorization: c.req.header('authorization') },
      c.req.raw.signal,
    )
    return c.body(answer.body, answer.status as 200, answer.headers)
  })
  // The reconcile door of audits, proof-checked like the feed (SPEC 13).
  app.post(RECONCILE_PATH, reconcileLimit, async (c) => {
    const answer = await ctx.reconcile.handle(
      new URL(c.req.url),
      { proof: c.req.header('spl-proof'), authorization: c.req.header('authorization') },
      await c.req.text(),
    )
    return c.body(answer.body, answer.status as 200, answer.headers)
  })
  // The per-peer watch: one long poll for many threads, proof-checked and signed like the feed.
  app.post(WATCH_PATH, watchLimit, async (c) => {
    const answer = await ctx.watch.handle(
      new URL(c.req.url),
      { proof: c.req.header('spl-proof'), authorization: c.req.header('authorization') },
      await c.req.text(),
      c.req.raw.signal,
    )
    return c.body(answer.body, answer.status as 200, answer.headers)
  })
  // The pairing handshake's doors are open but proof-checked (SPEC 7.1, 9.1).
  federationPeerRoutes(app, ctx)
  // A relay's mailbox doors: open, proof-checked, answers signed (SPEC 10).
  relayPeerRoutes(app, ctx)

  const admin = adminAuth({
    token: ctx.adminToken,
    trustLoopback: ctx.cfg.api.trust_loopback,
    remoteAddress,
    hostnames: daemonHostnames(ctx),
  })
  app.use('/v1/*', admin)
  app.use('/metrics', admin)
  // Admin doors take JSON bodies only (415 otherwise): no form or text/plain post from a page.
  app.use('/v1/*', jsonBodiesOnly())
  recordRoutes(app, ctx)
  namespaceRoutes(app, ctx)
  syncRoutes(app, ctx)
  consentRoutes(app, ctx)
  doctorRoutes(app, ctx)
  discoveryRoutes(app, ctx)
  federationRoutes(app, ctx)
  relayRoutes(app, ctx)
  uiAdminRoutes(app, ctx)
  app.get('/metrics', async (c) => c.body(await ctx.metrics.registry.metrics(), 200, { 'content-type': ctx.metrics.registry.contentType }))
  return app
}
