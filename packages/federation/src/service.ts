// One-command pairing and the link's whole life (SPEC 9, 7.5): the initiator's flow, the
// responder's decision, held requests, invites, the blocklist, revocation and token renewal.
// Pairs, bindings and the journal are handed in, so this file knows nothing of the daemon.
import crypto from 'node:crypto'
import { fetchVerifiedManifest, type PairPolicy, type WellKnownDocument } from '@spl/discovery'
import type { Keypair } from '@spl/identity'
import { PeerRefusedError, signedRequest } from '@spl/transport'
import { peerError, refuse } from './errors.js'
import { effectiveState, type Link, type LinkState, type LinkView, linkIdFor, linkView } from './link.js'
import type { FederationStore, HeldRequest } from './store.js'
import { checkGivenToken, checkHeldToken, claimsOf, issueLinkToken } from './tokens.js'
import { ChangeCounter, TrackedMap, TrackedSet } from './tracked.js'
import {
  type NamespaceMap,
  PAIR_PATH,
  type PairAccepted,
  type PairRequest,
  pairAcceptedSchema,
  peerRevokePath,
  pollPath,
  renewAnswerSchema,
  renewPath,
} from './wire.js'

/** Held requests expire after this (SPEC 9.1). */
export const REQUEST_TTL_MS = 7 * 86_400_000
/** Invites are single use and expire (24 h by default, at most 30 days). */
export const INVITE_DEFAULT_MS = 86_400_000
const INVITE_MAX_MS = 30 * 86_400_000
/** Nonces are remembered as long as a held request may live. */
const NONCE_TTL_MS = REQUEST_TTL_MS

/** What the service needs from the sync engine. */
export interface LinkPairs {
  add(input: { peer_did: string; peer_url: string; thread_id: string }): Promise<{ pair_id: string }>
  remove(pairId: string): Promise<void>
  pause(pairId: string): Promise<void>
  resume(pairId: string): Promise<void>
  /** The pairs pulling from `peerDid` (their health makes a link degraded). */
  of(peerDid: string): {
    pair_id: string
    thread_id: string
    state: string
    last_error: { code: string; message: string } | null
    last_success_at: number | null
    created_at: number
  }[]
}

export interface FederationComponents {
  keypair: Keypair
  store: FederationStore
  pairs: LinkPairs
  /** Consent bindings (SPEC 6.4) and the namespace check for a mapping. */
  bindings: {
    bindingOf(did: string): string | null
    bind(did: string, namespace: string): Promise<void>
    assertUsable(namespace: string): void
  }
  /** Appends a `core.federation.pair.v1` record to th_federation_pairs. */
  journal(body: Record<string, unknown>): Promise<void>
  /** This daemon's signed manifest, as a peer reaching `origin` would get it. */
  ownManifest(origin: string): WellKnownDocument
  logger: { info(obj: object, msg?: string): void; warn(obj: object, msg?: string): void }
  now?: () => number
  /** Called after each change of links or revocations, once it is in the store (replicas reload then). */
  changed?: () => void
}

export interface FederationSettings {
  policy: PairPolicy
  /** Lifetime of the tokens this side issues (SPEC 7.5: 90 days). */
  tokenTtlMs: number
  /** A link is degraded when its peer was unreachable for longer than this. */
  degradedAfterMs: number
  /** The namespace this instance reads as (`identity.namespace`). */
  namespace: string
}

/** What `spl federation pair` did, step by step. */
export interface PairOutcome {
  outcome: 'linked' | 'pending' | 'existing' | 'rejected'
  link: LinkView | null
  steps: string[]
  pairs: string[]
}

const b64 = (n: number) => crypto.randomBytes(n).toString('base64url')
const hashCode = (code: string) => crypto.createHash('sha256').update(code.trim()).digest('hex')

export class FederationService {
  readonly #c: FederationComponents
  readonly #s: FederationSettings
  readonly #now: () => number
  /** Writes of the two below: each is told to `components.changed` (replicas reload). */
  readonly #changes: ChangeCounter
  /** Links by peer DID, kept in step with the store for the synchronous checks of every pull. */
  readonly #byPeer: Map<string, Link>
  readonly #revoked: Set<string>
  #timer: NodeJS.Timeout | undefined
  #renewing = false

  constructor(components: FederationComponents, settings: FederationSettings) {
    this.#c = components
    this.#s = settings
    this.#now = components.now ?? Date.now
    this.#changes = new ChangeCounter(components.changed)
    this.#byPeer = new TrackedMap(this.#changes)
    this.#revoked = new TrackedSet(this.#changes)
  }

  get settings(): FederationSettings {
    return this.#s
  }

  /** Loads links and revocations, makes sure every active link has its pairs, starts renewal. */
  async start(): Promise<void> {
    const revoked = await this.#c.store.revokedJtis(this.#now())
    const links = await this.#c.store.links()
    // What the store holds already: nothing to tell the replicas.
    this.#changes.quietly(() => {
      for (const jti of revoked) this.#revoked.add(jti)
      for (const link of links) this.#byPeer.set(link.peer_did, link)
    })
    for (const link of links) {
      // A crash between the link's commit and its pairs leaves them missing: make them now.
      if (link.state === 'active')
        await this.#ensurePairs(link).catch((err) =>
          this.#c.logger.warn({ err, link: link.link_id }, 'federation: pairs of a link could not be made'),
        )
    }
    this.#timer = setInterval(() => void this.renewDue(), 1000)
    this.#timer.unref()
  }

  /**
   * Reads links and revocations from the store again (another daemon on the same database, a
   * replica, changed them). Revoked ids are only added: an expired one is refused by its expiry.
   * A write of this service during the read makes it read again, so a newer local state is never
   * replaced by an older one.
   */
  async reload(): Promise<void> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const writes = this.#changes.writes
      const revoked = await this.#c.store.revokedJtis(this.#now())
      const links = await this.#c.store.links()
      if (this.#changes.writes !== writes) continue
      this.#changes.quietly(() => {
        for (const jti of revoked) this.#revoked.add(jti)
        this.#byPeer.clear()
        for (const link of links) this.#byPeer.set(link.peer_did, link)
      })
      return
    }
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = undefined
  }

  // ── synchronous answers for every pull and every request ──

  /** SPEC 7.5: a revoked token id is refused on every request. */
  isRevoked = (jti: string): boolean => this.#revoked.has(jti)

  /** The token the peer issued to us, for pulls from it (active or paused links). */
  tokenFor = (peerDid: string): string | null => {
    const l = this.#byPeer.get(peerDid)
    return l && (l.state === 'active' || l.state === 'paused') ? l.held_token : null
  }

  /** The namespace to claim when pulling from `peerDid`: the one it bound us to, if any. */
  targetNamespaceFor = (peerDid: string): string | null => {
    const l = this.#byPeer.get(peerDid)
    return l && l.state !== 'revoked' ? l.peer_namespace : null
  }

  /** True when a live link with `did` exists (serve_policy "paired" serves it). */
  isLinked = (did: string): boolean => {
    const l = this.#byPeer.get(did)
    return l !== undefined && l.state !== 'revoked' && l.state !== 'establishing'
  }

  // ── reading ──

  view(link: Link): LinkView {
    const pairs = this.#c.pairs.of(link.peer_did).filter((p) => link.threads.includes(p.thread_id))
    // The pair's code is the pull class (HTTP_4XX); the peer's code is in the message: "peer answered 401 (TOKEN_REVOKED: …)".
    const tokenRefused = pairs.some((p) => p.last_error !== null && /\bTOKEN_(REVOKED|INVALID)\b/.test(p.last_error.message))
    const failing = pairs.length > 0 && pairs.every((p) => p.state === 'failing')
    const lastSuccess = Math.max(0, ...pairs.map((p) => p.last_success_at ?? p.created_at))
    const state: LinkState = effectiveState(
      link,
      { tokenRefused, lastSuccessAt: lastSuccess || null, failingSince: failing ? lastSuccess : null },
      this.#s.degradedAfterMs,
      this.#now(),
    )
    return { ...linkView(link, state), pair_ids: pairs.map((p) => p.pair_id) } as LinkView
  }

  /** Every link as kept in memory (in step with the store), for synchronous reports such as health. */
  snapshot(): LinkView[] {
    return [...this.#byPeer.values()].sort((a, b) => a.created_at - b.created_at).map((l) => this.view(l))
  }

  async links(): Promise<LinkView[]> {
    return (await this.#c.store.links()).map((l) => this.view(l))
  }

  /** A link by id, peer DID, or peer URL. */
  async find(ref: string): Promise<Link> {
    const all = await this.#c.store.links()
    const ref0 = ref.replace(/\/+$/, '')
    const link = all.find((l) => l.link_id === ref || l.peer_did === ref || l.peer_url === ref0)
    if (!link) throw refuse('LINK_NOT_FOUND', 404, `no peer link ${ref.slice(0, 120)}.`, 'spl federation list')
    return link
  }

  // ── the initiator (SPEC 9.1) ──

  /** `spl federation pair <peer-url>`: verify the manifest, handshake, record, make the pairs. */
  async pair(input: {
    peerUrl: string
    selfUrl: string
    threads: string[]
    map: NamespaceMap
    invite?: string | undefined
  }): Promise<PairOutcome> {
    const steps: string[] = []
    const peerUrl = input.peerUrl.replace(/\/+$/, '')
    const checked = await fetchVerifiedManifest(peerUrl, { strict: true })
    const peerDid = checked.did
    if (peerDid === this.#c.keypair.did) throw refuse('PAIR_SELF', 400, `${peerUrl} is this instance.`, 'give the URL of the other daemon')
    steps.push(
      `manifest of ${peerUrl} verified: ${peerDid} (accepts pair requests: ${checked.manifest.consent_policy.accepts_pair_requests})`,
    )
    const linkId = linkIdFor(this.#c.keypair.did, peerDid)
    const existing = await this.#c.store.link(linkId)
    if (existing && existing.state !== 'revoked' && existing.state !== 'establishing') {
      const added = await this.#addThreads(existing, input.threads)
      steps.push(`a link with ${peerDid} exists (${existing.link_id}, ${existing.state}): no new handshake, no new token`)
      if (added.length)
        steps.push(`added on this side: pairs pulling ${added.join(', ')} (run the same on the peer for the other direction)`)
      return { outcome: 'existing', link: this.view((await this.#c.store.link(linkId))!), steps, pairs: added }
    }
    if (existing?.state === 'establishing' && existing.nonce) {
      steps.push(`a request to ${peerDid} is waiting for the peer's decision: asking again`)
      return this.poll(linkId, steps)
    }
    const localNs = input.map[0]?.local ?? null
    if (localNs) this.#c.bindings.assertUsable(localNs)
    const now = this.#now()
    const issued = await issueLinkToken(this.#c.keypair, peerDid, localNs ?? this.#s.namespace, this.#s.tokenTtlMs, now)
    const nonce = b64(24)
    const request: PairRequest = {
      initiator_did: this.#c.keypair.did,
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
    await this.#c.store.putLink(link)
    this.#byPeer.set(peerDid, link)
    let answer: Awaited<ReturnType<typeof signedRequest>>
    try {
      answer = await signedRequest(this.#c.keypair, { peerUrl, method: 'POST', path: PAIR_PATH, body: request, aud: peerDid })
    } catch (err) {
      await this.#forget(link)
      throw peerError(err, 'the pairing request')
    }
    steps.push(`handshake sent with SPL-Proof; token ${issued.claims.jti} issued to the peer`)
    if (answer.status === 202) {
      steps.push(`the peer holds the request for its operator (${linkId}): approve it there with spl federation approve ${linkId}`)
      return { outcome: 'pending', link: this.view(link), steps, pairs: [] }
    }
    return this.#complete(link, answer.json, steps)
  }

  /** Asks the responder once whether a held request was decided (SPEC 9.1 step 4). */
  async poll(linkId: string, steps: string[] = []): Promise<PairOutcome> {
    const link = await this.#c.store.link(linkId)
    if (link?.state !== 'establishing' || !link.nonce) {
      if (link) return { outcome: 'existing', link: this.view(link), steps: [...steps, `the link is ${link.state}`], pairs: [] }
      throw refuse('LINK_NOT_FOUND', 404, `no pairing request ${linkId} is waiting.`, 'spl federation pair <peer-url>')
    }
    let answer: Awaited<ReturnType<typeof signedRequest>>
    try {
      answer = await signedRequest(this.#c.keypair, {
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
        await this.#forget(link)
        return { outcome: 'rejected', link: null, steps: [...steps, `the peer refused the request: ${err.message}`], pairs: [] }
      }
      throw peerError(err, 'polling the pairing request')
    }
    if (answer.status === 202)
      return { outcome: 'pending', link: this.view(link), steps: [...steps, 'still waiting for the peer'], pairs: [] }
    return this.#complete(link, answer.json, steps)
  }

  /** An accepted answer: check the peer's token, store the link active, bind, make the pairs. */
  async #complete(link: Link, json: unknown, steps: string[]): Promise<PairOutcome> {
    const parsed = pairAcceptedSchema.safeParse(json)
    if (!parsed.success) {
      await this.#forget(link)
      throw refuse('PAIR_ANSWER_INVALID', 502, 'the peer accepted with an answer that does not fit SPEC 9.1', "check the peer's version")
    }
    const claims = await checkHeldToken(parsed.data.token_for_initiator, link.peer_did, this.#c.keypair.did).catch(async (err) => {
      await this.#forget(link)
      throw err
    })
    const active: Link = {
      ...link,
      state: 'active',
      held_token: parsed.data.token_for_initiator,
      held_jti: claims.jti,
      held_exp: claims.exp * 1000,
      nonce: null,
      updated_at: this.#now(),
    }
    await this.#c.store.putLink(active)
    this.#byPeer.set(active.peer_did, active)
    steps.push(`accepted: token ${claims.jti} received from the peer (expires ${new Date(claims.exp * 1000).toISOString()})`)
    const pairs = await this.#activate(active, 'establishing', steps)
    return { outcome: 'linked', link: this.view(active), steps, pairs }
  }

  /** Binding, journal and pairs of a link that just became active (both roles). */
  async #activate(link: Link, from: LinkState, steps: string[]): Promise<string[]> {
    if (link.local_namespace && this.#c.bindings.bindingOf(link.peer_did) !== link.local_namespace) {
      await this.#c.bindings.bind(link.peer_did, link.local_namespace)
      steps.push(`bound ${link.peer_did} to namespace ${link.local_namespace} here (SPEC 6.4)`)
    }
    await this.#journal(link, from, 'active')
    steps.push(`recorded on th_federation_pairs (${from} → active)`)
    const pairs = await this.#ensurePairs(link)
    if (pairs.length) steps.push(`pairs pulling ${link.threads.join(', ')} from the peer: ${pairs.join(', ')}`)
    return pairs
  }

  // ── the responder (SPEC 9.1 step 3) ──

  /** `POST /v1/federation/pair` after its proof was checked: accept (200), hold (202) or refuse. */
  async handlePairRequest(
    proofIss: string,
    req: PairRequest,
    origin: string,
  ): Promise<{ status: 200 | 202; body: Record<string, unknown> }> {
    if (proofIss !== req.initiator_did) {
      throw refuse('PROOF_INVALID', 401, `the proof is signed by ${proofIss}, not by the initiator ${req.initiator_did}`)
    }
    if (await this.#c.store.isBlocked(req.initiator_did)) {
      throw refuse('PEER_BLOCKED', 403, 'this instance does not take pairing requests from you.')
    }
    if (this.#s.policy === 'never') {
      throw refuse(
        'PAIRING_DISABLED',
        403,
        'this instance accepts no pairing requests (federation.accept_pair_requests = "never").',
        "ask the peer's operator",
      )
    }
    if (req.initiator_did === this.#c.keypair.did) throw refuse('PAIR_SELF', 400, 'an instance cannot pair with itself.')
    const now = this.#now()
    const given = await checkGivenToken(req.token_for_responder, req.initiator_did, this.#c.keypair.did, now)
    const localNs = req.namespace_map[0]?.peer ?? null
    if (localNs) this.#c.bindings.assertUsable(localNs)
    // The nonce first: a replayed request is 410 whatever became of the first one (SPEC 9.1).
    if (!(await this.#c.store.claimNonce(`pair:${req.nonce}`, now + NONCE_TTL_MS, now))) {
      throw refuse(
        'NONCE_REPLAYED',
        410,
        'this pairing request was seen before (its nonce is used).',
        'run spl federation pair again: it makes a fresh request',
      )
    }
    const linkId = linkIdFor(this.#c.keypair.did, req.initiator_did)
    const existing = await this.#c.store.link(linkId)
    if (existing && existing.state !== 'revoked') {
      // The same DID, proven by its key with a fresh nonce, asks again: it lost its side of the
      // link (an answer that never arrived, a restored home). It gets new tokens for the same link;
      // the old ones stop. A different mapping is not taken this way: that is a new decision.
      const sameMap =
        (req.namespace_map[0]?.peer ?? null) === existing.local_namespace &&
        (req.namespace_map[0]?.local ?? null) === existing.peer_namespace
      if (!sameMap || existing.state === 'establishing') {
        throw refuse(
          'LINK_EXISTS',
          409,
          `a link with you exists here (${linkId}, ${existing.state})${sameMap ? '' : ' with another namespace mapping'}.`,
          `the peer's operator can revoke it (spl federation revoke ${linkId}) to pair anew`,
        )
      }
      const token = await this.#reestablish(existing, req, given)
      return {
        status: 200,
        body: {
          object: 'federation_pair',
          pair_id: linkId,
          state: 'active',
          token_for_initiator: token,
          responder_manifest: this.#c.ownManifest(origin),
        },
      }
    }
    const held: HeldRequest = {
      link_id: linkId,
      initiator_did: req.initiator_did,
      initiator_url: req.initiator_url.replace(/\/+$/, ''),
      nonce: req.nonce,
      threads: [...new Set(req.threads)],
      namespace_map: req.namespace_map,
      token_for_responder: req.token_for_responder,
      answer_token: null,
      created_at: now,
      expires_at: now + REQUEST_TTL_MS,
      state: 'pending',
      decided_at: null,
    }
    // `auto` accepts strangers, but never lets one choose the namespace it is bound to here (that
    // would be a grant it made itself, SPEC 6.4): a request with a mapping waits for the operator
    // unless it carries an invite naming that mapping.
    let accept = this.#s.policy === 'auto' && req.namespace_map.length === 0
    if (req.invite !== undefined && this.#s.policy !== 'manual') {
      await this.#takeInvite(req.invite, held, now)
      accept = true
    }
    if (!accept) {
      await this.#c.store.putRequest(held)
      this.#c.logger.info({ link: linkId, did: req.initiator_did }, 'federation: pairing request held for the operator')
      return {
        status: 202,
        body: { object: 'federation_pair', pair_id: linkId, state: 'pending', expires_at: new Date(held.expires_at).toISOString() },
      }
    }
    const token = await this.#accept(held, given)
    return {
      status: 200,
      body: {
        object: 'federation_pair',
        pair_id: linkId,
        state: 'active',
        token_for_initiator: token,
        responder_manifest: this.#c.ownManifest(origin),
      },
    }
  }

  /** New tokens both ways for a live link whose initiator lost its side; the old issued one is revoked. */
  async #reestablish(link: Link, req: PairRequest, given: { jti: string; exp: number }): Promise<string> {
    const now = this.#now()
    const issued = await issueLinkToken(this.#c.keypair, link.peer_did, link.local_namespace ?? this.#s.namespace, this.#s.tokenTtlMs, now)
    const renewed: Link = {
      ...link,
      peer_url: req.initiator_url.replace(/\/+$/, ''),
      threads: [...new Set([...link.threads, ...req.threads])],
      issued_jti: issued.claims.jti,
      issued_exp: issued.claims.exp * 1000,
      held_token: req.token_for_responder,
      held_jti: given.jti,
      held_exp: given.exp * 1000,
      renewal_error: null,
      updated_at: now,
    }
    await this.#c.store.transaction(async (trx) => {
      await this.#c.store.revoke(link.issued_jti, link.issued_exp, now, trx)
      await this.#c.store.putLink(renewed, trx)
    })
    this.#revoked.add(link.issued_jti)
    this.#byPeer.set(link.peer_did, renewed)
    if (renewed.state === 'active') await this.#ensurePairs(renewed)
    await this.#journal(renewed, link.state, renewed.state)
    this.#c.logger.info({ link: link.link_id, did: link.peer_did }, 'federation: link re-established by its peer (new tokens)')
    return issued.token
  }

  async #takeInvite(code: string, held: HeldRequest, now: number): Promise<void> {
    const hash = hashCode(code)
    const invite = await this.#c.store.invite(hash)
    if (!invite)
      throw refuse(
        'INVITE_INVALID',
        403,
        'this invite code is not one this instance made.',
        'ask the operator for a fresh code: spl federation invite',
      )
    if (invite.used_at !== null)
      throw refuse(
        'INVITE_USED',
        403,
        `this invite was used at ${new Date(invite.used_at).toISOString()}: codes are single use.`,
        'ask the operator for a fresh code: spl federation invite',
      )
    if (invite.expires_at <= now)
      throw refuse(
        'INVITE_EXPIRED',
        403,
        `this invite expired at ${new Date(invite.expires_at).toISOString()}.`,
        'ask the operator for a fresh code: spl federation invite',
      )
    const outside = invite.threads.length ? held.threads.filter((t) => !invite.threads.includes(t)) : []
    if (outside.length)
      throw refuse(
        'INVITE_SCOPE',
        403,
        `the invite does not cover ${outside.join(', ')}.`,
        `pair with --thread ${invite.threads.join(' --thread ')}`,
      )
    // The mapping is the invite's, turned round (the request's `peer` is this side's namespace):
    // an invite never lets the holder pick the namespace it is bound to here.
    const want = invite.namespace_map[0]
    const asked = held.namespace_map[0]
    if ((want?.local ?? null) !== (asked?.peer ?? null) || (want?.peer ?? null) !== (asked?.local ?? null))
      throw refuse(
        'INVITE_SCOPE',
        403,
        asked
          ? `the invite does not cover the mapping ${asked.local}:${asked.peer}.`
          : 'the invite is for a namespace mapping the request does not ask for.',
        want ? `pair with --map ${want.peer}:${want.local}` : 'pair without --map',
      )
    if (!(await this.#c.store.useInvite(hash, held.initiator_did, now)))
      throw refuse('INVITE_USED', 403, 'this invite was just used: codes are single use.')
  }

  /** Makes the responder's side of the link (auto, invite, or the operator's approve). */
  async #accept(held: HeldRequest, given: { jti: string; exp: number }): Promise<string> {
    const now = this.#now()
    const localNs = held.namespace_map[0]?.peer ?? null
    const issued = await issueLinkToken(this.#c.keypair, held.initiator_did, localNs ?? this.#s.namespace, this.#s.tokenTtlMs, now)
    const link: Link = {
      link_id: held.link_id,
      peer_did: held.initiator_did,
      peer_url: held.initiator_url,
      role: 'responder',
      state: 'active',
      threads: held.threads,
      local_namespace: localNs,
      peer_namespace: held.namespace_map[0]?.local ?? null,
      issued_jti: issued.claims.jti,
      issued_exp: issued.claims.exp * 1000,
      held_token: held.token_for_responder,
      held_jti: given.jti,
      held_exp: given.exp * 1000,
      nonce: null,
      created_at: now,
      updated_at: now,
      renewal_error: null,
      revoked_by: null,
    }
    await this.#c.store.transaction(async (trx) => {
      await this.#c.store.putLink(link, trx)
      await this.#c.store.putRequest({ ...held, state: 'approved', decided_at: now, answer_token: issued.token }, trx)
    })
    this.#byPeer.set(link.peer_did, link)
    await this.#activate(link, 'establishing', [])
    this.#c.logger.info({ link: link.link_id, did: link.peer_did }, 'federation: peer link active')
    return issued.token
  }

  /** `POST /v1/federation/pair/{id}/poll`: the initiator asks about its held request. */
  async handlePoll(proofIss: string, linkId: string, nonce: string): Promise<{ status: 200 | 202; body: Record<string, unknown> }> {
    const held = await this.#c.store.request(linkId)
    if (!held || held.initiator_did !== proofIss || held.nonce !== nonce) {
      throw refuse(
        'REQUEST_NOT_FOUND',
        404,
        `no pairing request ${linkId.slice(0, 40)} from you with that nonce.`,
        'spl federation pair <peer-url>',
      )
    }
    if (await this.#c.store.isBlocked(proofIss)) throw refuse('PEER_BLOCKED', 403, 'this instance does not take pairing requests from you.')
    if (held.state === 'rejected') throw refuse('PAIR_REJECTED', 403, "the peer's operator rejected the pairing request.")
    if (held.state === 'pending' && held.expires_at <= this.#now())
      throw refuse(
        'REQUEST_EXPIRED',
        410,
        'the pairing request expired (held requests live 7 days).',
        'spl federation pair <peer-url> again',
      )
    if (held.state === 'pending')
      return {
        status: 202,
        body: { object: 'federation_pair', pair_id: linkId, state: 'pending', expires_at: new Date(held.expires_at).toISOString() },
      }
    return {
      status: 200,
      body: {
        object: 'federation_pair',
        pair_id: linkId,
        state: 'active',
        token_for_initiator: held.answer_token,
        responder_manifest: this.#c.ownManifest(held.initiator_url),
      },
    }
  }

  // ── the operator's decisions ──

  async requests(): Promise<HeldRequest[]> {
    const held = await this.#c.store.pendingRequests(this.#now())
    const blocked = new Set((await this.#c.store.blocked()).map((b) => b.did))
    return held.filter((r) => !blocked.has(r.initiator_did))
  }

  async approve(linkId: string): Promise<LinkView> {
    const held = await this.#pending(linkId)
    const given = await checkGivenToken(held.token_for_responder, held.initiator_did, this.#c.keypair.did, this.#now())
    const localNs = held.namespace_map[0]?.peer
    if (localNs) this.#c.bindings.assertUsable(localNs)
    await this.#accept(held, given)
    return this.view((await this.#c.store.link(linkId))!)
  }

  async reject(linkId: string): Promise<HeldRequest> {
    const held = await this.#pending(linkId)
    const done: HeldRequest = { ...held, state: 'rejected', decided_at: this.#now() }
    await this.#c.store.putRequest(done)
    return done
  }

  async #pending(linkId: string): Promise<HeldRequest> {
    const held = await this.#c.store.request(linkId)
    if (held?.state !== 'pending' || held.expires_at <= this.#now() || (await this.#c.store.isBlocked(held.initiator_did))) {
      throw refuse('REQUEST_NOT_FOUND', 404, `no held pairing request ${linkId.slice(0, 40)}.`, 'spl federation requests')
    }
    return held
  }

  async invite(input: {
    threads: string[]
    map: NamespaceMap
    expiresMs?: number | undefined
  }): Promise<{ code: string; expires_at: string }> {
    const ttl = input.expiresMs ?? INVITE_DEFAULT_MS
    if (ttl <= 0 || ttl > INVITE_MAX_MS) throw refuse('INVALID_DURATION', 400, 'an invite lives between 1 s and 30 days.', '--expires 24h')
    // The invite's mapping is from this side: `local` is the namespace the peer will be bound to here.
    if (input.map[0]) this.#c.bindings.assertUsable(input.map[0].local)
    const code = `spl-${b64(18)}`
    const now = this.#now()
    await this.#c.store.addInvite(hashCode(code), {
      threads: input.threads,
      namespace_map: input.map,
      created_at: now,
      expires_at: now + ttl,
      used_at: null,
      used_by: null,
    })
    return { code, expires_at: new Date(now + ttl).toISOString() }
  }

  async block(did: string): Promise<void> {
    await this.#c.store.transaction(async (trx) => {
      await this.#c.store.block(did, this.#now(), trx)
      await this.#c.store.deleteRequestsOf(did, trx)
    })
  }

  unblock(did: string): Promise<boolean> {
    return this.#c.store.unblock(did)
  }

  blocked() {
    return this.#c.store.blocked()
  }

  // ── lifecycle (SPEC 9.2) ──

  async pause(ref: string): Promise<LinkView> {
    const link = await this.#live(ref)
    if (link.state === 'active') {
      for (const p of this.#linkPairs(link)) await this.#c.pairs.pause(p)
      await this.#transition(link, 'paused')
    }
    return this.view((await this.#c.store.link(link.link_id))!)
  }

  async resume(ref: string): Promise<LinkView> {
    const link = await this.#live(ref)
    if (link.state === 'paused') {
      const active = await this.#transition(link, 'active')
      await this.#ensurePairs(active)
      for (const p of this.#linkPairs(active)) await this.#c.pairs.resume(p)
    }
    return this.view((await this.#c.store.link(link.link_id))!)
  }

  /** Ends a link here: the issued token's jti revoked, the pairs removed, the peer told (best effort). */
  async revoke(ref: string): Promise<{ link: LinkView; notified: boolean; notice?: string }> {
    const link = await this.find(ref)
    // Revoking again re-sends the notice (the peer may have been down the first time); a link
    // the peer revoked needs no notice.
    if (link.state === 'revoked' && link.revoked_by !== 'local')
      return { link: this.view(link), notified: false, notice: 'already revoked by the peer' }
    if (link.state !== 'revoked') await this.#end(link, 'local')
    let notified = false
    let notice: string | undefined
    try {
      await signedRequest(this.#c.keypair, {
        peerUrl: link.peer_url,
        method: 'POST',
        path: peerRevokePath(link.link_id),
        body: {},
        aud: link.peer_did,
        timeoutMs: 5000,
      })
      notified = true
    } catch (err) {
      notice = `the peer was not told (${err instanceof Error ? err.message : String(err)}): its pulls are refused from now on anyway`
    }
    return { link: this.view((await this.#c.store.link(link.link_id))!), notified, ...(notice ? { notice } : {}) }
  }

  /** `POST /v1/federation/links/{id}/revoked`: the peer ended the link. */
  async handlePeerRevoked(proofIss: string, linkId: string): Promise<{ link_id: string; state: 'revoked' }> {
    const link = await this.#c.store.link(linkId)
    if (!link || link.peer_did !== proofIss) throw refuse('LINK_NOT_FOUND', 404, `no link ${linkId.slice(0, 40)} with you.`)
    if (link.state !== 'revoked') await this.#end(link, 'peer')
    return { link_id: linkId, state: 'revoked' }
  }

  async #end(link: Link, by: 'local' | 'peer'): Promise<void> {
    const now = this.#now()
    await this.#c.store.transaction(async (trx) => {
      await this.#c.store.revoke(link.issued_jti, link.issued_exp, now, trx)
      await this.#c.store.putLink({ ...link, state: 'revoked', revoked_by: by, nonce: null, updated_at: now }, trx)
    })
    this.#revoked.add(link.issued_jti)
    this.#byPeer.set(link.peer_did, { ...link, state: 'revoked', revoked_by: by })
    for (const p of this.#linkPairs(link)) await this.#c.pairs.remove(p).catch(() => {})
    await this.#journal(link, link.state, 'revoked')
    this.#c.logger.info({ link: link.link_id, by }, 'federation: peer link revoked')
  }

  /** `spl federation refresh`: renew the held token now. */
  async refresh(ref: string): Promise<LinkView> {
    const link = await this.#live(ref)
    await this.#renew(link)
    return this.view((await this.#c.store.link(link.link_id))!)
  }

  /** `POST /v1/federation/links/{id}/renew`: the peer asks for a fresh token (a light re-handshake). */
  async handleRenew(proofIss: string, linkId: string): Promise<{ object: 'federation_token'; token: string; expires_at: string }> {
    const link = await this.#c.store.link(linkId)
    if (!link || link.peer_did !== proofIss) throw refuse('LINK_NOT_FOUND', 404, `no link ${linkId.slice(0, 40)} with you.`)
    if (link.state === 'revoked')
      throw refuse('LINK_REVOKED', 403, 'this link was revoked: its tokens are not renewed.', 'pair again with spl federation pair')
    const now = this.#now()
    const issued = await issueLinkToken(this.#c.keypair, link.peer_did, link.local_namespace ?? this.#s.namespace, this.#s.tokenTtlMs, now)
    const renewed: Link = { ...link, issued_jti: issued.claims.jti, issued_exp: issued.claims.exp * 1000, updated_at: now }
    await this.#c.store.putLink(renewed)
    this.#byPeer.set(link.peer_did, renewed)
    return { object: 'federation_token', token: issued.token, expires_at: new Date(renewed.issued_exp).toISOString() }
  }

  /** Renews every held token past two thirds of its life (the timer calls this each second). */
  async renewDue(): Promise<void> {
    if (this.#renewing) return
    this.#renewing = true
    try {
      const now = this.#now()
      // A copy: a renewal another replica took reloads the map.
      for (const link of [...this.#byPeer.values()]) {
        if (link.state !== 'active' && link.state !== 'paused') continue
        if (!link.held_token) {
          // Restored from a bundle (token ids only, docs/backup.md): the id is known, the token is
          // not. Ask the peer for a fresh one now, and every 30 s until it answers.
          const retryAt = link.renewal_error ? link.renewal_error.at + 30_000 : 0
          if (link.held_jti !== null && now >= retryAt) await this.#renewOnce(link, now)
          continue
        }
        const { iat, exp } = claimsOf(link.held_token)
        if (typeof iat !== 'number' || typeof exp !== 'number') continue
        const due = iat * 1000 + ((exp - iat) * 1000 * 2) / 3
        // After a failure, wait a little before the next try (not once a second).
        const retryAt = link.renewal_error ? link.renewal_error.at + Math.min(30_000, ((exp - iat) * 1000) / 10) : 0
        if (now >= due && now >= retryAt) await this.#renewOnce(link, now)
      }
    } finally {
      this.#renewing = false
    }
  }

  /**
   * A due renewal, by this daemon only if it takes the link's row first: two replicas renewing
   * at once would each get a token from the peer, which revokes the first when it issues the
   * second, and the row could end up holding the revoked one. The other replica reloads.
   */
  async #renewOnce(link: Link, now: number): Promise<void> {
    try {
      if (!(await this.#c.store.claimRenewal(link.link_id, link.updated_at, now))) {
        await this.reload()
        return
      }
      await this.#renew({ ...link, updated_at: Math.max(now, link.updated_at + 1) })
    } catch {
      // #renew keeps its failure on the link; a store that is away is tried at the next round.
    }
  }

  async #renew(link: Link): Promise<void> {
    try {
      const answer = await signedRequest(this.#c.keypair, {
        peerUrl: link.peer_url,
        method: 'POST',
        path: renewPath(link.link_id),
        body: {},
        aud: link.peer_did,
        timeoutMs: 5000,
      })
      const parsed = renewAnswerSchema.safeParse(answer.json)
      if (!parsed.success) throw refuse('PAIR_ANSWER_INVALID', 502, 'the peer renewed with an answer that does not fit')
      const claims = await checkHeldToken(parsed.data.token, link.peer_did, this.#c.keypair.did)
      const current = (await this.#c.store.link(link.link_id)) ?? link
      const renewed: Link = {
        ...current,
        held_token: parsed.data.token,
        held_jti: claims.jti,
        held_exp: claims.exp * 1000,
        renewal_error: null,
        updated_at: this.#now(),
      }
      await this.#c.store.putLink(renewed)
      this.#byPeer.set(link.peer_did, renewed)
      this.#c.logger.info({ link: link.link_id, jti: claims.jti }, 'federation: token renewed')
    } catch (err) {
      const e = peerError(err, 'renewing the token')
      const current = (await this.#c.store.link(link.link_id)) ?? link
      const failed: Link = { ...current, renewal_error: { code: e.code, message: e.message, at: this.#now() } }
      await this.#c.store.putLink(failed)
      this.#byPeer.set(link.peer_did, failed)
      if (!link.renewal_error) this.#c.logger.warn({ link: link.link_id, code: e.code }, `federation: token renewal failed: ${e.message}`)
      throw e
    }
  }

  // ── helpers ──

  async #live(ref: string): Promise<Link> {
    const link = await this.find(ref)
    if (link.state === 'revoked')
      throw refuse('LINK_REVOKED', 409, `the link ${link.link_id} is revoked (terminal).`, 'pair again with spl federation pair')
    if (link.state === 'establishing')
      throw refuse(
        'LINK_ESTABLISHING',
        409,
        `the link ${link.link_id} waits for the peer's decision.`,
        'spl federation pair <peer-url> asks again',
      )
    return link
  }

  #linkPairs(link: Link): string[] {
    return this.#c.pairs
      .of(link.peer_did)
      .filter((p) => link.threads.includes(p.thread_id))
      .map((p) => p.pair_id)
  }

  async #ensurePairs(link: Link): Promise<string[]> {
    const ids: string[] = []
    for (const thread of link.threads)
      ids.push((await this.#c.pairs.add({ peer_did: link.peer_did, peer_url: link.peer_url, thread_id: thread })).pair_id)
    return ids
  }

  async #addThreads(link: Link, threads: string[]): Promise<string[]> {
    const fresh = threads.filter((t) => !link.threads.includes(t))
    if (!fresh.length) return []
    const grown: Link = { ...link, threads: [...link.threads, ...fresh], updated_at: this.#now() }
    await this.#c.store.putLink(grown)
    this.#byPeer.set(link.peer_did, grown)
    if (grown.state === 'active') await this.#ensurePairs(grown)
    return fresh
  }

  async #transition(link: Link, to: 'active' | 'paused'): Promise<Link> {
    const next: Link = { ...link, state: to, updated_at: this.#now() }
    await this.#c.store.putLink(next)
    this.#byPeer.set(link.peer_did, next)
    await this.#journal(link, link.state, to)
    return next
  }

  /** An initiator's link that did not come about: gone, and its issued token revoked. */
  async #forget(link: Link): Promise<void> {
    await this.#c.store.transaction(async (trx) => {
      await this.#c.store.revoke(link.issued_jti, link.issued_exp, this.#now(), trx)
      await this.#c.store.deleteLink(link.link_id, trx)
    })
    this.#revoked.add(link.issued_jti)
    this.#byPeer.delete(link.peer_did)
  }

  async #journal(link: Link, from: LinkState, to: LinkState): Promise<void> {
    try {
      await this.#c.journal({
        kind: 'core.federation.pair.v1',
        link_id: link.link_id,
        peer_did: link.peer_did,
        peer_url: link.peer_url,
        role: link.role,
        transition: { from, to },
        threads: link.threads,
        namespace_map: link.local_namespace || link.peer_namespace ? [{ local: link.local_namespace, peer: link.peer_namespace }] : [],
        issued_token_jti: link.issued_jti,
        at: new Date(this.#now()).toISOString(),
      })
    } catch (err) {
      // The link is in the store; the journal is its history: a failure is logged, not fatal.
      this.#c.logger.warn({ err, link: link.link_id }, 'federation: th_federation_pairs record failed')
    }
  }
}

export type { PairAccepted }
