import { DID_WEB_PATH, didWebDocument, MANIFEST_PATH } from '@spl/discovery'
import { SplError } from '@spl/identity'
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
  // The did:web document (SPEC 8) of identity.web_domain; its endpoint is advertise_url, else the URL asked.
  app.get(DID_WEB_PATH, (c) => {
    const domain = ctx.cfg.identity.web_domain
    if (!domain) {
      throw new SplError('DID_NOT_FOUND', 'this daemon publishes no did:web document', {
        status: 404,
        fix: 'set web_domain = "DOMAIN" under [identity] in config.toml and restart the daemon',
      })
    }
    const endpoint = ctx.cfg.sync.discovery.advertise_url || new URL(c.req.url).origin
    try {
      return c.json(didWebDocument({ keypair: ctx.keypair, domain, endpoint }))
    } catch (err) {
      // A web_domain that is no domain is this daemon's configuration, not the caller's fault.
      const e = SplError.from(err)
      throw new SplError('CONFIG_INVALID', `identity.web_domain: ${e.message}`, { status: 500, fix: e.fix, cause: err })
    }
  })
}
