// Issue 12, the store-and-forward relay (SPEC 10), with real `spl` processes: A sends, B
// receives, R relays. B registers at R; A learns R from B's signed manifest; while B is away A
// seals what B would have pulled and deposits it at R; B, back while A is down, collects it,
// verifies every record and stores each once. Then a relay that lies, and the relay's limits.
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { Keypair, sealTo } from '@spl/identity'
import { type PeerRefusedError, signedRequest } from '@spl/transport'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sealDeposit } from '../../../packages/sync-engine/dist/index.js'
import { ok, spl, TestDaemon } from '../../../test-utils/test-daemon.js'
import { until } from '../../../test-utils/until.js'

type Db = { prepare(sql: string): { run(...a: unknown[]): unknown; all(...a: unknown[]): unknown[] }; close(): void }
const Database = createRequire(new URL('../../daemon/package.json', import.meta.url))('better-sqlite3') as new (
  file: string,
  o?: object,
) => Db

interface RelayOut {
  enabled: boolean
  mailboxes: { depth: number; deposits: number; deliveries: number; refused: Record<string, number> } | null
  receiver: { deposits: number; records: number; stored: number; duplicates: number; refused: Record<string, number> }
  depositor: { routes: { receiver: string; url: string; origin: string }[]; deposits: number; records: number }
}
interface PairOut {
  pair_id: string
  peer_did: string
  thread_id: string
  state: string
  last_success_at: number | null
  totals: { records_stored: number; duplicates: number; records_received: number }
}

const homes: string[] = []
let a: TestDaemon
let b: TestDaemon
let r: TestDaemon

async function startWith(config: string): Promise<TestDaemon> {
  const home = mkdtempSync(path.join(os.tmpdir(), 'spl-relay-'))
  homes.push(home)
  ok(await spl(home, ['init']), 'spl init')
  appendFileSync(path.join(home, 'config.toml'), `\n${config}\n`)
  return TestDaemon.start({ home })
}

const relayOf = (d: TestDaemon) => d.api.get<RelayOut>('/v1/relay')
const pairOf = async (d: TestDaemon, peer: string, thread: string) =>
  (await d.api.get<{ data: PairOut[] }>('/v1/sync/pairs')).data.find((p) => p.peer_did === peer && p.thread_id === thread)

/** A's key, to make deposits a lying relay could only replay or alter (never forge). */
function keyOf(d: TestDaemon): Keypair {
  const jwk = JSON.parse(readFileSync(path.join(d.home, 'keys', 'primary.key'), 'utf8')) as { d: string }
  return Keypair.fromSeed(Buffer.from(jwk.d, 'base64url'))
}

/** Writes a row into R's mailbox table directly: what a relay that lies would serve. */
function plant(relay: TestDaemon, receiver: string, sender: string, sealed: string): void {
  const db = new Database(path.join(relay.home, 'spl.db'), { timeout: 5000 })
  try {
    const now = Date.now()
    db.prepare(
      'insert into spl_relay_deposits (id, receiver, sender, size, deposited_at, expires_at, sealed) values (?, ?, ?, ?, ?, ?, ?)',
    ).run(`mbx_planted${Math.random().toString(16).slice(2, 14)}`, receiver, sender, sealed.length, now, now + 3_600_000, sealed)
  } finally {
    db.close()
  }
}

beforeAll(async () => {
  r = await startWith('[relay]\nenabled = true\nsender_bytes_per_day = 8388608')
  b = await startWith('[relay]\npoll_interval = "500ms"\n[federation]\naccept_pair_requests = "auto"')
  a = await startWith('[relay]\ndeposit_after = "2s"\n[federation]\naccept_pair_requests = "auto"')
  ok(await b.spl('relay', 'register', r.url), 'relay register')
  // B and A linked on th_x (B pulls th_x from A, and A from B).
  ok(await b.spl('federation', 'pair', a.url, '--thread', 'th_x', '--json'), 'federation pair')
}, 120_000)

afterAll(async () => {
  for (const d of [a, b, r]) await d?.stop()
  for (const h of homes) rmSync(h, { recursive: true, force: true })
})

describe('a relay between peers that are never online together', () => {
  const texts = Array.from({ length: 100 }, (_, i) => `plane record ${i} ${Math.random().toString(36).slice(2)}`)
  const ids: string[] = []
  let first: string
  let secret: string

  it('B names R in its manifest, and A learns it while B pulls', async () => {
    const list = ok(await b.spl('relay', 'list', '--json'), 'relay list')
    expect(JSON.parse(list.stdout)).toEqual([expect.objectContaining({ url: r.url, relay_did: r.did })])
    const manifest = (await (await fetch(`${b.url}/.well-known/syncropel`)).json()) as { federation_manifest: { relays: unknown[] } }
    expect(manifest.federation_manifest.relays).toEqual([{ url: r.url, did: r.did }])
    first = await a.emit('th_x', 'while both are up')
    await until('the first record on B', async () => ((await b.threadRecordIds('th_x')).includes(first) ? true : undefined))
    await until('A learns R for B', async () =>
      (await relayOf(a)).depositor.routes.some((x) => x.receiver === b.did && x.url === r.url && x.origin === 'manifest')
        ? true
        : undefined,
    )
  })

  it('deposits what B missed while away, sealed, and R holds no body or id in clear (also across a restart of R)', async () => {
    await b.stop()
    for (const t of texts) ids.push(await a.emit('th_x', t))
    // One record B may not read (a namespace of A's that B is granted nothing in): the consent filter applies to deposits too.
    ok(await a.spl('namespace', 'create', 'secret'), 'namespace create')
    secret = await a.emit('th_x', 'not for B', { namespace: 'secret' })
    await until('A deposited all 100', async () => ((await relayOf(a)).depositor.records >= 100 ? true : undefined), 30_000)
    const boxes = ok(await r.spl('relay', 'mailboxes', '--json'), 'relay mailboxes')
    const mine = (JSON.parse(boxes.stdout) as { receiver: string; waiting: number }[]).find((m) => m.receiver === b.did)
    expect(mine?.waiting).toBeGreaterThan(0)
    // Restart R between deposit and receipt: the mailbox is in its database.
    await r.stop()
    const files = ['spl.db', 'spl.db-wal'].map((f) => path.join(r.home, f)).filter((f) => existsSync(f))
    const bytes = files.map((f) => readFileSync(f).toString('latin1')).join('')
    expect(bytes).toContain(b.did)
    for (const probe of [texts[0]!, texts[99]!, ids[0]!, ids[50]!]) expect(bytes).not.toContain(probe)
    r = await r.restart()
    const again = ok(await r.spl('relay', 'mailboxes', '--json'), 'relay mailboxes after restart')
    expect((JSON.parse(again.stdout) as { receiver: string; waiting: number }[]).find((m) => m.receiver === b.did)?.waiting).toBe(
      mine?.waiting,
    )
  })

  it('B, back while A is down, has all 100 within seconds, verified, once; the mailbox is empty after the ack', async () => {
    await a.stop()
    b = await b.restart()
    const t0 = Date.now()
    await until('all 100 on B', async () => {
      const held = new Set(await b.threadRecordIds('th_x'))
      return ids.every((id) => held.has(id)) ? true : undefined
    })
    const seconds = (Date.now() - t0) / 1000
    expect(seconds).toBeLessThan(15)
    const onB = await b.threadRecordIds('th_x')
    expect(onB.length).toBe(new Set(onB).size)
    expect(onB.filter((id) => ids.includes(id))).toHaveLength(100)
    const full = (await b.api.get<{ data: { id: string; redacted?: boolean }[] }>('/v1/threads/th_x/records?limit=10000')).data
    expect(full.filter((e) => e.id === secret && !e.redacted)).toEqual([])
    const got = await relayOf(b)
    expect(got.receiver.stored).toBeGreaterThanOrEqual(100)
    expect(got.receiver.stored).toBeLessThanOrEqual(101)
    expect(got.receiver.refused).toEqual({})
    await until('R empty for B', async () =>
      (await r.api.get<{ data: { receiver: string; waiting: number }[] }>('/v1/relay/mailboxes')).data.find((m) => m.receiver === b.did)
        ?.waiting === 0
        ? true
        : undefined,
    )
    // The pair counted them as a pull would.
    const pair = await pairOf(b, a.did, 'th_x')
    expect(pair?.totals.records_stored).toBeGreaterThanOrEqual(101)
  })

  it("when A is back, B's next pull stores nothing new: all duplicates", async () => {
    const before = (await pairOf(b, a.did, 'th_x'))!
    a = await a.restart()
    ok(await b.spl('fleet', 'sync', 'kick', before.pair_id), 'kick')
    const after = await until(
      'a successful pull after A is back',
      async () => {
        const p = await pairOf(b, a.did, 'th_x')
        return p &&
          p.last_success_at !== null &&
          p.last_success_at > Date.now() - 10_000 &&
          p.totals.duplicates >= before.totals.duplicates + 100
          ? p
          : undefined
      },
      30_000,
    )
    expect(after.totals.records_stored).toBe(before.totals.records_stored)
  })
})

describe('a relay that lies', () => {
  it('refuses a tampered deposit, a replayed one and one sealed to another DID, counting each; stores nothing bad', async () => {
    const aKey = keyOf(a)
    const envelopes = (await a.api.get<{ data: unknown[] }>('/v1/threads/th_x/records?limit=3')).data.map((e) => JSON.stringify(e))
    const before = await b.threadRecordIds('th_x')
    const { refused: refusedBefore, deposits: takenBefore } = (await relayOf(b)).receiver
    // A genuine deposit, delivered once (taken), then served again by the relay (a replay).
    const genuine = await sealDeposit(aKey, b.did, { thread: 'th_x', records: envelopes, ttlMs: 3_600_000 })
    plant(r, b.did, a.did, genuine.sealed)
    await until('the genuine deposit taken', async () => ((await relayOf(b)).receiver.deposits > takenBefore ? true : undefined))
    plant(r, b.did, a.did, genuine.sealed)
    // Tampered: one byte of the ciphertext changed.
    const parts = (await sealDeposit(aKey, b.did, { thread: 'th_x', records: envelopes, ttlMs: 3_600_000 })).sealed.split('.')
    const ct = Buffer.from(parts[3]!, 'base64url')
    ct[5] = ct[5]! ^ 0x01
    parts[3] = ct.toString('base64url')
    plant(r, b.did, a.did, parts.join('.'))
    // Sealed to someone else entirely.
    const other = Keypair.generate()
    plant(r, b.did, a.did, (await sealDeposit(aKey, other.did, { thread: 'th_x', records: envelopes, ttlMs: 3_600_000 })).sealed)
    // Sealed to B but with a forged inner signature (a record set A never vouched for).
    const forged = `{"v":1,"id":"dep_${'ab'.repeat(16)}","iss":"${a.did}","aud":"${b.did}","thread":"th_x","iat":1,"exp":${Date.now() + 60_000},"records":[]}`
    plant(r, b.did, a.did, await sealTo(b.did, Buffer.from(`${'A'.repeat(86)}.${forged}`)))
    const refused = await until('four refusals counted at B', async () => {
      const x = (await relayOf(b)).receiver.refused
      const n = (c: string) => (x[c] ?? 0) - (refusedBefore[c] ?? 0)
      return n('DEPOSIT_REPLAYED') >= 1 && n('DEPOSIT_UNSEALABLE') >= 2 && n('DEPOSIT_FORGED') >= 1 ? x : undefined
    })
    expect(refused).toBeDefined()
    expect(await b.threadRecordIds('th_x')).toEqual(before)
    // Refused deposits are dropped at the relay too (acked), so they are not served forever.
    await until('R empty for B', async () =>
      (await r.api.get<{ data: { receiver: string; waiting: number }[] }>('/v1/relay/mailboxes')).data.find((m) => m.receiver === b.did)
        ?.waiting === 0
        ? true
        : undefined,
    )
  })
})

describe("the relay's limits and doors", () => {
  const q = Keypair.generate()
  const s1 = Keypair.generate()
  const s2 = Keypair.generate()
  let sealed: string

  const deposit = (sender: Keypair, receiver: string, box: unknown) =>
    signedRequest(sender, { peerUrl: r.url, method: 'POST', path: `/v1/mailbox/${receiver}`, body: { sealed: box }, aud: r.did })
  const refusal = (p: Promise<unknown>) =>
    p.then(
      () => null,
      (e: unknown) => e as PeerRefusedError,
    )

  beforeAll(async () => {
    await signedRequest(q, { peerUrl: r.url, method: 'POST', path: `/v1/mailbox/${q.did}/register`, body: {}, aud: r.did })
    sealed = (await sealDeposit(s1, q.did, { thread: 'th_q', records: ['{"x":1}'], ttlMs: 3_600_000 })).sealed
  })

  it('refuses a deposit for an unregistered DID (404) and a receive without a proof by that DID (401)', async () => {
    const stranger = Keypair.generate()
    expect(await refusal(deposit(s1, stranger.did, sealed))).toMatchObject({ httpStatus: 404, remoteCode: 'RECEIVER_NOT_REGISTERED' })
    const bare = await fetch(`${r.url}/v1/mailbox/${q.did}/receive`)
    expect(bare.status).toBe(401)
    expect(((await bare.json()) as { code: string }).code).toBe('PROOF_INVALID')
    const byOther = await refusal(signedRequest(s1, { peerUrl: r.url, method: 'GET', path: `/v1/mailbox/${q.did}/receive`, aud: r.did }))
    expect(byOther).toMatchObject({ httpStatus: 401, remoteCode: 'NOT_YOUR_MAILBOX' })
    const own = await signedRequest<{ data: unknown[] }>(q, {
      peerUrl: r.url,
      method: 'GET',
      path: `/v1/mailbox/${q.did}/receive`,
      aud: r.did,
    })
    expect(own.json.data).toEqual([])
  })

  it('takes 10,000 waiting deposits for one receiver and refuses the 10,001st with 507', async () => {
    let next = 0
    const worker = async () => {
      while (next < 10_000) {
        next++
        await deposit(s1, q.did, sealed)
      }
    }
    await Promise.all(Array.from({ length: 8 }, worker))
    const full = await refusal(deposit(s1, q.did, sealed))
    expect(full).toMatchObject({ httpStatus: 507, remoteCode: 'MAILBOX_FULL' })
    const boxes = (await r.api.get<{ data: { receiver: string; waiting: number }[] }>('/v1/relay/mailboxes')).data
    expect(boxes.find((m) => m.receiver === q.did)?.waiting).toBe(10_000)
  }, 180_000)

  it('refuses a sender over its bytes of the day (429 with Retry-After) and a 1.1 MiB deposit (413)', async () => {
    const p = await signedRequest(q, {
      peerUrl: r.url,
      method: 'POST',
      path: `/v1/mailbox/${s2.did}/register`,
      body: {},
      aud: r.did,
    }).catch(() => null)
    expect(p).toBeNull() // a DID registers only its own mailbox
    await signedRequest(s2, { peerUrl: r.url, method: 'POST', path: `/v1/mailbox/${s2.did}/register`, body: {}, aud: r.did })
    const big = (await sealDeposit(s2, s2.did, { thread: 'th_q', records: [JSON.stringify({ pad: 'p'.repeat(700_000) })], ttlMs: 60_000 }))
      .sealed
    expect(big.length).toBeLessThan(1024 * 1024)
    let over: PeerRefusedError | null = null
    for (let i = 0; i < 20 && !over; i++) over = await refusal(deposit(s2, s2.did, big))
    expect(over).toMatchObject({ httpStatus: 429, remoteCode: 'SENDER_QUOTA_EXCEEDED' })
    expect(over?.retryAfterMs).toBeGreaterThan(0)
    const huge = `${sealed.slice(0, 40)}${'A'.repeat(Math.round(1.1 * 1024 * 1024))}`
    expect(await refusal(deposit(s1, s2.did, huge))).toMatchObject({ httpStatus: 413 })
    const status = await relayOf(r)
    expect(status.mailboxes?.refused).toMatchObject({ MAILBOX_FULL: 1, SENDER_QUOTA_EXCEEDED: 1, RECEIVER_NOT_REGISTERED: 1 })
    expect(status.mailboxes?.refused['DEPOSIT_TOO_LARGE']).toBeGreaterThanOrEqual(1)
  })

  it('answers malformed bodies, JWEs and queries with 4xx and a code, and stays up', async () => {
    const raw = async (method: string, p: string, body: string | undefined, signer = s1) => {
      const { createRequestProof } = await import('@spl/transport')
      const proof = await createRequestProof(signer, { method, pathAndQuery: p, aud: r.did })
      const res = await fetch(`${r.url}${p}`, { method, headers: { 'SPL-Proof': proof.token, 'content-type': 'application/json' }, body })
      return { status: res.status, code: ((await res.json()) as { code?: string }).code }
    }
    const dep = `/v1/mailbox/${q.did}`
    const cases: [string, string, string | undefined, number, string | undefined][] = [
      ['POST', dep, '{not json', 400, 'INVALID_JSON'],
      ['POST', dep, '{"sealed":5}', 400, 'INVALID_REQUEST'],
      ['POST', dep, '{"sealed":"a.b.c.d.e"}', 400, 'DEPOSIT_MALFORMED'],
      ['POST', dep, '{"sealed":"eyJhbGciOiJub25lIn0..AAAAAAAAAAAAAAAA.AAAA.AAAAAAAAAAAAAAAAAAAAAA"}', 400, 'DEPOSIT_MALFORMED'],
      ['POST', dep, '[]', 400, 'INVALID_REQUEST'],
      ['POST', dep, `{"sealed":"${'x'.repeat(3 * 1024 * 1024)}"}`, 413, 'DEPOSIT_TOO_LARGE'],
      ['POST', '/v1/mailbox/not-a-did', '{"sealed":"x"}', 400, 'INVALID_REQUEST'],
      ['GET', `/v1/mailbox/${q.did}/receive?limit=abc`, undefined, 400, 'INVALID_REQUEST'],
      ['POST', `/v1/mailbox/${q.did}/ack`, '{"ids":"all"}', 400, 'INVALID_REQUEST'],
    ]
    for (const [method, p, body, status, code] of cases) {
      const signer = p.includes('/receive') || p.endsWith('/ack') ? q : s1
      expect({ p: p.slice(0, 60), body: body?.slice(0, 40), ...(await raw(method, p, body, signer)) }).toEqual({
        p: p.slice(0, 60),
        body: body?.slice(0, 40),
        status,
        code,
      })
    }
    expect((await fetch(`${r.url}/health`)).status).toBe(200)
  })
})

describe('operating a relay from the CLI', () => {
  it('spl status shows the Relay block, spl doctor checks the relay answers, spl relay unregister closes the mailbox', async () => {
    const status = ok(await b.spl('status'), 'status').stdout
    expect(status).toContain('Relay')
    expect(status).toContain(`collects from ${r.url}`)
    const onR = ok(await r.spl('status'), 'status on R').stdout
    expect(onR).toMatch(/mailboxes: \d+ waiting, \d+ deposited, \d+ delivered/)
    // (doctor exits 1 here for other reasons: a pair while bound to loopback.)
    const doctor = JSON.parse((await b.spl('doctor', '--json')).stdout) as unknown
    expect(JSON.stringify(doctor)).toMatch(/"name":"relays","status":"pass"/)
    const metrics = await (await fetch(`${r.url}/metrics`)).text()
    expect(metrics).toMatch(/spl_relay_mailbox_depth \d+/)
    expect(metrics).toMatch(/spl_relay_mailbox_total\{kind="deposited"\} \d+/)
    ok(await b.spl('relay', 'unregister', r.url), 'relay unregister')
    expect(JSON.parse(ok(await b.spl('relay', 'list', '--json'), 'relay list').stdout)).toEqual([])
    const boxes = JSON.parse(ok(await r.spl('relay', 'mailboxes', '--json'), 'mailboxes').stdout) as { receiver: string }[]
    expect(boxes.some((m) => m.receiver === b.did)).toBe(false)
    const manifest = (await (await fetch(`${b.url}/.well-known/syncropel`)).json()) as { federation_manifest: { relays: unknown[] } }
    expect(manifest.federation_manifest.relays).toEqual([])
    // A daemon that is not a relay says so.
    const notRelay = await b.spl('relay', 'mailboxes')
    expect(notRelay.code).not.toBe(0)
    expect(notRelay.stderr + notRelay.stdout).toContain('RELAY_DISABLED')
  })
})
