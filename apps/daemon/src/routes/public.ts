import { MANIFEST_PATH } from '@spl/discovery'
import type { Hono } from 'hono'
import type { DaemonContext } from '../context.js'
import { openApiDocument } from '../openapi.js'

/** Doors anyone may call: health, identity, the manifest, the API description. */
export function publicRoutes(app: Hono, ctx: DaemonContext): void {
  app.get('/health', (c) =>
    c.json({
      status: 'ok',
      did: ctx.keypair.did,
      version: ctx.version,
      uptime_s: Math.floor((Date.now() - ctx.startedAt) / 1000),
    }),
  )
  app.get('/v1/identity', (c) =>
    c.json({
      object: 'identity',
      did: ctx.keypair.did,
      namespace: ctx.cfg.identity.namespace,
      handle: ctx.cfg.identity.handle ?? null,
      method: 'key',
      version: ctx.version,
    }),
  )
  app.get('/openapi.json', (c) => c.json(openApiDocument(ctx.version)))
  // The signed manifest (SPEC 8): who answers here, proven by its key.
  app.get(MANIFEST_PATH, (c) => c.json(ctx.manifests.forOrigin(new URL(c.req.url).origin)))
}
