import { DISCOVERY_METHODS, type DiscoveredPeer, type DiscoveryMethod, isMdnsSource } from '@spl/discovery'
import { parseWith, searchParamsObject } from '@spl/transport'
import type { Hono } from 'hono'
import { z } from 'zod'
import type { DaemonContext } from '../context.js'

const methodList = z
  .string()
  .max(200)
  .transform((s) => s.split(',').map((m) => m.trim()))
  .pipe(z.array(z.enum(DISCOVERY_METHODS)).min(1))

const discoverQuerySchema = z
  .object({
    method: methodList.optional(),
    domain: z.string().min(1).max(2000).optional(),
    namespace: z.string().min(1).max(200).optional(),
    directory: z
      .url({ protocol: /^https?$/ })
      .max(2000)
      .optional(),
    did: z.string().min(1).max(2000).optional(),
    timeout_ms: z.coerce.number().int().min(0).max(30_000).default(1500),
  })
  .strict()

/** A discovered peer with what this daemon already does with it. */
function withPairs(ctx: DaemonContext, peer: DiscoveredPeer) {
  const pairs = ctx.engine.listPairs().filter((p) => p.peer_did === peer.did)
  return { object: 'discovered_peer', ...peer, paired: pairs.length > 0, pair_ids: pairs.map((p) => p.pair_id) }
}

/** The discovery roster and queries (admin, SPEC 8). Discovery never creates a pair. */
export function discoveryRoutes(app: Hono, ctx: DaemonContext): void {
  app.get('/v1/discovery/peers', async (c) => {
    const q = parseWith(discoverQuerySchema, searchParamsObject(new URL(c.req.url).searchParams), 'the query')
    // Looking up a did:web: resolve that DID's document (its did:key is the peer's DID).
    if (q.did?.startsWith('did:web:') && q.domain === undefined) q.domain = q.did
    // "Try all methods" asks the ones that can answer without more input: did:web needs a domain,
    // the directory a URL (given or configured). Named with --method, they say what they lack.
    const methods: readonly DiscoveryMethod[] =
      q.method ??
      ctx.discovery.methods.filter(
        (m) =>
          (m !== 'did-web' || q.domain !== undefined) &&
          (m !== 'did-sync' || q.directory !== undefined || ctx.cfg.sync.discovery.directory_url !== ''),
      )
    const result = await ctx.discovery.discover(
      { domain: q.domain, namespace: q.namespace, directory: q.directory, timeoutMs: q.timeout_ms, signal: c.req.raw.signal },
      methods,
    )
    const peers = result.peers
      .filter((p) => q.did === undefined || p.did === q.did || p.aka?.includes(q.did) || p.handle === q.did)
      .map((p) => withPairs(ctx, p))
    return c.json({ object: 'discovery_result', methods, peers, failures: result.failures })
  })

  // The mDNS roster as the listener keeps it (no query sent), each entry merged and verified like any sighting.
  app.get('/v1/discovery/mdns', async (c) => {
    parseWith(z.object({}).strict(), searchParamsObject(new URL(c.req.url).searchParams), 'the query')
    const source = ctx.discovery.source('mdns')
    if (!isMdnsSource(source)) return c.json({ object: 'mdns_roster', listen: false, broadcast: false, peers: [] })
    const peers = (await ctx.discovery.merge(source.roster(), c.req.raw.signal)).map((p) => withPairs(ctx, p))
    return c.json({ object: 'mdns_roster', ...source.status(), peers })
  })

  app.post('/v1/discovery/flush', (c) => {
    ctx.discovery.flush()
    return c.json({ object: 'discovery_flush', flushed: true })
  })
}
