import { SplError } from '@spl/identity'
import { THREAD_RE } from '@spl/records'
import { pairInputSchema, RETRYABLE_REJECTIONS } from '@spl/sync-engine'
import { isLoopbackHost, NotFoundError, PeerRefusedError, PullError, readJson, SplClient } from '@spl/transport'
import type { Hono } from 'hono'
import { stream } from 'hono/streaming'
import { z } from 'zod'
import type { DaemonContext } from '../context.js'
import { pairStats, syncHealth } from '../health.js'

const auditInput = z.object({ heal: z.boolean().default(false) }).strict()

const onceSchema = z.object({ peer: z.string().min(1).max(2000), thread: z.string().regex(THREAD_RE) }).strict()

/** The peer door (change feed) and the admin doors for pairs, stats and health. */
export function syncRoutes(app: Hono, ctx: DaemonContext): void {
  app.post('/v1/sync/pairs', async (c) => {
    const input = await readJson(c, pairInputSchema)
    const { pair, created } = await ctx.engine.addPair(input)
    const body: Record<string, unknown> = { object: 'sync_pair', ...pair }
    if (isLoopbackHost(ctx.bindHost) && !isLoopbackHost(new URL(pair.peer_url).hostname)) {
      body['warning'] =
        `this daemon is bound to ${ctx.bindHost}, so ${new URL(pair.peer_url).host} cannot reach it for the reverse direction. ` +
        'Remote peers cannot reach this instance. Restart with `spl serve --host 0.0.0.0 --daemon`.'
    }
    return c.json(body, created ? 201 : 200)
  })

  app.get('/v1/sync/pairs', (c) => {
    const all = c.req.query('all') === 'true'
    return c.json({
      object: 'list',
      data: ctx.engine.listPairs({ all }).map((p) => ({ object: 'sync_pair', ...p })),
    })
  })

  app.get('/v1/sync/pairs/:id', (c) => c.json({ object: 'sync_pair', ...ctx.engine.getPair(c.req.param('id')) }))

  app.delete('/v1/sync/pairs/:id', async (c) => c.json({ object: 'sync_pair', ...(await ctx.engine.removePair(c.req.param('id'))) }))

  for (const action of ['pause', 'resume', 'kick', 'reset'] as const) {
    app.post(`/v1/sync/pairs/:id/${action}`, async (c) => {
      const id = c.req.param('id')
      const pair =
        action === 'pause'
          ? await ctx.engine.pausePair(id)
          : action === 'resume'
            ? await ctx.engine.resumePair(id)
            : action === 'kick'
              ? await ctx.engine.kickPair(id)
              : await ctx.engine.resetPair(id)
      return c.json({ object: 'sync_pair', ...pair })
    })
  }

  // SPEC 13: reconcile the pair's thread with its source; heal pulls what is missing here.
  app.post('/v1/sync/pairs/:id/audit', async (c) => {
    const { heal } = await readJson(c, auditInput)
    const pair = ctx.engine.getPair(c.req.param('id'))
    try {
      return c.json(await ctx.engine.audit(pair.pair_id, { heal }))
    } catch (err) {
      // The source's own refusal keeps its status and code; not reaching it is PEER_UNREACHABLE, as for spl sync.
      if (err instanceof PeerRefusedError || !(err instanceof PullError)) throw err
      throw new SplError(
        'PEER_UNREACHABLE',
        `cannot audit ${pair.pair_id.slice(0, 8)} with ${pair.peer_url}: ${err.code}: ${err.message}`,
        {
          status: 502,
          fix: `check that the source runs and answers at ${pair.peer_url} (spl fleet sync status ${pair.pair_id.slice(0, 8)})`,
        },
      )
    }
  })

  app.get('/v1/sync/pairs/:id/stats', (c) => c.json(pairStats(ctx, ctx.engine.getPair(c.req.param('id')))))

  app.get('/v1/sync/pairs/:id/rejections', async (c) => {
    const pair = ctx.engine.getPair(c.req.param('id'))
    // Each says whether a fix here undoes it (waiting, with the fix) or it is final (forged, equivocating, malformed).
    const data = (await ctx.engine.rejections(pair.pair_id, 200)).map((r) => {
      const final = !RETRYABLE_REJECTIONS.has(r.code)
      const ns = /ancestor '([^']+)'/.exec(r.message)?.[1]
      return { ...r, final, ...(final ? {} : { fix: ns ? `spl namespace create ${ns}` : 'fix the cause named in the message' }) }
    })
    return c.json({ object: 'list', pair_id: pair.pair_id, totals: pair.totals.rejected, data })
  })

  app.get('/v1/sync/health', (c) => c.json(syncHealth(ctx)))

  /** `spl sync <thread> from <peer>`: one catch-up pull, progress streamed as JSON lines. */
  app.post('/v1/sync/once', async (c) => {
    const { peer, thread } = await readJson(c, onceSchema)
    const target = await resolvePeer(ctx, peer)
    return stream(c, async (s) => {
      c.header('content-type', 'application/x-ndjson')
      try {
        const result = await ctx.engine.pullOnce(target, thread, (p) => {
          void s.write(`${JSON.stringify({ object: 'sync_progress', ...p })}\n`)
        })
        await s.write(
          `${JSON.stringify({ object: 'sync_result', peer_did: target.peerDid, peer_url: target.peerUrl, thread, ...result })}\n`,
        )
      } catch (err) {
        const e = SplError.from(err)
        if (e.code === 'INTERNAL') ctx.logger.error({ err, thread }, 'sync once failed')
        await s.write(`${JSON.stringify(e.toJSON())}\n`)
      }
    })
  })
}

/** Finds a peer's DID and URL from a link id, DID, handle or URL (links, pairs, static config, or the URL itself). */
async function resolvePeer(ctx: DaemonContext, ref: string): Promise<{ peerDid: string; peerUrl: string }> {
  const bare = ref.replace(/\/+$/, '')
  const link = (await ctx.federation.links()).find(
    (l) => l.state !== 'revoked' && (l.link_id === ref || l.peer_did === ref || l.peer_url === bare),
  )
  if (link) return { peerDid: link.peer_did, peerUrl: link.peer_url }
  if (/^https?:\/\//.test(ref)) {
    let identity: { did?: unknown }
    try {
      identity = await new SplClient(ref, undefined, 10_000).get<{ did?: unknown }>('/v1/identity')
    } catch (err) {
      const why = SplError.from(err, { message: 'the request failed' }).message
      throw new SplError('PEER_UNREACHABLE', `cannot read ${ref}/v1/identity: ${why}`, {
        status: 502,
        fix: 'check the URL and that the peer daemon is running',
      })
    }
    if (typeof identity.did !== 'string')
      throw new SplError('PARSE_ERROR', `${ref} is not an spl daemon (no did in /v1/identity).`, {
        status: 502,
      })
    return { peerDid: identity.did, peerUrl: ref }
  }
  const fromPairs = ctx.engine.listPairs().find((p) => p.peer_did === ref)
  if (fromPairs) return { peerDid: fromPairs.peer_did, peerUrl: fromPairs.peer_url }
  const fromStatic = ctx.cfg.sync.discovery.static.find((s) => s.did === ref || s.handle === ref)
  if (fromStatic) return { peerDid: fromStatic.did, peerUrl: fromStatic.url }
  throw new NotFoundError(`peer '${ref.slice(0, 100)}'`, 'give the peer URL instead (spl sync <thread> from http://host:port)')
}
