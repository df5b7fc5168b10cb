import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { Keypair } from '@spl/identity'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createNetNs, type NetNs, nsFetch } from '../../../test-utils/netns.js'
import { type Answer, expectErrorEnvelope } from '../test/harness.js'
import { createApp } from './app.js'
import { homePaths } from './config.js'
import { initHome } from './home.js'
import { createLogger } from './logger.js'
import { SplDaemon } from './server.js'

// Who may act (SPEC 7.1, issue 18) against a real daemon on a socket: every admin door from
// another host (a network namespace) × (no token, wrong token, proxy headers, token); every admin
// door from loopback × the signs of a web page, a rebinding Host or a proxy; and the refusals of
// the HTTP layer itself (431 and friends), which must carry the envelope too.

let daemon: SplDaemon
let home: string
let token: string
let port: number

beforeAll(async () => {
  home = path.join(mkdtempSync(path.join(os.tmpdir(), 'spl-doors-')), 'home')
  initHome(home)
  daemon = await SplDaemon.create({ home, host: '0.0.0.0', port: 0, mdns: false, logger: createLogger({ silent: true }) })
  await daemon.start()
  token = readFileSync(homePaths(home).adminToken, 'utf8').trim()
  port = Number(new URL(daemon.url).port)
})

afterAll(async () => {
  await daemon?.destroy()
  if (home) rmSync(path.dirname(home), { recursive: true, force: true })
})

const OPEN = new Set(['/health', '/v1/identity', '/openapi.json', '/v1/sync/changes'])
// The did:sync directory's doors are open too: each write is signed by the DID it is about (SPEC 8).
// So are the pairing handshake's and the relay's peer doors: each checks an SPL-Proof instead (SPEC 9.1, 10).
const PEER_DOORS = new Set([
  '/v1/sync/reconcile',
  '/v1/sync/watch',
  '/v1/federation/pair',
  '/v1/federation/pair/:id/poll',
  '/v1/federation/links/:id/revoked',
  '/v1/federation/links/:id/renew',
  // A relay's mailbox doors (SPEC 10): proof-checked too, each by the DID it is about.
  '/v1/mailbox/:did',
  '/v1/mailbox/:did/register',
  '/v1/mailbox/:did/receive',
  '/v1/mailbox/:did/ack',
])
// The web console's doors (/ui, /ui/*) have their own session rules: routes/ui.test.ts. Its /v1 doors are in the matrix.
const isOpen = (p: string) =>
  OPEN.has(p) || PEER_DOORS.has(p) || p.startsWith('/.well-known/') || p.startsWith('/directory/') || p === '/ui' || p.startsWith('/ui/')

/** Every admin door of the app as built (so a door added later is in the matrix), params filled in. */
function adminDoors(): { method: string; path: string }[] {
  const seen = new Set<string>()
  const doors: { method: string; path: string }[] = []
  for (const r of createApp(daemon.ctx).routes) {
    if (r.method === 'ALL' || isOpen(r.path) || r.path.includes('*')) continue
    const p = r.path
      .replace(':thread', 'th_matrix')
      .replace(':did', Keypair.fromSeed(new Uint8Array(32).fill(9)).did)
      .replace(/:[a-z_]+/g, 'x')
    const key = `${r.method} ${p}`
    if (!seen.has(key)) doors.push({ method: r.method, path: p })
    seen.add(key)
  }
  return doors
}

/** Bodies that would change state if the request were let in. */
function bodyFor(method: string, p: string): string | undefined {
  if (method !== 'POST' && method !== 'PUT' && method !== 'PATCH') return undefined
  const bodies: Record<string, unknown> = {
    '/v1/records': { act: 'INTEND', thread: 'th_matrix', body: { text: 'let in' } },
    '/v1/namespaces': { namespace: 'matrix' },
    '/v1/consent/grants': { target_namespace: 'public' },
    '/v1/consent/bindings': { did: Keypair.fromSeed(new Uint8Array(32).fill(8)).did, namespace: 'default' },
    '/v1/sync/pairs': {
      peer_did: Keypair.fromSeed(new Uint8Array(32).fill(7)).did,
      peer_url: 'http://127.0.0.1:1',
      thread_id: 'th_matrix',
    },
    '/v1/sync/once': { peer: 'http://127.0.0.1:1', thread: 'th_matrix' },
  }
  return JSON.stringify(bodies[p] ?? {})
}

async function state() {
  const ctx = daemon.ctx
  return {
    records: await ctx.store.count(),
    grants: ctx.registry.grants().length,
    bindings: ctx.registry.bindings().length,
    namespaces: ctx.registry.namespaces().length,
    pairs: ctx.engine.listPairs({ all: true }).length,
  }
}

/** One request over its own loopback connection with exactly these headers (Host included). */
function raw(method: string, p: string, headers: Record<string, string>, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: p, headers, agent: false, setHost: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        let json: unknown = text
        try {
          json = JSON.parse(text)
        } catch {
          // left as text: the envelope check fails on it
        }
        resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), json })
      })
    })
    req.on('error', reject)
    req.end(body)
  })
}

/** Writes `request` on a raw socket and reads until the server closes: the status and the body. */
async function rawSocket(request: string | Buffer): Promise<{ head: string; status: number; body: unknown }> {
  const socket = net.connect(port, '127.0.0.1')
  const chunks: Buffer[] = []
  socket.on('data', (c: Buffer) => chunks.push(c))
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()))
  socket.on('error', () => {})
  socket.write(request)
  await closed
  const text = Buffer.concat(chunks).toString('utf8')
  const split = text.indexOf('\r\n\r\n')
  const head = split < 0 ? text : text.slice(0, split)
  const bodyText = split < 0 ? '' : text.slice(split + 4)
  let body: unknown = bodyText
  try {
    body = JSON.parse(bodyText)
  } catch {
    // left as text
  }
  return { head, status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0), body }
}

const asAnswer = (r: { status: number; head: string; body: unknown }): Answer => ({
  status: r.status,
  type: /\r\ncontent-type: *([^\r]*)/i.exec(r.head)?.[1] ?? '',
  json: r.body,
})

describe('the doors list', () => {
  it('holds every admin door the app has (a door added later is in the matrices below)', () => {
    const doors = adminDoors().map((d) => `${d.method} ${d.path}`)
    expect(doors.length).toBeGreaterThanOrEqual(20)
    for (const d of ['POST /v1/records', 'POST /v1/consent/grants', 'GET /v1/threads', 'GET /metrics', 'DELETE /v1/sync/pairs/x']) {
      expect(doors).toContain(d)
    }
  })
})

describe('SPEC 7.1 every admin door from another host (network namespace)', () => {
  let ns: NetNs
  beforeAll(() => {
    ns = createNetNs()
  })
  afterAll(() => ns?.remove())

  async function remote(method: string, p: string, headers: Record<string, string>): Promise<Answer> {
    const body = bodyFor(method, p)
    const res = await nsFetch(ns, `http://${ns.hostAddr}:${port}${p}`, {
      method,
      headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      ...(body === undefined ? {} : { body }),
    })
    let json: unknown = res.body
    try {
      json = JSON.parse(res.body)
    } catch {
      // left as text
    }
    return { status: res.status, type: res.type, json }
  }

  const refused: [string, Record<string, string>][] = [
    ['no token', {}],
    ['a wrong token', { authorization: 'Bearer not-the-admin-token' }],
    ['a token one character off', {}],
    [
      'loopback-looking proxy headers',
      { 'x-forwarded-for': '127.0.0.1', 'x-real-ip': '127.0.0.1', forwarded: 'for=127.0.0.1', host: '127.0.0.1' },
    ],
  ]

  it('no token, a wrong token or proxy headers: 401 AUTH_REQUIRED on every door, and nothing changes', async () => {
    const before = await state()
    const off = { authorization: `Bearer ${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}` }
    for (const door of adminDoors()) {
      await Promise.all(
        refused.map(async ([what, headers]) => {
          const a = await remote(door.method, door.path, what === 'a token one character off' ? off : headers)
          expect(a.status, `${door.method} ${door.path} with ${what}: ${JSON.stringify(a.json)}`).toBe(401)
          expectErrorEnvelope(a, 401, 'AUTH_REQUIRED')
        }),
      )
    }
    expect(await state()).toEqual(before)
  })

  it('the admin token is admin from another host on every door', async () => {
    for (const door of adminDoors()) {
      const a = await remote(door.method, door.path, { authorization: `Bearer ${token}` })
      expect(a.status, `${door.method} ${door.path}: ${JSON.stringify(a.json)}`).not.toBe(401)
      expect(a.status).not.toBe(415)
    }
    const after = await state()
    expect(after.records).toBeGreaterThan(0)
    expect(after.grants).toBe(1)
  })
})

describe('SPEC 7.1 loopback trust (real loopback connections)', () => {
  const self = () => `127.0.0.1:${port}`

  // Each is refused on every admin door, from loopback, without the token.
  const refusals: [what: string, headers: () => Record<string, string>, reason: RegExp][] = [
    ['Origin of another site', () => ({ host: self(), origin: 'http://evil.example' }), /Origin http:\/\/evil\.example/],
    ['Origin of another loopback port', () => ({ host: self(), origin: 'http://127.0.0.1:1' }), /Origin/],
    ['Origin null (sandboxed page, file:)', () => ({ host: self(), origin: 'null' }), /Origin null/],
    ['Sec-Fetch-Site: cross-site', () => ({ host: self(), 'sec-fetch-site': 'cross-site' }), /Sec-Fetch-Site cross-site/],
    ['Sec-Fetch-Site: same-site (another port)', () => ({ host: self(), 'sec-fetch-site': 'same-site' }), /Sec-Fetch-Site same-site/],
    [
      'the issue’s page: text/plain + Origin + cross-site',
      () => ({ host: self(), origin: 'http://evil.example', 'sec-fetch-site': 'cross-site' }),
      /Origin/,
    ],
    ['Host: evil.example (DNS rebinding)', () => ({ host: 'evil.example' }), /Host evil\.example does not name this daemon/],
    ['Host: evil.example:<port> (DNS rebinding)', () => ({ host: `evil.example:${port}` }), /DNS rebinding/],
    ['X-Real-IP', () => ({ host: self(), 'x-real-ip': '127.0.0.1' }), /proxy header x-real-ip/],
    ['X-Forwarded-Host', () => ({ host: self(), 'x-forwarded-host': 'localhost' }), /proxy header x-forwarded-host/],
    ['X-Forwarded-For', () => ({ host: self(), 'x-forwarded-for': '203.0.113.7' }), /proxy header x-forwarded-for/],
    ['Forwarded', () => ({ host: self(), forwarded: 'for=203.0.113.7' }), /proxy header forwarded/],
    ['True-Client-IP', () => ({ host: self(), 'true-client-ip': '203.0.113.7' }), /true-client-ip/],
    ['CF-Connecting-IP', () => ({ host: self(), 'cf-connecting-ip': '203.0.113.7' }), /cf-connecting-ip/],
    ['X-Client-IP', () => ({ host: self(), 'x-client-ip': '203.0.113.7' }), /x-client-ip/],
    ['Client-IP', () => ({ host: self(), 'client-ip': '203.0.113.7' }), /client-ip/],
    ['Via', () => ({ host: self(), via: '1.1 squid' }), /proxy header via/],
  ]

  it('each browser, rebinding or proxy sign → 401 AUTH_REQUIRED naming the reason, on every admin door, and nothing changes', async () => {
    const before = await state()
    for (const door of adminDoors()) {
      for (const [what, headers, reason] of refusals) {
        const body = bodyFor(door.method, door.path)
        const type = what.includes('text/plain') ? 'text/plain' : 'application/json'
        const a = await raw(door.method, door.path, { ...headers(), ...(body === undefined ? {} : { 'content-type': type }) }, body)
        expect(a.status, `${door.method} ${door.path} with ${what}: ${JSON.stringify(a.json)}`).toBe(401)
        expectErrorEnvelope(a, 401, 'AUTH_REQUIRED')
        expect((a.json as { message: string }).message, what).toMatch(reason)
      }
    }
    expect(await state()).toEqual(before)
  })

  it('the operator’s own requests still pass: loopback Hosts, own Origin, Sec-Fetch-Site same-origin/none', async () => {
    const emit = (headers: Record<string, string>, text: string) =>
      raw(
        'POST',
        '/v1/records',
        { ...headers, 'content-type': 'application/json' },
        JSON.stringify({ act: 'INTEND', thread: 'th_loop', body: { text } }),
      )
    const ok: [string, Record<string, string>][] = [
      ['Host 127.0.0.1:<port>', { host: self() }],
      ['Host localhost:<port>', { host: `localhost:${port}` }],
      ['Host [::1]:<port>', { host: `[::1]:${port}` }],
      ['own Origin', { host: self(), origin: `http://${self()}` }],
      ['Sec-Fetch-Site same-origin', { host: self(), 'sec-fetch-site': 'same-origin' }],
      ['Sec-Fetch-Site none (typed in the address bar)', { host: self(), 'sec-fetch-site': 'none' }],
      ['what node fetch sends', { host: self(), 'sec-fetch-mode': 'cors', accept: '*/*', 'user-agent': 'node' }],
    ]
    for (const [what, headers] of ok) expect((await emit(headers, what)).status, what).toBe(201)
    // A GET too, and the token beats every refusal reason.
    expect((await raw('GET', '/v1/threads', { host: self() })).status).toBe(200)
    const hostile = { host: 'evil.example', origin: 'http://evil.example', 'sec-fetch-site': 'cross-site', 'x-real-ip': '1.2.3.4' }
    expect((await raw('GET', '/v1/threads', { ...hostile, authorization: `Bearer ${token}` })).status).toBe(200)
  })

  it('JSON doors refuse text/plain, forms and a missing type with 415 — even from the operator — and store nothing', async () => {
    const before = await state()
    const body = JSON.stringify({ act: 'INTEND', thread: 'th_415', body: { text: 'not json typed' } })
    for (const door of adminDoors().filter((d) => d.method === 'POST')) {
      for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
        const a = await raw(door.method, door.path, { host: self(), 'content-type': type }, body)
        expectErrorEnvelope(a, 415, 'UNSUPPORTED_MEDIA_TYPE')
      }
    }
    const untyped = await raw('POST', '/v1/records', { host: self(), 'content-length': String(Buffer.byteLength(body)) }, body)
    expectErrorEnvelope(untyped, 415, 'UNSUPPORTED_MEDIA_TYPE')
    expect(await state()).toEqual(before)
  })

  it('open doors stay open with any of these headers', async () => {
    for (const [, headers] of refusals) {
      expect((await raw('GET', '/health', headers())).status).toBe(200)
      expect((await raw('GET', '/v1/identity', headers())).status).toBe(200)
    }
  })
})

describe('SPEC 7.6 the HTTP layer answers the envelope too (raw socket)', () => {
  it('headers over Node’s limit → 431 HEADERS_TOO_LARGE with the envelope (was an empty 431)', async () => {
    const r = await rawSocket(`GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`)
    expectErrorEnvelope(asAnswer(r), 431, 'HEADERS_TOO_LARGE')
    expect(r.head).toMatch(/\r\nconnection: close/i)
  })

  it('a request line that is not HTTP → 400 MALFORMED_REQUEST with the envelope', async () => {
    expectErrorEnvelope(asAnswer(await rawSocket('HELLO THERE\r\n\r\n')), 400, 'MALFORMED_REQUEST')
    expectErrorEnvelope(asAnswer(await rawSocket('GET /health HTTP/1.1\r\nHost 127.0.0.1\r\n\r\n')), 400, 'MALFORMED_REQUEST')
  })

  it('an HTTP/1.1 request without Host → 400 HOST_REQUIRED; a Host that is not a host → 400 MALFORMED_REQUEST', async () => {
    expectErrorEnvelope(asAnswer(await rawSocket('GET /health HTTP/1.1\r\nConnection: close\r\n\r\n')), 400, 'HOST_REQUIRED')
    expectErrorEnvelope(
      asAnswer(await rawSocket('GET /health HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n')),
      400,
      'MALFORMED_REQUEST',
    )
  })

  it('an Expect it cannot meet → 417, CONNECT → 405, both with the envelope', async () => {
    expectErrorEnvelope(
      asAnswer(await rawSocket('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: tea\r\nConnection: close\r\n\r\n')),
      417,
      'EXPECTATION_FAILED',
    )
    expectErrorEnvelope(
      asAnswer(await rawSocket('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n')),
      405,
      'METHOD_NOT_ALLOWED',
    )
  })

  it('an HTTP/1.0 request without Host still reaches open doors, and is not trusted as the operator', async () => {
    const health = await rawSocket('GET /health HTTP/1.0\r\n\r\n')
    expect(health.status).toBe(200)
    const admin = asAnswer(await rawSocket('GET /v1/threads HTTP/1.0\r\n\r\n'))
    expectErrorEnvelope(admin, 401, 'AUTH_REQUIRED')
    expect((admin.json as { message: string }).message).toMatch(/no Host header/)
  })

  it('a broken chunk in the body of a request the app already has → 400; huge chunk extensions → 413; both with the envelope', async () => {
    const head = `POST /v1/records HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`
    expectErrorEnvelope(asAnswer(await rawSocket(`${head}zz\r\n{}\r\n0\r\n\r\n`)), 400, 'MALFORMED_REQUEST')
    expectErrorEnvelope(asAnswer(await rawSocket(`${head}2;${'e'.repeat(20_000)}\r\n{}\r\n0\r\n\r\n`)), 413, 'PAYLOAD_TOO_LARGE')
  })

  it('a good request pipelined with garbage gets its answer first, then the refusal', async () => {
    const r = await rawSocket(`GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGARBAGE\r\n\r\n`)
    expect(r.status).toBe(200)
    expect(JSON.stringify(r.body)).toMatch(/HTTP\/1\.1 400 Bad Request.*MALFORMED_REQUEST/)
  })

  it('after all of them the daemon answers as before', async () => {
    expect((await raw('GET', '/health', { host: `127.0.0.1:${port}` })).status).toBe(200)
  })
})
