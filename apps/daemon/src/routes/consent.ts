import crypto from 'node:crypto'
import {
  assertNamespaceId,
  CONSENT_THREAD,
  GRANT_ID_RE,
  GrantNotFoundError,
  type GrantState,
  grantBody,
  grantInputSchema,
} from '@spl/consent'
import { isDidKey } from '@spl/identity'
import { InvalidRequestError, NotFoundError, readJson } from '@spl/transport'
import type { Hono } from 'hono'
import { z } from 'zod'
import type { DaemonContext } from '../context.js'

const bindSchema = z
  .object({
    did: z.string().refine(isDidKey, 'must be a did:key (did:key:z6Mk…)'),
    namespace: z.string(),
  })
  .strict()

function grantView(g: GrantState, now: number) {
  const expired = g.expires_at !== undefined && Date.parse(g.expires_at) <= now
  const { clock: _clock, ...rest } = g
  return { object: 'consent_grant', ...rest, status: g.revoked ? 'revoked' : expired ? 'expired' : 'active' }
}

/** Consent grants and caller bindings (SPEC 6.2, 6.4): LEARN records on th_consent signed here. */
export function consentRoutes(app: Hono, ctx: DaemonContext): void {
  const learn = (body: Record<string, unknown>) =>
    ctx.records.emit({ act: 'LEARN', thread: CONSENT_THREAD, body, parents: [], data_type: 'SCALAR' })

  app.get('/v1/consent/grants', (c) => {
    const ns = c.req.query('namespace')
    const all = c.req.query('all') === 'true'
    const now = Date.now()
    const data = ctx.registry
      .grants()
      .filter((g) => !ns || g.source_namespace === ns || g.target_namespace === ns)
      .map((g) => grantView(g, now))
      .filter((g) => all || g.status === 'active')
    return c.json({ object: 'list', data })
  })

  app.post('/v1/consent/grants', async (c) => {
    const input = await readJson(c, grantInputSchema)
    ctx.registry.assertUsable(input.source_namespace)
    if (input.expires_at && Date.parse(input.expires_at) <= Date.now()) {
      throw new InvalidRequestError('body.expires_at: is in the past', 'give a future ISO 8601 time, e.g. 2027-01-01T00:00:00Z')
    }
    const grantId = `cg_${crypto.randomBytes(6).toString('hex')}`
    await learn({ ...grantBody(input, grantId) })
    const grant = ctx.registry.grant(grantId)
    if (!grant) throw new Error(`grant ${grantId} was stored but not applied`)
    return c.json(grantView(grant, Date.now()), 201)
  })

  app.delete('/v1/consent/grants/:id', async (c) => {
    const id = c.req.param('id')
    if (!GRANT_ID_RE.test(id)) throw new InvalidRequestError('a grant id is cg_ followed by 12 hex characters', 'spl consent list')
    const grant = ctx.registry.grant(id)
    if (!grant) throw new GrantNotFoundError(id)
    if (!grant.revoked) await learn({ kind: 'core.consent.revoke.v1', grant_id: id })
    return c.json(grantView(ctx.registry.grant(id)!, Date.now()))
  })

  app.get('/v1/consent/bindings', (c) =>
    c.json({
      object: 'list',
      data: ctx.registry.bindings().map((b) => ({ object: 'consent_binding', ...b })),
    }),
  )

  app.post('/v1/consent/bindings', async (c) => {
    const { did, namespace } = await readJson(c, bindSchema)
    assertNamespaceId(namespace)
    if (ctx.registry.bindingOf(did) !== namespace) await learn({ kind: 'core.consent.bind.v1', did, bound_namespace: namespace })
    return c.json({ object: 'consent_binding', did, namespace }, 201)
  })

  app.delete('/v1/consent/bindings/:did', async (c) => {
    const did = c.req.param('did')
    if (!isDidKey(did)) throw new InvalidRequestError('not a did:key')
    if (ctx.registry.bindingOf(did) === null) throw new NotFoundError(`binding for ${did}`, 'spl consent list --bindings')
    await learn({ kind: 'core.consent.unbind.v1', did })
    return c.json({ object: 'consent_binding', did, namespace: null })
  })
}
