// One-command pairing and the link's whole life (SPEC 9, 7.5): the initiator's flow, the
// responder's decision, held requests, invites, the blocklist, revocation and token renewal.
// Pairs, bindings and the journal are handed in, so this package knows nothing of the daemon.
// This file is the service's face: its state, start and stop, the synchronous answers of every
// pull, and one method for each door, done in the file of its part:
//   views.ts       reading links: their shown state, lookup by id, DID or URL
//   initiator.ts   `spl federation pair`: manifest, handshake, poll, completion
//   responder.ts   a pairing request decided here; the answer to the initiator's poll
//   invites.ts     invites made and taken
//   requests.ts    held requests (list, approve, reject), the blocklist
//   lifecycle.ts   pause, resume, activation; the link's pairs and journal records
//   revocation.ts  the end of a link, here or by the peer
//   renewal.ts     the held token renewed, a fresh one issued to the peer
//   context.ts     what the parts share: components, settings, the in-memory links, reload
import type { FederationComponents, FederationSettings, PairOutcome } from './components.js'
import { type LinkContext, linkContext, reload } from './context.js'
import * as initiator from './initiator.js'
import * as invites from './invites.js'
import * as lifecycle from './lifecycle.js'
import type { Link, LinkView } from './link.js'
import * as renewal from './renewal.js'
import * as requests from './requests.js'
import * as responder from './responder.js'
import * as revocation from './revocation.js'
import type { HeldRequest } from './store.js'
import * as views from './views.js'
import type { NamespaceMap, PairAccepted, PairRequest } from './wire.js'

export type { FederationComponents, FederationSettings, LinkPairs, PairOutcome } from './components.js'
export { INVITE_DEFAULT_MS } from './invites.js'
export { REQUEST_TTL_MS } from './responder.js'

export class FederationService {
  readonly #ctx: LinkContext
  #timer: NodeJS.Timeout | undefined
  #renewing = false

  constructor(components: FederationComponents, settings: FederationSettings) {
    this.#ctx = linkContext(components, settings)
  }

  get settings(): FederationSettings {
    return this.#ctx.s
  }

  /** Loads links and revocations, makes sure every active link has its pairs, starts renewal. */
  async start(): Promise<void> {
    const revoked = await this.#ctx.c.store.revokedJtis(this.#ctx.now())
    const links = await this.#ctx.c.store.links()
    // What the store holds already: nothing to tell the replicas.
    this.#ctx.changes.quietly(() => {
      for (const jti of revoked) this.#ctx.revoked.add(jti)
      for (const link of links) this.#ctx.byPeer.set(link.peer_did, link)
    })
    for (const link of links) {
      // A crash between the link's commit and its pairs leaves them missing: make them now.
      if (link.state === 'active')
        await lifecycle
          .ensurePairs(this.#ctx, link)
          .catch((err) => this.#ctx.c.logger.warn({ err, link: link.link_id }, 'federation: pairs of a link could not be made'))
    }
    this.#timer = setInterval(() => void this.renewDue(), 1000)
    this.#timer.unref()
  }

  /** Reads links and revocations from the store again (another daemon or replica on the same database changed them). */
  async reload(): Promise<void> {
    return reload(this.#ctx)
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = undefined
  }

  // ── synchronous answers for every pull and every request ──

  /** SPEC 7.5: a revoked token id is refused on every request. */
  isRevoked = (jti: string): boolean => this.#ctx.revoked.has(jti)

  /** The token the peer issued to us, for pulls from it (active or paused links). */
  tokenFor = (peerDid: string): string | null => {
    const l = this.#ctx.byPeer.get(peerDid)
    return l && (l.state === 'active' || l.state === 'paused') ? l.held_token : null
  }

  /** The namespace to claim when pulling from `peerDid`: the one it bound us to, if any. */
  targetNamespaceFor = (peerDid: string): string | null => {
    const l = this.#ctx.byPeer.get(peerDid)
    return l && l.state !== 'revoked' ? l.peer_namespace : null
  }

  /** True when a live link with `did` exists (serve_policy "paired" serves it). */
  isLinked = (did: string): boolean => {
    const l = this.#ctx.byPeer.get(did)
    return l !== undefined && l.state !== 'revoked' && l.state !== 'establishing'
  }

  // ── reading (views.ts) ──

  view(link: Link): LinkView {
    return views.view(this.#ctx, link)
  }

  /** Every link as kept in memory (in step with the store), for synchronous reports such as health. */
  snapshot(): LinkView[] {
    return views.snapshot(this.#ctx)
  }

  async links(): Promise<LinkView[]> {
    return views.links(this.#ctx)
  }

  /** A link by id, peer DID, or peer URL. */
  async find(ref: string): Promise<Link> {
    return views.find(this.#ctx, ref)
  }

  // ── the initiator (SPEC 9.1, initiator.ts) ──

  /** `spl federation pair <peer-url>`: verify the manifest, handshake, record, make the pairs. */
  async pair(input: {
    peerUrl: string
    selfUrl: string
    threads: string[]
    map: NamespaceMap
    invite?: string | undefined
  }): Promise<PairOutcome> {
    return initiator.pair(this.#ctx, input)
  }

  /** Asks the responder once whether a held request was decided (SPEC 9.1 step 4). */
  async poll(linkId: string, steps: string[] = []): Promise<PairOutcome> {
    return initiator.poll(this.#ctx, linkId, steps)
  }

  // ── the responder (SPEC 9.1 step 3, responder.ts) ──

  /** `POST /v1/federation/pair` after its proof was checked: accept (200), hold (202) or refuse. */
  async handlePairRequest(
    proofIss: string,
    req: PairRequest,
    origin: string,
  ): Promise<{ status: 200 | 202; body: Record<string, unknown> }> {
    return responder.handlePairRequest(this.#ctx, proofIss, req, origin)
  }

  /** `POST /v1/federation/pair/{id}/poll`: the initiator asks about its held request. */
  async handlePoll(proofIss: string, linkId: string, nonce: string): Promise<{ status: 200 | 202; body: Record<string, unknown> }> {
    return responder.handlePoll(this.#ctx, proofIss, linkId, nonce)
  }

  // ── the operator's decisions (requests.ts, invites.ts) ──

  async requests(): Promise<HeldRequest[]> {
    return requests.requests(this.#ctx)
  }

  async approve(linkId: string): Promise<LinkView> {
    return requests.approve(this.#ctx, linkId)
  }

  async reject(linkId: string): Promise<HeldRequest> {
    return requests.reject(this.#ctx, linkId)
  }

  async invite(input: {
    threads: string[]
    map: NamespaceMap
    expiresMs?: number | undefined
  }): Promise<{ code: string; expires_at: string }> {
    return invites.invite(this.#ctx, input)
  }

  async block(did: string): Promise<void> {
    return requests.block(this.#ctx, did)
  }

  unblock(did: string): Promise<boolean> {
    return requests.unblock(this.#ctx, did)
  }

  blocked() {
    return requests.blocked(this.#ctx)
  }

  // ── lifecycle (SPEC 9.2: lifecycle.ts, revocation.ts) ──

  async pause(ref: string): Promise<LinkView> {
    return lifecycle.pause(this.#ctx, ref)
  }

  async resume(ref: string): Promise<LinkView> {
    return lifecycle.resume(this.#ctx, ref)
  }

  /** Ends a link here: the issued token's jti revoked, the pairs removed, the peer told (best effort). */
  async revoke(ref: string): Promise<{ link: LinkView; notified: boolean; notice?: string }> {
    return revocation.revoke(this.#ctx, ref)
  }

  /** `POST /v1/federation/links/{id}/revoked`: the peer ended the link. */
  async handlePeerRevoked(proofIss: string, linkId: string): Promise<{ link_id: string; state: 'revoked' }> {
    return revocation.handlePeerRevoked(this.#ctx, proofIss, linkId)
  }

  // ── token renewal (renewal.ts) ──

  /** `spl federation refresh`: renew the held token now. */
  async refresh(ref: string): Promise<LinkView> {
    return renewal.refresh(this.#ctx, ref)
  }

  /** `POST /v1/federation/links/{id}/renew`: the peer asks for a fresh token (a light re-handshake). */
  async handleRenew(proofIss: string, linkId: string): Promise<{ object: 'federation_token'; token: string; expires_at: string }> {
    return renewal.handleRenew(this.#ctx, proofIss, linkId)
  }

  /** Renews every held token past two thirds of its life (the timer calls this each second; one round at a time). */
  async renewDue(): Promise<void> {
    if (this.#renewing) return
    this.#renewing = true
    try {
      await renewal.renewDue(this.#ctx)
    } finally {
      this.#renewing = false
    }
  }
}

export type { PairAccepted }
