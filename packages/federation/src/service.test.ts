// The link service's decisions (SPEC 9, 7.5) over a real in-memory SQLite through kysely. The
// responder's doors are called directly with requests built here (a real initiator token from a
// real key); the peer doors the initiator calls over HTTP (renew, revoked) are a small node:http
// shim in front of a second service, doing what the daemon's routes do (proof in, proof out).
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { ManifestSigner } from '@spl/discovery'
import { Keypair, type SplError } from '@spl/identity'
import { createRequestProof, createResponseProof, issuePeerToken, PROOF_HEADER, ReplayCache, verifyRequestProof } from '@spl/transport'
import Database from 'better-sqlite3'
import { Kysely, SqliteDialect } from 'kysely'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type Link, linkIdFor } from './link.js'
import { type FederationComponents, FederationService, type FederationSettings, type LinkPairs, REQUEST_TTL_MS } from './service.js'
import { FederationStore } from './store.js'
import { type PairRequest, peerRevokePath, renewPath } from './wire.js'

const kp = (n: number) => Keypair.fromSeed(new Uint8Array(32).fill(n))
const alice = kp(11) // the initiator
const bob = kp(12) // the responder
const carol = kp(13) // a third instance
const DAY = 86_400_000

/** One clock for every service of a test (tokens and proofs keep the real clock where they read it). */
let clock = 0
const now = () => clock

interface PairRow {
  pair_id: string
  peer_did: string
  peer_url: string
  thread_id: string
  state: string
  last_error: { code: string; message: string } | null
  last_success_at: number | null
  created_at: number
}

/** The sync engine's pairs, in memory: what the service asks of it (one pair per peer and thread). */
class FakePairs implements LinkPairs {
  readonly rows: PairRow[] = []
  async add(input: { peer_did: string; peer_url: string; thread_id: string }) {
    const found = this.rows.find((p) => p.peer_did === input.peer_did && p.thread_id === input.thread_id)
    if (found) return { pair_id: found.pair_id }
    const row: PairRow = {
      ...input,
      pair_id: `pr_${this.rows.length}_${input.thread_id}`,
      state: 'running',
      last_error: null,
      last_success_at: null,
      created_at: clock,
    }
    this.rows.push(row)
    return { pair_id: row.pair_id }
  }
  async remove(id: string) {
    const i = this.rows.findIndex((p) => p.pair_id === id)
    if (i >= 0) this.rows.splice(i, 1)
  }
  async pause(id: string) {
    for (const p of this.rows) if (p.pair_id === id) p.state = 'paused'
  }
  async resume(id: string) {
    for (const p of this.rows) if (p.pair_id === id) p.state = 'running'
  }
  of(did: string) {
    return this.rows.filter((p) => p.peer_did === did)
  }
}

interface Instance {
  kp: Keypair
  store: FederationStore
  pairs: FakePairs
  journal: Record<string, unknown>[]
  bindings: Map<string, string>
  service: FederationService
  db: Kysely<unknown>
  settings: FederationSettings
}

const opened: Kysely<unknown>[] = []
const servers: http.Server[] = []

async function instance(
  who: Keypair,
  settings: Partial<FederationSettings> = {},
  db?: Kysely<unknown>,
  extra: Partial<FederationComponents> = {},
): Promise<Instance> {
  const k = db ?? new Kysely<unknown>({ dialect: new SqliteDialect({ database: new Database(':memory:') }) })
  if (!db) opened.push(k)
  const store = await FederationStore.open(k)
  const pairs = new FakePairs()
  const journal: Record<string, unknown>[] = []
  const bindings = new Map<string, string>()
  const s: FederationSettings = { policy: 'auto', tokenTtlMs: 90 * DAY, degradedAfterMs: DAY, namespace: 'default', ...settings }
  const signer = new ManifestSigner({ keypair: who, version: 'test', namespaces: ['default'], acceptsPairRequests: s.policy })
  const components: FederationComponents = {
    keypair: who,
    store,
    pairs,
    bindings: {
      bindingOf: (did) => bindings.get(did) ?? null,
      bind: async (did, ns) => void bindings.set(did, ns),
      assertUsable: (ns) => {
        if (!['default', 'acme', 'partner'].includes(ns))
          throw Object.assign(new Error(`${ns} is not active`), { code: 'NAMESPACE_REJECTED' })
      },
    },
    journal: async (body) => void journal.push(body),
    ownManifest: (origin) => signer.forOrigin(origin),
    logger: { info: () => {}, warn: () => {} },
    now,
    ...extra,
  }
  const service = new FederationService(components, s)
  return { kp: who, store, pairs, journal, bindings, service, db: k, settings: s }
}

/** A pairing request as `spl federation pair` on `from` sends it to `to` (a fresh nonce each time). */
async function requestFrom(from: Keypair, to: Keypair, extra: Partial<PairRequest> = {}): Promise<PairRequest> {
  const { token } = await issuePeerToken(from, { holderDid: to.did, namespace: 'default', threads: '*' }, clock)
  return {
    initiator_did: from.did,
    initiator_url: 'http://127.0.0.1:1',
    nonce: Buffer.from(crypto.getRandomValues(new Uint8Array(24))).toString('base64url'),
    threads: ['th_a'],
    namespace_map: [],
    token_for_responder: token,
    ...extra,
  }
}

/** The refusal's code and HTTP status (or 'resolved' when `p` did not throw). */
async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p
    return 'resolved'
  } catch (err) {
    const e = err as SplError
    return `${e.status} ${e.code}`
  }
}

/**
 * B's peer doors on a socket, as apps/daemon/src/routes/federation.ts has them: the proof is
 * checked (aud = B), the service answers, the body is signed. `down = true` drops every
 * connection (the peer is unreachable).
 */
async function peerDoors(b: Instance): Promise<{ url: string; calls: string[]; setDown(v: boolean): void }> {
  const replay = new ReplayCache()
  const calls: string[] = []
  let down = false
  const server = http.createServer((req, res) => {
    if (down) {
      req.socket.destroy()
      return
    }
    let raw = ''
    req.on('data', (d) => (raw += d))
    req.on('end', async () => {
      const path = req.url ?? ''
      calls.push(path)
      let status = 200
      let value: unknown
      let iss = ''
      let jti = ''
      try {
        const proof = await verifyRequestProof(req.headers[PROOF_HEADER.toLowerCase()] as string, {
          selfDid: b.kp.did,
          method: req.method ?? 'POST',
          pathAndQuery: path,
          replay,
        })
        iss = proof.iss
        jti = proof.jti
        const linkId = /\/links\/(fed_[0-9a-f]{16})\//.exec(path)?.[1] ?? ''
        if (path === renewPath(linkId)) value = await b.service.handleRenew(proof.iss, linkId)
        else if (path === peerRevokePath(linkId)) value = await b.service.handlePeerRevoked(proof.iss, linkId)
        else throw Object.assign(new Error('no such door'), { status: 404, code: 'NOT_FOUND' })
      } catch (err) {
        const e = err as SplError
        status = e.status ?? 500
        value = { object: 'error', code: e.code ?? 'INTERNAL', message: e.message }
      }
      const body = JSON.stringify(value)
      const headers: Record<string, string> = { 'content-type': 'application/json' }
      if (iss) headers[PROOF_HEADER] = await createResponseProof(b.kp, { callerDid: iss, jti, body })
      res.writeHead(status, headers).end(body)
    })
  })
  servers.push(server)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, calls, setDown: (v) => (down = v) }
}

/**
 * A linked pair of instances: B accepted A's request (auto), and A holds the link as its
 * `pair()` would have stored it (the held token is B's answer), pointing at B's peer doors.
 */
async function linked(bSettings: Partial<FederationSettings> = {}) {
  const a = await instance(alice)
  const b = await instance(bob, bSettings)
  const doors = await peerDoors(b)
  const req = await requestFrom(alice, bob)
  const answer = await b.service.handlePairRequest(alice.did, req, doors.url)
  expect(answer.status).toBe(200)
  const heldToken = answer.body['token_for_initiator'] as string
  const held = JSON.parse(Buffer.from(heldToken.split('.')[1]!, 'base64url').toString()) as { jti: string; exp: number; iat: number }
  const given = JSON.parse(Buffer.from(req.token_for_responder.split('.')[1]!, 'base64url').toString()) as { jti: string; exp: number }
  const link: Link = {
    link_id: linkIdFor(alice.did, bob.did),
    peer_did: bob.did,
    peer_url: doors.url,
    role: 'initiator',
    state: 'active',
    threads: ['th_a'],
    local_namespace: null,
    peer_namespace: null,
    issued_jti: given.jti,
    issued_exp: given.exp * 1000,
    held_token: heldToken,
    held_jti: held.jti,
    held_exp: held.exp * 1000,
    nonce: null,
    created_at: clock,
    updated_at: clock,
    renewal_error: null,
    revoked_by: null,
  }
  await a.store.putLink(link)
  await a.service.start()
  await b.service.start()
  return { a, b, doors, link, held }
}

beforeEach(() => {
  // Whole seconds, so that token times (seconds) and the clock (ms) line up.
  clock = Math.floor(Date.now() / 1000) * 1000
})
afterEach(async () => {
  for (const s of servers.splice(0)) s.close()
  for (const d of opened.splice(0)) await d.destroy()
})

describe('the responder decides (SPEC 9.1 step 3)', () => {
  it('auto: accepts, stores the link with its token, makes the pairs and journals the transition', async () => {
    const b = await instance(bob, { policy: 'auto' })
    const answer = await b.service.handlePairRequest(alice.did, await requestFrom(alice, bob, { threads: ['th_a', 'th_b'] }), 'http://b')
    expect(answer.status).toBe(200)
    expect(answer.body).toMatchObject({ state: 'active', pair_id: linkIdFor(alice.did, bob.did) })
    const [link] = await b.service.links()
    expect(link).toMatchObject({ state: 'active', role: 'responder', peer_did: alice.did, threads: ['th_a', 'th_b'] })
    expect(b.pairs.rows.map((p) => p.thread_id)).toEqual(['th_a', 'th_b'])
    expect(b.journal.map((j) => j['transition'])).toEqual([{ from: 'establishing', to: 'active' }])
    // The answer's token is for A, from B, and its jti is the link's issued one.
    const claims = JSON.parse(Buffer.from((answer.body['token_for_initiator'] as string).split('.')[1]!, 'base64url').toString())
    expect(claims).toMatchObject({ iss: bob.did, sub: alice.did, scope: 'federation:sync', jti: link!.tokens.issued.jti })
    expect(JSON.stringify(link)).not.toContain(answer.body['token_for_initiator'] as string)
  })

  it('auto with a mapping: held for the operator (a stranger does not pick its own binding); approve binds it', async () => {
    const b = await instance(bob, { policy: 'auto' })
    const req = await requestFrom(alice, bob, { namespace_map: [{ local: 'acme', peer: 'partner' }] })
    expect((await b.service.handlePairRequest(alice.did, req, 'http://b')).status).toBe(202)
    expect(b.bindings.size).toBe(0)
    expect((await b.service.requests())[0]).toMatchObject({ namespace_map: [{ local: 'acme', peer: 'partner' }] })
    await b.service.approve(linkIdFor(alice.did, bob.did))
    expect(b.bindings.get(alice.did)).toBe('partner')
  })

  it('never: 403 PAIRING_DISABLED, nothing stored', async () => {
    const b = await instance(bob, { policy: 'never' })
    expect(await refusal(b.service.handlePairRequest(alice.did, await requestFrom(alice, bob), 'http://b'))).toBe('403 PAIRING_DISABLED')
    expect(await b.service.links()).toEqual([])
    expect(await b.service.requests()).toEqual([])
  })

  it('a proof by another DID than the initiator: 401 PROOF_INVALID, nothing stored', async () => {
    const b = await instance(bob)
    expect(await refusal(b.service.handlePairRequest(carol.did, await requestFrom(alice, bob), 'http://b'))).toBe('401 PROOF_INVALID')
    expect(await b.service.links()).toEqual([])
  })

  it('a replayed nonce: 410 NONCE_REPLAYED, also once the first request made a link', async () => {
    const b = await instance(bob, { policy: 'manual' })
    const req = await requestFrom(alice, bob)
    expect((await b.service.handlePairRequest(alice.did, req, 'http://b')).status).toBe(202)
    expect(await refusal(b.service.handlePairRequest(alice.did, req, 'http://b'))).toBe('410 NONCE_REPLAYED')
    const auto = await instance(bob, { policy: 'auto' })
    const first = await requestFrom(alice, bob)
    expect((await auto.service.handlePairRequest(alice.did, first, 'http://b')).status).toBe(200)
    expect(await refusal(auto.service.handlePairRequest(alice.did, first, 'http://b'))).toBe('410 NONCE_REPLAYED')
  })

  it('the same DID asking again for a live link (it lost its side): new tokens, the old one revoked; another mapping: 409 LINK_EXISTS', async () => {
    const b = await instance(bob, { policy: 'auto' })
    const first = await b.service.handlePairRequest(alice.did, await requestFrom(alice, bob), 'http://b')
    const before = (await b.service.links())[0]!.tokens.issued.jti
    const again = await b.service.handlePairRequest(alice.did, await requestFrom(alice, bob), 'http://b')
    expect(again.status).toBe(200)
    expect(again.body['token_for_initiator']).not.toBe(first.body['token_for_initiator'])
    const links = await b.service.links()
    expect(links).toHaveLength(1)
    expect(links[0]!.tokens.issued.jti).not.toBe(before)
    expect(b.service.isRevoked(before)).toBe(true)
    const remapped = await requestFrom(alice, bob, { namespace_map: [{ local: 'default', peer: 'default' }] })
    expect(await refusal(b.service.handlePairRequest(alice.did, remapped, 'http://b'))).toBe('409 LINK_EXISTS')
  })

  it('a token_for_responder that is not the initiator’s own for this instance: 400 TOKEN_INVALID', async () => {
    const b = await instance(bob)
    const { token } = await issuePeerToken(alice, { holderDid: carol.did, namespace: 'default', threads: '*' }, clock)
    expect(
      await refusal(b.service.handlePairRequest(alice.did, await requestFrom(alice, bob, { token_for_responder: token }), 'http://b')),
    ).toBe('400 TOKEN_INVALID')
  })
})

describe('invites', () => {
  it('single use: the code pairs once; another instance with the same code gets INVITE_USED', async () => {
    const b = await instance(bob, { policy: 'invite' })
    const { code } = await b.service.invite({ threads: ['th_a'], map: [] })
    expect((await b.service.handlePairRequest(alice.did, await requestFrom(alice, bob, { invite: code }), 'http://b')).status).toBe(200)
    expect(await refusal(b.service.handlePairRequest(carol.did, await requestFrom(carol, bob, { invite: code }), 'http://b'))).toBe(
      '403 INVITE_USED',
    )
    expect((await b.service.links()).map((l) => l.peer_did)).toEqual([alice.did])
  })

  it('expired: INVITE_EXPIRED with its time; an unknown code: INVITE_INVALID; without a code: held', async () => {
    const b = await instance(bob, { policy: 'invite' })
    const { code, expires_at } = await b.service.invite({ threads: [], map: [], expiresMs: 1000 })
    clock += 1000
    const expired = b.service.handlePairRequest(alice.did, await requestFrom(alice, bob, { invite: code }), 'http://b')
    await expect(expired).rejects.toMatchObject({ code: 'INVITE_EXPIRED', message: expect.stringContaining(expires_at) })
    expect(await refusal(b.service.handlePairRequest(alice.did, await requestFrom(alice, bob, { invite: 'spl-nope' }), 'http://b'))).toBe(
      '403 INVITE_INVALID',
    )
    expect((await b.service.handlePairRequest(alice.did, await requestFrom(alice, bob), 'http://b')).status).toBe(202)
    expect(await b.service.links()).toEqual([])
  })

  it('scope: threads outside the invite, or a mapping it does not name, are refused (INVITE_SCOPE) and the code stays usable', async () => {
    const b = await instance(bob, { policy: 'invite' })
    const { code } = await b.service.invite({ threads: ['th_a'], map: [] })
    expect(
      await refusal(b.service.handlePairRequest(alice.did, await requestFrom(alice, bob, { invite: code, threads: ['th_b'] }), 'http://b')),
    ).toBe('403 INVITE_SCOPE')
    // The invite names no mapping: the holder cannot choose the namespace it is bound to here.
    const grab = await requestFrom(alice, bob, { invite: code, namespace_map: [{ local: 'acme', peer: 'partner' }] })
    expect(await refusal(b.service.handlePairRequest(alice.did, grab, 'http://b'))).toBe('403 INVITE_SCOPE')
    expect(b.bindings.size).toBe(0)
    expect((await b.service.handlePairRequest(alice.did, await requestFrom(alice, bob, { invite: code }), 'http://b')).status).toBe(200)
  })

  it('an invite with a mapping binds the peer to the invite’s namespace (its own side of --map)', async () => {
    const b = await instance(bob, { policy: 'invite' })
    // From B's side: the peer is bound to `partner` here and reads B as… (its own `acme`).
    const { code } = await b.service.invite({ threads: ['th_a'], map: [{ local: 'partner', peer: 'acme' }] })
    const req = await requestFrom(alice, bob, { invite: code, namespace_map: [{ local: 'acme', peer: 'partner' }] })
    expect((await b.service.handlePairRequest(alice.did, req, 'http://b')).status).toBe(200)
    expect(b.bindings.get(alice.did)).toBe('partner')
    expect((await b.service.links())[0]).toMatchObject({ local_namespace: 'partner', peer_namespace: 'acme' })
    expect(b.service.targetNamespaceFor(alice.did)).toBe('acme')
  })

  it('an invite mapping a namespace that is not active here is refused when made', async () => {
    const b = await instance(bob, { policy: 'invite' })
    expect(await refusal(b.service.invite({ threads: [], map: [{ local: 'nope', peer: 'acme' }] }))).toMatch(/NAMESPACE_REJECTED/)
  })
})

describe('held requests and the blocklist', () => {
  it('manual: held (202) even with an invite; listed; approve makes the link and the poll gets the token', async () => {
    const b = await instance(bob, { policy: 'manual' })
    const { code } = await b.service.invite({ threads: [], map: [] })
    const req = await requestFrom(alice, bob, { invite: code })
    const held = await b.service.handlePairRequest(alice.did, req, 'http://b')
    expect(held).toMatchObject({ status: 202, body: { state: 'pending' } })
    const id = linkIdFor(alice.did, bob.did)
    expect((await b.service.requests()).map((r) => r.link_id)).toEqual([id])
    expect((await b.service.handlePoll(alice.did, id, req.nonce)).status).toBe(202)
    // Only the initiator, with its nonce, may poll.
    expect(await refusal(b.service.handlePoll(carol.did, id, req.nonce))).toBe('404 REQUEST_NOT_FOUND')
    expect(await refusal(b.service.handlePoll(alice.did, id, 'x'.repeat(32)))).toBe('404 REQUEST_NOT_FOUND')
    const view = await b.service.approve(id)
    expect(view).toMatchObject({ state: 'active', peer_did: alice.did })
    expect(await b.service.requests()).toEqual([])
    const answer = await b.service.handlePoll(alice.did, id, req.nonce)
    expect(answer.status).toBe(200)
    expect(typeof answer.body['token_for_initiator']).toBe('string')
    expect(await refusal(b.service.approve(id))).toBe('404 REQUEST_NOT_FOUND')
  })

  it('reject: the poll answers 403 PAIR_REJECTED; no link', async () => {
    const b = await instance(bob, { policy: 'manual' })
    const req = await requestFrom(alice, bob)
    await b.service.handlePairRequest(alice.did, req, 'http://b')
    const id = linkIdFor(alice.did, bob.did)
    expect((await b.service.reject(id)).state).toBe('rejected')
    expect(await refusal(b.service.handlePoll(alice.did, id, req.nonce))).toBe('403 PAIR_REJECTED')
    expect(await b.service.links()).toEqual([])
    expect(await b.service.requests()).toEqual([])
  })

  it('block: a held request disappears, the next request is refused at once (403 PEER_BLOCKED) and never listed; unblock undoes', async () => {
    const b = await instance(bob, { policy: 'manual' })
    const req = await requestFrom(carol, bob)
    await b.service.handlePairRequest(carol.did, req, 'http://b')
    expect(await b.service.requests()).toHaveLength(1)
    await b.service.block(carol.did)
    expect(await b.service.requests()).toEqual([])
    expect(await refusal(b.service.handlePoll(carol.did, linkIdFor(carol.did, bob.did), req.nonce))).toBe('404 REQUEST_NOT_FOUND')
    expect(await refusal(b.service.handlePairRequest(carol.did, await requestFrom(carol, bob), 'http://b'))).toBe('403 PEER_BLOCKED')
    expect(await b.service.requests()).toEqual([])
    // Blocked even under auto, and the blocklist is this instance's own (another DID is not affected).
    expect((await b.service.handlePairRequest(alice.did, await requestFrom(alice, bob), 'http://b')).status).toBe(202)
    expect((await b.service.blocked()).map((x) => x.did)).toEqual([carol.did])
    expect(await b.service.unblock(carol.did)).toBe(true)
    expect((await b.service.handlePairRequest(carol.did, await requestFrom(carol, bob), 'http://b')).status).toBe(202)
  })

  it('held requests expire after 7 days: not listed, not approvable, the poll says REQUEST_EXPIRED', async () => {
    const b = await instance(bob, { policy: 'manual' })
    const req = await requestFrom(alice, bob)
    await b.service.handlePairRequest(alice.did, req, 'http://b')
    const id = linkIdFor(alice.did, bob.did)
    clock += REQUEST_TTL_MS - 1
    expect(await b.service.requests()).toHaveLength(1)
    clock += 1
    expect(REQUEST_TTL_MS).toBe(7 * DAY)
    expect(await b.service.requests()).toEqual([])
    expect(await refusal(b.service.approve(id))).toBe('404 REQUEST_NOT_FOUND')
    expect(await refusal(b.service.handlePoll(alice.did, id, req.nonce))).toBe('410 REQUEST_EXPIRED')
  })
})

describe('renewal (SPEC 9.1: before expiry, a light re-handshake)', () => {
  it('is due at two thirds of the held token’s life, not before; both sides move to the new token', async () => {
    const { a, b, doors, link, held } = await linked()
    const due = held.iat * 1000 + ((held.exp - held.iat) * 1000 * 2) / 3
    clock = due - 1
    await a.service.renewDue()
    expect(doors.calls).toEqual([])
    clock = due
    await a.service.renewDue()
    expect(doors.calls).toEqual([renewPath(link.link_id)])
    const [mine] = await a.service.links()
    expect(mine!.tokens.held!.jti).not.toBe(held.jti)
    expect(mine!.renewal_error).toBeNull()
    // B issued it: its link names the new jti, and A's token is the one B now expects.
    const [theirs] = await b.service.links()
    expect(theirs!.tokens.issued.jti).toBe(mine!.tokens.held!.jti)
    expect(a.service.tokenFor(bob.did)).not.toBe(link.held_token)
    // Not due again right after.
    await a.service.renewDue()
    expect(doors.calls).toHaveLength(1)
  })

  it('a failed renewal is kept on the link (renewal_error) and cleared by the next success', async () => {
    const { a, doors, held } = await linked()
    doors.setDown(true)
    clock = held.exp * 1000 - 1000
    await a.service.renewDue()
    const failed = a.service.snapshot()[0]!
    expect(failed.renewal_error).toMatchObject({ code: 'CONNECT_REFUSED' })
    expect(failed.tokens.held!.jti).toBe(held.jti)
    doors.setDown(false)
    clock += 30_001
    await a.service.renewDue()
    const ok = a.service.snapshot()[0]!
    expect(ok.renewal_error).toBeNull()
    expect(ok.tokens.held!.jti).not.toBe(held.jti)
  })

  it('a revoked link is not renewed: LINK_REVOKED', async () => {
    const { a, b, link } = await linked()
    await b.service.revoke(alice.did)
    expect(await refusal(a.service.refresh(link.link_id))).toBe('403 LINK_REVOKED')
  })
})

describe('replicas on one database (docs/postgres.md)', () => {
  it('a revocation made by one replica is told (changed) and refused by the other after its reload; a reload tells nobody', async () => {
    const { b, link } = await linked()
    const [bLink] = await b.service.links()
    const jti = bLink!.tokens.issued.jti
    let told = 0
    const b2 = await instance(bob, {}, b.db, { changed: () => told++ })
    await b2.service.start()
    b2.service.stop()
    expect(told).toBe(0)
    await b2.service.revoke(link.link_id)
    expect(told).toBeGreaterThan(0)
    // The first replica still answers from memory until it reloads.
    expect(b.service.isRevoked(jti)).toBe(false)
    expect(b.service.isLinked(alice.did)).toBe(true)
    await b.service.reload()
    expect(b.service.isRevoked(jti)).toBe(true)
    expect(b.service.isLinked(alice.did)).toBe(false)
    expect(b.service.tokenFor(alice.did)).toBeNull()
    const n = told
    await b2.service.reload()
    expect(told).toBe(n)
    expect(b2.service.isRevoked(jti)).toBe(true)
  })
})

describe('renewal by replicas on one database', () => {
  it('two replicas due at once: one asks the peer (it takes the row first), both then hold the token it got', async () => {
    const { a, doors, link, held } = await linked()
    const a2 = await instance(alice, {}, a.db)
    await a2.service.start()
    a2.service.stop()
    clock = held.iat * 1000 + ((held.exp - held.iat) * 1000 * 2) / 3
    await Promise.all([a.service.renewDue(), a2.service.renewDue()])
    expect(doors.calls).toEqual([renewPath(link.link_id)])
    const stored = await a.store.link(link.link_id)
    expect(stored!.held_jti).not.toBe(held.jti)
    // The winner told the other (components.changed → spl_state): it reloads.
    for (const s of [a.service, a2.service]) await s.reload()
    for (const s of [a.service, a2.service]) expect(s.tokenFor(bob.did)).toBe(stored!.held_token)
    // B issued exactly one new token, the one the row holds.
    expect(doors.calls).toHaveLength(1)
  })
})

describe('revocation (SPEC 9.2, 7.5)', () => {
  it('puts the issued jti on the list, stops the pairs, tells the peer; the list survives a new service over the same database', async () => {
    const { a, b, link } = await linked()
    const [bLink] = await b.service.links()
    const jti = bLink!.tokens.issued.jti
    expect(b.pairs.rows).toHaveLength(1)
    // B's link points at A's made-up URL (127.0.0.1:1): the notice fails, the revocation stands.
    const out = await b.service.revoke(bLink!.link_id)
    expect(out).toMatchObject({ notified: false, link: { state: 'revoked', revoked_by: 'local' } })
    expect(b.service.isRevoked(jti)).toBe(true)
    expect(b.pairs.rows).toEqual([])
    expect(b.service.tokenFor(alice.did)).toBeNull()
    expect(b.service.isLinked(alice.did)).toBe(false)
    b.service.stop()
    const again = await instance(bob, {}, b.db)
    expect(again.service.isRevoked(jti)).toBe(false)
    await again.service.start()
    again.service.stop()
    expect(again.service.isRevoked(jti)).toBe(true)
    expect((await again.service.links())[0]).toMatchObject({ state: 'revoked' })
    // A was not told (its link is as it was).
    expect((await a.service.links())[0]!.stored_state).toBe('active')
    expect(link.state).toBe('active')
  })

  it('revoking again re-sends the notice: the peer then shows revoked (by the peer) and revokes its own token', async () => {
    const { a, b, link } = await linked()
    // A revokes; B's doors are up, so B is told at once.
    const out = await a.service.revoke(link.link_id)
    expect(out.notified).toBe(true)
    const [bLink] = await b.service.links()
    expect(bLink).toMatchObject({ state: 'revoked', revoked_by: 'peer' })
    expect(b.service.isRevoked(bLink!.tokens.issued.jti)).toBe(true)
    // Again: still told (idempotent on B).
    expect((await a.service.revoke(link.link_id)).notified).toBe(true)
    // On B (revoked by the peer) a revoke sends nothing.
    expect(await b.service.revoke(bLink!.link_id)).toMatchObject({ notified: false, notice: 'already revoked by the peer' })
  })

  it('a notice from another DID than the link’s peer is refused', async () => {
    const { b } = await linked()
    const id = linkIdFor(alice.did, bob.did)
    expect(await refusal(b.service.handlePeerRevoked(carol.did, id))).toBe('404 LINK_NOT_FOUND')
    expect((await b.service.links())[0]!.state).toBe('active')
  })
})

describe('the link’s shown state', () => {
  it('degraded when the peer refused our token (its code is in the pair’s message) or after degraded_after of failures', async () => {
    const { a, link } = await linked()
    const pair = a.pairs.rows[0]!
    expect(a.service.snapshot()[0]!.state).toBe('active')
    pair.state = 'failing'
    pair.last_error = {
      code: 'HTTP_4XX',
      message: 'peer answered 401 (TOKEN_REVOKED: peer token rejected: it has been revoked); the peer rejected the request',
    }
    expect(a.service.snapshot()[0]!.state).toBe('degraded')
    pair.last_error = { code: 'CONNECT_REFUSED', message: 'cannot connect to the peer (ECONNREFUSED)' }
    pair.last_success_at = clock
    clock += DAY
    expect(a.service.snapshot()[0]!.state).toBe('active')
    clock += 1
    expect(a.service.snapshot()[0]!.state).toBe('degraded')
    expect(link.link_id).toMatch(/^fed_[0-9a-f]{16}$/)
  })

  it('pause stops the pairs, resume restarts them; both are journaled', async () => {
    const { a, link } = await linked()
    expect((await a.service.pause(link.link_id)).state).toBe('paused')
    expect(a.pairs.rows.map((p) => p.state)).toEqual(['paused'])
    expect((await a.service.resume(link.link_id)).state).toBe('active')
    expect(a.pairs.rows.map((p) => p.state)).toEqual(['running'])
    expect(a.journal.map((j) => j['transition'])).toEqual([
      { from: 'active', to: 'paused' },
      { from: 'paused', to: 'active' },
    ])
  })
})

// The shim must check what the daemon checks, or the renewal tests above would prove less.
describe('the test’s peer doors', () => {
  it('refuse a proof for another audience (the shim checks what the daemon checks)', async () => {
    const { doors, link } = await linked()
    const path = renewPath(link.link_id)
    const proof = await createRequestProof(alice, { method: 'POST', pathAndQuery: path, aud: carol.did })
    const res = await fetch(`${doors.url}${path}`, { method: 'POST', headers: { [PROOF_HEADER]: proof.token }, body: '{}' })
    expect(res.status).toBe(401)
  })
})
