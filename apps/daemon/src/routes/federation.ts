import {
  LINK_ID_RE,
  namespaceMapSchema,
  PAIR_PATH,
  pairRequestSchema,
  peerRevokeSchema,
  pollRequestSchema,
  renewRequestSchema,
} from '@spl/federation'
import { isDidKey, SplError } from '@spl/identity'
import { THREAD_RE } from '@spl/records'
import { InvalidRequestError, readJson } from '@spl/transport'
import type { Context, Hono } from 'hono'
import { z } from 'zod'
import { durationMs } from '../config.js'
import type { DaemonContext } from '../context.js'
import { selfUrlFor } from '../federation.js'
import { peerDoor } from './peer-door.js'

const threads = z.array(z.string().regex(THREAD_RE, 'a thread id (th_…)')).max(100).default([])

const pairInput = z
  .object({
    peer_url: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL such as http://10.0.0.5:9250' }).max(2000),
    threads,
    namespace_map: namespaceMapSchema.default([]),
    invite: z.string().min(1).max(100).optional(),
  })
  .strict()

const inviteInput = z.object({ threads, namespace_map: namespaceMapSchema.default([]), expires: z.string().max(20).optional() }).strict()

const blockInput = z.object({ did: z.string().refine(isDidKey, 'must be a did:key (did:key:z6Mk…)') }).strict()

/** The port this daemon listens on, as the (admin) caller reached it. */
const portOf = (c: Context) => Number(new URL(c.req.url).port) || 80

function linkIdParam(c: Context): string {
  const id = c.req.param('id') ?? ''
  if (!LINK_ID_RE.test(id)) throw new InvalidRequestError('a link id is fed_ followed by 16 hex characters', 'spl federation list')
  return id
}

/** The pairing handshake's doors: open, but every one checks an SPL-Proof (SPEC 7.1, 9.1). */
export function federationPeerRoutes(app: Hono, ctx: DaemonContext): void {
  app.post(
    PAIR_PATH,
    peerDoor(
      ctx,
      async (c, caller) => ctx.federation.handlePairRequest(caller, await readJson(c, pairRequestSchema), new URL(c.req.url).origin),
      true,
    ),
  )
  app.post(
    '/v1/federation/pair/:id/poll',
    peerDoor(ctx, async (c, caller) => ctx.federation.handlePoll(caller, linkIdParam(c), (await readJson(c, pollRequestSchema)).nonce)),
  )
  app.post(
    '/v1/federation/links/:id/revoked',
    peerDoor(ctx, async (c, caller) => {
      await readJson(c, peerRevokeSchema)
      return { status: 200, body: await ctx.federation.handlePeerRevoked(caller, linkIdParam(c)) }
    }),
  )
  app.post(
    '/v1/federation/links/:id/renew',
    peerDoor(ctx, async (c, caller) => {
      await readJson(c, renewRequestSchema)
      return { status: 200, body: await ctx.federation.handleRenew(caller, linkIdParam(c)) }
    }),
  )
}

/** The operator's federation doors (admin): pair, links, invites, requests, the blocklist. */
export function federationRoutes(app: Hono, ctx: DaemonContext): void {
  const f = ctx.federation
  app.post('/v1/federation/links', async (c) => {
    const input = await readJson(c, pairInput)
    const selfUrl = await selfUrlFor(input.peer_url, ctx.cfg, portOf(c))
    const outcome = await f.pair({
      peerUrl: input.peer_url,
      selfUrl,
      threads: input.threads,
      map: input.namespace_map,
      invite: input.invite,
    })
    return c.json({ object: 'federation_pair_outcome', ...outcome }, outcome.outcome === 'linked' ? 201 : 200)
  })
  app.get('/v1/federation/links', async (c) => c.json({ object: 'list', data: await f.links() }))
  app.get('/v1/federation/links/:ref', async (c) => c.json(f.view(await f.find(c.req.param('ref')))))
  app.post('/v1/federation/links/:id/poll', async (c) => c.json({ object: 'federation_pair_outcome', ...(await f.poll(linkIdParam(c))) }))
  app.post('/v1/federation/links/:ref/pause', async (c) => c.json(await f.pause(c.req.param('ref'))))
  app.post('/v1/federation/links/:ref/resume', async (c) => c.json(await f.resume(c.req.param('ref'))))
  app.post('/v1/federation/links/:ref/refresh', async (c) => c.json(await f.refresh(c.req.param('ref'))))
  app.post('/v1/federation/links/:ref/revoke', async (c) => {
    const { link, notified, notice } = await f.revoke(c.req.param('ref'))
    return c.json({ ...link, notified, ...(notice ? { notice } : {}) })
  })

  app.post('/v1/federation/invites', async (c) => {
    const input = await readJson(c, inviteInput)
    const expiresMs = input.expires === undefined ? undefined : durationMs(input.expires)
    if (input.expires !== undefined && expiresMs === undefined) {
      throw new SplError('INVALID_DURATION', `expires '${input.expires}' is not a duration`, {
        fix: '--expires 24h (500ms, 10s, 30m, 24h, 7d)',
      })
    }
    const invite = await f.invite({ threads: input.threads, map: input.namespace_map, expiresMs })
    const url = ctx.cfg.sync.discovery.advertise_url || (await selfUrlFor('http://192.0.2.1:9', ctx.cfg, portOf(c)))
    const flags = [
      ...input.threads.map((t) => `--thread ${t}`),
      // The other side's --map is this side's mapping turned round.
      ...input.namespace_map.map((m) => `--map ${m.peer}:${m.local}`),
    ]
    const command = ['spl federation pair', url, ...flags, '--invite', invite.code].join(' ')
    return c.json({ object: 'federation_invite', ...invite, command }, 201)
  })

  app.get('/v1/federation/requests', async (c) =>
    c.json({
      object: 'list',
      data: (await f.requests()).map(({ token_for_responder: _t, answer_token: _a, nonce: _n, ...r }) => ({
        object: 'federation_request',
        ...r,
      })),
    }),
  )
  app.post('/v1/federation/requests/:id/approve', async (c) => c.json(await f.approve(linkIdParam(c))))
  app.post('/v1/federation/requests/:id/reject', async (c) => {
    const { token_for_responder: _t, answer_token: _a, nonce: _n, ...r } = await f.reject(linkIdParam(c))
    return c.json({ object: 'federation_request', ...r })
  })

  app.get('/v1/federation/blocklist', async (c) => c.json({ object: 'list', data: await f.blocked() }))
  app.post('/v1/federation/blocklist', async (c) => {
    const { did } = await readJson(c, blockInput)
    await f.block(did)
    return c.json({ object: 'federation_block', did, blocked: true }, 201)
  })
  app.delete('/v1/federation/blocklist/:did', async (c) => {
    const did = c.req.param('did')
    if (!(await f.unblock(did)))
      throw new SplError('NOT_FOUND', `${did.slice(0, 120)} is not blocked.`, { status: 404, fix: 'spl federation blocklist' })
    return c.json({ object: 'federation_block', did, blocked: false })
  })
}
