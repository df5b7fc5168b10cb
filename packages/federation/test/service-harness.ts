// Shared by the link service's tests (SPEC 9, 7.5): services over a real in-memory SQLite
// through kysely. The responder's doors are called directly with requests built here (a real
// initiator token from a real key); the peer doors the initiator calls over HTTP (renew, revoked)
// are a small node:http shim in front of a second service, doing what the daemon's routes do
// (proof in, proof out).
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { ManifestSigner } from '@spl/discovery'
import { Keypair, type SplError } from '@spl/identity'
import { createResponseProof, issuePeerToken, PROOF_HEADER, ReplayCache, verifyRequestProof } from '@spl/transport'
import Database from 'better-sqlite3'
import { Kysely, SqliteDialect } from 'kysely'
import { afterEach, beforeEach, expect } from 'vitest'
import { type Link, linkIdFor } from '../src/link.js'
import { type FederationComponents, FederationService, type FederationSettings, type LinkPairs } from '../src/service.js'
import { FederationStore } from '../src/store.js'
import { type PairRequest, peerRevokePath, renewPath } from '../src/wire.js'

const kp = (n: number) => Keypair.fromSeed(new Uint8Array(32).fill(n))
export const alice = kp(11) // the initiator
export const bob = kp(12) // the responder
export const carol = kp(13) // a third instance
export const DAY = 86_400_000

/** One clock (`clock.ms`) for every service of a test (tokens and proofs keep the real clock where they read it). */
export const clock = { ms: 0 }
const now = () => clock.ms

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
      created_at: clock.ms,
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

export async function instance(
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
export async function requestFrom(from: Keypair, to: Keypair, extra: Partial<PairRequest> = {}): Promise<PairRequest> {
  const { token } = await issuePeerToken(from, { holderDid: to.did, namespace: 'default', threads: '*' }, clock.ms)
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
export async function refusal(p: Promise<unknown>): Promise<string> {
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
export async function linked(bSettings: Partial<FederationSettings> = {}) {
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
    created_at: clock.ms,
    updated_at: clock.ms,
    renewal_error: null,
    revoked_by: null,
  }
  await a.store.putLink(link)
  await a.service.start()
  await b.service.start()
  return { a, b, doors, link, held }
}

/** The clock at a whole second before each test; servers and databases closed after it. */
export function useServiceHarness(): void {
  beforeEach(() => {
    // Whole seconds, so that token times (seconds) and the clock (ms) line up.
    clock.ms = Math.floor(Date.now() / 1000) * 1000
  })
  afterEach(async () => {
    for (const s of servers.splice(0)) s.close()
    for (const d of opened.splice(0)) await d.destroy()
  })
}
