// The initiator of one-command pairing (SPEC 9.1): verify the peer's manifest, send the
// handshake, poll a held request, and complete (or forget) the link with the peer's answer.
import { fetchVerifiedManifest } from '@spl/discovery'
import { PeerRefusedError, signedRequest } from '@spl/transport'
import type { PairOutcome } from './components.js'
import { b64, type LinkContext } from './context.js'
import { peerError, refuse } from './errors.js'
import { activate, addThreads } from './lifecycle.js'
import { type Link, linkIdFor } from './link.js'
import { checkHeldToken, issueLinkToken } from './tokens.js'
import { view } from './views.js'
import { type NamespaceMap, PAIR_PATH, type PairRequest, pairAcceptedSchema, pollPath } from './wire.js'

/** `spl federation pair <peer-url>`: verify the manifest, handshake, record, make the pairs. */
export async function pair(
  ctx: LinkContext,
  input: {
    peerUrl: string
    selfUrl: string
    threads: string[]
    map: NamespaceMap
    invite?: string | undefined
  },
): Promise<PairOutcome> {
  const steps: string[] = []
  const peerUrl = input.peerUrl.replace(/\/+$/, '')
  const checked = await fetchVerifiedManifest(peerUrl, { strict: true })
  const peerDid = checked.did
  if (peerDid === ctx.c.keypair.did) throw refuse('PAIR_SELF', 400, `${peerUrl} is this instance.`, 'give the URL of the other daemon')
  steps.push(
    `manifest of ${peerUrl} verified: ${peerDid} (accepts pair requests: ${checked.manifest.consent_policy.accepts_pair_requests})`,
  )
  const linkId = linkIdFor(ctx.c.keypair.did, peerDid)
  const existing = await ctx.c.store.link(linkId)
  if (existing && existing.state !== 'revoked' && existing.state !== 'establishing') {
    const added = await addThreads(ctx, existing, input.threads)
    steps.push(`a link with ${peerDid} exists (${existing.link_id}, ${existing.state}): no new handshake, no new token`)
    if (added.length) steps.push(`added on this side: pairs pulling ${added.join(', ')} (run the same on the peer for the other direction)`)
    return { outcome: 'existing', link: view(ctx, (await ctx.c.store.link(linkId))!), steps, pairs: added }
  }
  if (existing?.state === 'establishing' && existing.nonce) {
    steps.push(`a request to ${peerDid} is waiting for the peer's decision: asking again`)
    return poll(ctx, linkId, steps)
  }
  const localNs = input.map[0]?.local ?? null
  if (localNs) ctx.c.bindings.assertUsable(localNs)
  const now = ctx.now()
  const issued = await issueLinkToken(ctx.c.keypair, peerDid, localNs ?? ctx.s.namespace, ctx.s.tokenTtlMs, now)
  const nonce = b64(24)
  const request: PairRequest = {
    initiator_did: ctx.c.keypair.did,
    initiator_url: input.selfUrl,
    nonce,
    threads: input.threads,
    namespace_map: input.map,
    ...(input.invite ? { invite: input.invite } : {}),
    token_for_responder: issued.token,
  }
  // The link exists from here as `establishing`, so that a held request can be resumed.
  const link: Link = {
    link_id: linkId,
    peer_did: peerDid,
    peer_url: peerUrl,
    role: 'initiator',
    state: 'establishing',
    threads: [...new Set(input.threads)],
    local_namespace: localNs,
    peer_namespace: input.map[0]?.peer ?? null,
    issued_jti: issued.claims.jti,
    issued_exp: issued.claims.exp * 1000,
    held_token: null,
    held_jti: null,
    held_exp: null,
    nonce,
    created_at: existing?.created_at ?? now,
    updated_at: now,
    renewal_error: null,
    revoked_by: null,
  }
  await ctx.c.store.putLink(link)
  ctx.byPeer.set(peerDid, link)
  let answer: Awaited<ReturnType<typeof signedRequest>>
  try {
    answer = await signedRequest(ctx.c.keypair, { peerUrl, method: 'POST', path: PAIR_PATH, body: request, aud: peerDid })
  } catch (err) {
    await forget(ctx, link)
    throw peerError(err, 'the pairing request')
  }
  steps.push(`handshake sent with SPL-Proof; token ${issued.claims.jti} issued to the peer`)
  if (answer.status === 202) {
    steps.push(`the peer holds the request for its operator (${linkId}): approve it there with spl federation approve ${linkId}`)
    return { outcome: 'pending', link: view(ctx, link), steps, pairs: [] }
  }
  return complete(ctx, link, answer.json, steps)
}

/** Asks the responder once whether a held request was decided (SPEC 9.1 step 4). */
export async function poll(ctx: LinkContext, linkId: string, steps: string[] = []): Promise<PairOutcome> {
  const link = await ctx.c.store.link(linkId)
  if (link?.state !== 'establishing' || !link.nonce) {
    if (link) return { outcome: 'existing', link: view(ctx, link), steps: [...steps, `the link is ${link.state}`], pairs: [] }
    throw refuse('LINK_NOT_FOUND', 404, `no pairing request ${linkId} is waiting.`, 'spl federation pair <peer-url>')
  }
  let answer: Awaited<ReturnType<typeof signedRequest>>
  try {
    answer = await signedRequest(ctx.c.keypair, {
      peerUrl: link.peer_url,
      method: 'POST',
      path: pollPath(linkId),
      body: { nonce: link.nonce },
      aud: link.peer_did,
    })
  } catch (err) {
    if (
      err instanceof PeerRefusedError &&
      err.signed &&
      (err.remoteCode === 'PAIR_REJECTED' || err.remoteCode === 'REQUEST_EXPIRED' || err.remoteCode === 'PEER_BLOCKED')
    ) {
      await forget(ctx, link)
      return { outcome: 'rejected', link: null, steps: [...steps, `the peer refused the request: ${err.message}`], pairs: [] }
    }
    throw peerError(err, 'polling the pairing request')
  }
  if (answer.status === 202)
    return { outcome: 'pending', link: view(ctx, link), steps: [...steps, 'still waiting for the peer'], pairs: [] }
  return complete(ctx, link, answer.json, steps)
}

/** An accepted answer: check the peer's token, store the link active, bind, make the pairs. */
async function complete(ctx: LinkContext, link: Link, json: unknown, steps: string[]): Promise<PairOutcome> {
  const parsed = pairAcceptedSchema.safeParse(json)
  if (!parsed.success) {
    await forget(ctx, link)
    throw refuse('PAIR_ANSWER_INVALID', 502, 'the peer accepted with an answer that does not fit SPEC 9.1', "check the peer's version")
  }
  const claims = await checkHeldToken(parsed.data.token_for_initiator, link.peer_did, ctx.c.keypair.did).catch(async (err) => {
    await forget(ctx, link)
    throw err
  })
  const active: Link = {
    ...link,
    state: 'active',
    held_token: parsed.data.token_for_initiator,
    held_jti: claims.jti,
    held_exp: claims.exp * 1000,
    nonce: null,
    updated_at: ctx.now(),
  }
  await ctx.c.store.putLink(active)
  ctx.byPeer.set(active.peer_did, active)
  steps.push(`accepted: token ${claims.jti} received from the peer (expires ${new Date(claims.exp * 1000).toISOString()})`)
  const pairs = await activate(ctx, active, 'establishing', steps)
  return { outcome: 'linked', link: view(ctx, active), steps, pairs }
}

/** An initiator's link that did not come about: gone, and its issued token revoked. */
async function forget(ctx: LinkContext, link: Link): Promise<void> {
  await ctx.c.store.transaction(async (trx) => {
    await ctx.c.store.revoke(link.issued_jti, link.issued_exp, ctx.now(), trx)
    await ctx.c.store.deleteLink(link.link_id, trx)
  })
  ctx.revoked.add(link.issued_jti)
  ctx.byPeer.delete(link.peer_did)
}
