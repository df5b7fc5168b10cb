import { fetchVerifiedManifest } from '@spl/discovery'
import { isDidKey, SplError } from '@spl/identity'
import { ANY_RECEIVER, MAX_DEPOSIT_BYTES, MailboxError, type Mailboxes } from '@spl/sync-engine'
import { InvalidRequestError, readJson } from '@spl/transport'
import type { Context, Hono } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import { z } from 'zod'
import type { DaemonContext } from '../context.js'
import { peerDoor } from './peer-door.js'

const didSchema = z.string().refine(isDidKey, 'must be a did:key (did:key:z6Mk…)')
const relayUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL such as http://relay.example:9300' }).max(2000)

const depositBody = z.object({ sealed: z.string() }).strict()
const ackBody = z.object({ ids: z.array(z.string().max(100)).max(1000) }).strict()
const receiveQuery = z.object({
  limit: z.coerce.number().int().min(0).max(1000).default(50),
  max_bytes: z.coerce
    .number()
    .int()
    .min(1)
    .max(64 * 1024 * 1024)
    .default(8 * 1024 * 1024),
})
const registrationInput = z.object({ url: relayUrl }).strict()
const routeInput = z.object({ url: relayUrl, for_peer: didSchema.optional() }).strict()

/** The mailbox's DID from the path (a did:key) — the receiver it belongs to. */
function mailboxDid(c: Context): string {
  const did = c.req.param('did') ?? ''
  if (!isDidKey(did)) throw new InvalidRequestError('the mailbox is named by a did:key: /v1/mailbox/did:key:z6Mk…')
  return did
}

function relayDisabled(): MailboxError {
  return new MailboxError('RELAY_DISABLED', 'this daemon is not a relay.', {
    status: 404,
    fix: 'use a daemon started with spl serve --relay (or [relay] enabled = true)',
  })
}

/** Only the receiver itself opens, empties or closes its mailbox. */
function ownMailbox(c: Context, caller: string): string {
  const did = mailboxDid(c)
  if (caller !== did) {
    throw new MailboxError('NOT_YOUR_MAILBOX', `the request is signed by ${caller.slice(0, 100)}, not by the mailbox's DID.`, {
      status: 401,
      fix: 'sign the request (SPL-Proof) with the key of the DID the mailbox is for',
    })
  }
  return did
}

const retryAfter = (e: SplError) =>
  e instanceof MailboxError && e.retryAfterS !== undefined ? { 'retry-after': String(e.retryAfterS) } : undefined

/** A relay's open doors (SPEC 10): every one checks an SPL-Proof and signs its answer. */
export function relayPeerRoutes(app: Hono, ctx: DaemonContext): void {
  const mailboxes = (): Mailboxes => {
    if (!ctx.relay.mailboxes) throw relayDisabled()
    return ctx.relay.mailboxes
  }
  // A deposit is at most 1 MiB; its JSON wrapper gets a little room, and nothing more is read.
  const depositLimit = bodyLimit({
    maxSize: MAX_DEPOSIT_BYTES + 1024,
    onError: () => {
      ctx.relay.mailboxes?.countRefusal('DEPOSIT_TOO_LARGE')
      throw new MailboxError('DEPOSIT_TOO_LARGE', `a deposit is at most ${MAX_DEPOSIT_BYTES} bytes.`, {
        status: 413,
        fix: 'split the records over several deposits',
      })
    },
  })

  app.post(
    '/v1/mailbox/:did/register',
    peerDoor(ctx, async (c, caller) => {
      const did = ownMailbox(c, caller)
      const r = await mailboxes().register(did)
      return { status: r.created ? 201 : 200, body: { object: 'mailbox', did, registered_at: r.registered_at, created: r.created } }
    }),
  )
  app.delete(
    '/v1/mailbox/:did',
    peerDoor(ctx, async (c, caller) => {
      const did = ownMailbox(c, caller)
      const r = await mailboxes().unregister(did)
      return { status: 200, body: { object: 'mailbox', did, removed: r.removed, dropped: r.dropped } }
    }),
  )
  app.post(
    '/v1/mailbox/:did',
    depositLimit,
    peerDoor(
      ctx,
      async (c, sender) => {
        const receiver = mailboxDid(c)
        const { sealed } = await readJson(c, depositBody)
        const r = await mailboxes().deposit(sender, receiver, sealed)
        return { status: 202, body: { object: 'deposit', id: r.id, waiting: r.waiting, expires_at: r.expires_at } }
      },
      false,
      retryAfter,
    ),
  )
  app.get(
    '/v1/mailbox/:did/receive',
    peerDoor(ctx, async (c, caller) => {
      const did = ownMailbox(c, caller)
      const q = receiveQuery.safeParse(c.req.query())
      if (!q.success) throw new InvalidRequestError(`query.${String(q.error.issues[0]?.path[0] ?? 'limit')}: ${q.error.issues[0]?.message}`)
      const r = await mailboxes().receive(did, q.data.limit, q.data.max_bytes)
      return { status: 200, body: { object: 'list', data: r.deposits, has_more: r.has_more } }
    }),
  )
  app.post(
    '/v1/mailbox/:did/ack',
    peerDoor(ctx, async (c, caller) => {
      const did = ownMailbox(c, caller)
      const { ids } = await readJson(c, ackBody)
      return { status: 200, body: { object: 'ack', acked: await mailboxes().ack(did, ids) } }
    }),
  )
}

/** The relay as a whole, for `spl status`, `spl relay …` and /metrics. */
export async function relaySummary(ctx: DaemonContext) {
  const r = ctx.relay
  return {
    object: 'relay' as const,
    enabled: r.mailboxes !== undefined,
    mailboxes: r.mailboxes ? { depth: await r.mailboxes.depth(), ...structuredClone(r.mailboxes.counters) } : null,
    receiver: { registrations: r.receiver.list(), ...structuredClone(r.receiver.counters) },
    depositor: { routes: r.routes.list(), ...structuredClone(r.depositor.counters) },
  }
}

/** Admin doors: registrations at relays, the sender's routes, and this relay's mailboxes. */
export function relayRoutes(app: Hono, ctx: DaemonContext): void {
  app.get('/v1/relay', async (c) => c.json(await relaySummary(ctx)))

  app.get('/v1/relay/mailboxes', async (c) => {
    if (!ctx.relay.mailboxes) throw relayDisabled()
    return c.json({ object: 'list', data: await ctx.relay.mailboxes.list() })
  })

  app.get('/v1/relay/registrations', (c) => c.json({ object: 'list', data: ctx.relay.receiver.list() }))

  app.post('/v1/relay/registrations', async (c) => {
    const { url } = await readJson(c, registrationInput)
    const base = url.replace(/\/+$/, '')
    // Who the relay is: its signed manifest (a relay is an spl daemon); its answers must be signed by that DID.
    const { did } = await fetchVerifiedManifest(base, { timeoutMs: 10_000 })
    if (did === ctx.keypair.did) {
      throw new InvalidRequestError('that URL is this daemon itself', 'register at another daemon started with spl serve --relay')
    }
    const r = await ctx.relay.receiver.register({ url: base, did })
    return c.json({ object: 'relay_registration', url: base, relay_did: did, created: r.created }, r.created ? 201 : 200)
  })

  app.delete('/v1/relay/registrations', async (c) => {
    const url = (c.req.query('url') ?? '').replace(/\/+$/, '')
    const r = await ctx.relay.receiver.unregister(url)
    if (!r.removed) {
      throw new SplError('NOT_FOUND', `this daemon is not registered at ${url.slice(0, 200) || '(no url)'}.`, {
        status: 404,
        fix: 'spl relay list',
      })
    }
    return c.json({ object: 'relay_registration', url, removed: true, relay_error: r.relay_error })
  })

  app.get('/v1/relay/routes', (c) => c.json({ object: 'list', data: ctx.relay.routes.list() }))

  app.post('/v1/relay/routes', async (c) => {
    const { url, for_peer } = await readJson(c, routeInput)
    const base = url.replace(/\/+$/, '')
    const { did } = await fetchVerifiedManifest(base, { timeoutMs: 10_000 })
    await ctx.relay.routes.set({ url: base, did }, for_peer ?? ANY_RECEIVER, Date.now())
    return c.json({ object: 'relay_route', url: base, relay_did: did, receiver: for_peer ?? ANY_RECEIVER }, 201)
  })

  app.delete('/v1/relay/routes', async (c) => {
    const url = (c.req.query('url') ?? '').replace(/\/+$/, '')
    const receiver = c.req.query('for_peer') || ANY_RECEIVER
    if (!(await ctx.relay.routes.unset(url, receiver))) {
      throw new SplError('NOT_FOUND', `no relay route to ${url.slice(0, 200) || '(no url)'} for ${receiver}.`, {
        status: 404,
        fix: 'spl config relay list',
      })
    }
    return c.json({ object: 'relay_route', url, receiver, removed: true })
  })
}
