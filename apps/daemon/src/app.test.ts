import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createNetNs, type NetNs, nsFetch } from '../../../test-utils/netns.js'
import { type Answer, answerOf, expectErrorEnvelope } from '../test/harness.js'
import { homePaths } from './config.js'
import { initHome } from './home.js'
import { createLogger } from './logger.js'
import { SplDaemon } from './server.js'

// What needs a socket, against a real SplDaemon listening on port 0 with a temporary home made
// by initHome(), as `spl serve` runs it: who the caller is (loopback, proxy headers, another
// address) and how a connection ends after a 413. Everything else goes through app.request()
// in routes/*.test.ts.

interface Running {
  daemon: SplDaemon
  home: string
  token: string
  /** http://127.0.0.1:<port> */
  url: string
  port: number
}

const started: Running[] = []

async function startDaemon(options: { host?: string; trustLoopback?: boolean } = {}): Promise<Running> {
  const home = path.join(mkdtempSync(path.join(os.tmpdir(), 'spl-app-')), 'home')
  initHome(home)
  if (options.trustLoopback === false) {
    const file = homePaths(home).config
    const text = readFileSync(file, 'utf8')
    expect(text).toMatch(/^trust_loopback = true$/m)
    writeFileSync(file, text.replace(/^trust_loopback = true$/m, 'trust_loopback = false'))
  }
  const daemon = await SplDaemon.create({
    home,
    host: options.host ?? '127.0.0.1',
    port: 0,
    // Never mDNS from a test in this namespace, whatever the runner's environment (decision 37).
    mdns: false,
    logger: createLogger({ silent: true }),
  })
  const running: Running = {
    daemon,
    home,
    token: readFileSync(homePaths(home).adminToken, 'utf8').trim(),
    url: '',
    port: 0,
  }
  started.push(running)
  await daemon.start()
  running.url = daemon.url
  running.port = Number(new URL(daemon.url).port)
  return running
}

afterAll(async () => {
  for (const r of started.splice(0)) {
    await r.daemon.destroy()
    rmSync(path.dirname(r.home), { recursive: true, force: true })
  }
})

async function call(
  base: string,
  method: string,
  p: string,
  init: { body?: string; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const res = await fetch(base + p, {
    method,
    headers: { ...(init.body === undefined ? {} : { 'content-type': 'application/json' }), ...init.headers },
    ...(init.body === undefined ? {} : { body: init.body }),
  })
  return answerOf(res)
}

/** One request on its own connection (node:http, agent: false); a string body or chunks written in turn. */
function httpOnce(port: number, method: string, p: string, headers: Record<string, string>, body?: string | Buffer[]): Promise<Answer> {
  return new Promise((resolve, reject) => {
    let answered = false
    const req = http.request({ host: '127.0.0.1', port, method, path: p, headers, agent: false }, (res) => {
      answered = true
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('error', reject)
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        let json: unknown = text
        try {
          json = JSON.parse(text)
        } catch {
          // left as text
        }
        resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), json })
      })
    })
    // The server may drop the connection once it has answered 413: only an error before the answer counts.
    req.on('error', (err) => {
      if (!answered) reject(err)
    })
    if (typeof body === 'string') {
      req.end(body)
      return
    }
    void (async () => {
      for (const chunk of body ?? []) {
        if (answered || req.destroyed) break
        if (!req.write(chunk)) await Promise.race([once(req, 'drain'), once(req, 'close')]).catch(() => {})
      }
      if (!req.destroyed) req.end()
    })()
  })
}

/**
 * Sends a 20 MiB POST on a raw socket at about 10 MiB/s, reads the 413, then (unless the 413
 * announced `Connection: close`) sends `GET /health` on the same connection.
 */
async function oversizedThenReuse(port: number): Promise<{ first: string; closeAnnounced: boolean; second: string | null }> {
  const socket = net.connect(port, '127.0.0.1')
  await once(socket, 'connect')
  let received = ''
  let closed = false
  socket.on('data', (c: Buffer) => {
    received += c.toString('latin1')
  })
  socket.on('error', () => {})
  socket.on('close', () => {
    closed = true
  })
  const waitFor = async (done: () => boolean) => {
    // Bounded only so that a broken server cannot hang the test run.
    for (let i = 0; i < 300 && !done(); i++) await sleep(50)
  }
  const firstEnd = () => {
    const head = received.indexOf('\r\n\r\n')
    if (head < 0) return -1
    const len = /\r\ncontent-length: *(\d+)/i.exec(received.slice(0, head))
    const end = head + 4 + Number(len?.[1] ?? 0)
    return received.length >= end ? end : -1
  }
  try {
    const size = 20 * 1024 * 1024
    socket.write(`POST /v1/records HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${size}\r\n\r\n`)
    const chunk = Buffer.alloc(1024 * 1024, 'x')
    for (let i = 0; i < 20 && !closed; i++) {
      socket.write(chunk)
      await sleep(100)
    }
    await waitFor(() => closed || firstEnd() >= 0)
    const end = firstEnd()
    const first = end >= 0 ? received.slice(0, end) : received
    const closeAnnounced = /\r\nconnection: *close\r\n/i.test(first.slice(0, first.indexOf('\r\n\r\n') + 2))
    if (closeAnnounced) return { first, closeAnnounced, second: null }
    if (!closed) socket.write('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n')
    await waitFor(() => closed)
    return { first, closeAnnounced, second: end >= 0 ? received.slice(end) : null }
  } finally {
    socket.destroy()
  }
}

const postJson = (base: string, p: string, value: unknown, headers: Record<string, string> = {}) =>
  call(base, 'POST', p, { body: JSON.stringify(value), headers })

/** The part of a record answer these tests read. */
interface RecordOut {
  id: string
}

describe('the daemon over HTTP (real socket, temp home)', () => {
  let d: Running
  beforeAll(async () => {
    d = await startDaemon({ host: '0.0.0.0' })
  })

  describe('SPEC 7.1 admin doors', () => {
    // The non-loopback caller is another host: a network namespace reaching the daemon (on
    // 0.0.0.0) over a veth pair, its requests made with curl inside the namespace.
    let ns: NetNs
    beforeAll(() => {
      ns = createNetNs()
    })
    afterAll(() => ns?.remove())
    const remote = () => `http://${ns.hostAddr}:${d.port}`
    const remoteCall = async (
      base: string,
      method: string,
      p: string,
      init: { body?: string; headers?: Record<string, string> } = {},
    ): Promise<Answer> => {
      const headers = { ...(init.body === undefined ? {} : { 'content-type': 'application/json' }), ...init.headers }
      const res = await nsFetch(ns, base + p, { method, headers, ...(init.body === undefined ? {} : { body: init.body }) })
      let json: unknown = res.body
      try {
        json = JSON.parse(res.body)
      } catch {
        // left as text: the envelope check fails on it
      }
      return { status: res.status, type: res.type, json }
    }
    const remotePost = (base: string, p: string, value: unknown, headers: Record<string, string> = {}) =>
      remoteCall(base, 'POST', p, { body: JSON.stringify(value), headers })

    it(`a POST /v1/records from a non-loopback address without the token is 401 AUTH_REQUIRED`, async () => {
      const before = await d.daemon.ctx.store.count()
      const a = await remotePost(remote(), '/v1/records', {
        act: 'INTEND',
        thread: 'th_remote',
        body: { text: 'no token' },
      })
      expectErrorEnvelope(a, 401, 'AUTH_REQUIRED')
      const wrong = await remotePost(
        remote(),
        '/v1/records',
        { act: 'INTEND', thread: 'th_remote', body: { text: 'wrong token' } },
        { authorization: `Bearer ${d.token.slice(0, -2)}xx` },
      )
      expectErrorEnvelope(wrong, 401, 'AUTH_REQUIRED')
      const notBearer = await remotePost(
        remote(),
        '/v1/records',
        { act: 'INTEND', thread: 'th_remote', body: { text: 'basic' } },
        { authorization: `Basic ${d.token}` },
      )
      expectErrorEnvelope(notBearer, 401, 'AUTH_REQUIRED')
      expect(await d.daemon.ctx.store.count()).toBe(before)
    })

    it(`a POST /v1/records from a non-loopback address with Authorization: Bearer <admin.token> works`, async () => {
      const a = await remotePost(
        remote(),
        '/v1/records',
        { act: 'INTEND', thread: 'th_remote', body: { text: 'with token' } },
        { authorization: `Bearer ${d.token}` },
      )
      expect(a.status, JSON.stringify(a.json)).toBe(201)
      const id = (a.json as RecordOut).id
      const back = await remoteCall(remote(), 'GET', `/v1/records/${id}`, {
        headers: { authorization: `Bearer ${d.token}` },
      })
      expect(back.status).toBe(200)
    })

    it(`reads of the local store are admin doors too from a non-loopback address`, async () => {
      for (const p of ['/v1/threads', '/v1/threads/th_remote/records', '/v1/namespaces', '/v1/sync/pairs', '/v1/sync/health', '/metrics']) {
        expectErrorEnvelope(await remoteCall(remote(), 'GET', p), 401, 'AUTH_REQUIRED')
      }
      expectErrorEnvelope(await remotePost(remote(), '/v1/namespaces', { namespace: 'evil' }), 401, 'AUTH_REQUIRED')
      expect(d.daemon.ctx.registry.namespace('evil')).toBeUndefined()
    })

    it(`open doors (/health, /v1/identity, /openapi.json) need no token from a non-loopback address`, async () => {
      const health = await remoteCall(remote(), 'GET', '/health')
      expect(health.status).toBe(200)
      expect(health.json).toMatchObject({ status: 'ok', did: d.daemon.did })
      const identity = await remoteCall(remote(), 'GET', '/v1/identity')
      expect(identity.status).toBe(200)
      expect(identity.json).toEqual({
        object: 'identity',
        did: d.daemon.did,
        namespace: 'default',
        handle: null,
        method: 'key',
        version: expect.stringMatching(/^\d+\.\d+\.\d+/),
      })
      const openapi = await remoteCall(remote(), 'GET', '/openapi.json')
      expect(openapi.status).toBe(200)
      expect(openapi.json).toMatchObject({
        openapi: expect.stringMatching(/^3\./),
        paths: expect.objectContaining({ '/v1/records': expect.anything() }),
      })
    })

    it('from loopback, an X-Forwarded-For or Forwarded header makes the request non-admin (401)', async () => {
      const before = await d.daemon.ctx.store.count()
      const body = { act: 'INTEND', thread: 'th_forwarded', body: { text: 'proxied' } }
      expectErrorEnvelope(await postJson(d.url, '/v1/records', body, { 'x-forwarded-for': '203.0.113.7' }), 401, 'AUTH_REQUIRED')
      expectErrorEnvelope(await postJson(d.url, '/v1/records', body, { 'x-forwarded-for': '127.0.0.1' }), 401, 'AUTH_REQUIRED')
      expectErrorEnvelope(await postJson(d.url, '/v1/records', body, { forwarded: 'for=203.0.113.7' }), 401, 'AUTH_REQUIRED')
      expectErrorEnvelope(await call(d.url, 'GET', '/v1/threads', { headers: { 'x-forwarded-for': '203.0.113.7' } }), 401, 'AUTH_REQUIRED')
      expect(await d.daemon.ctx.store.count()).toBe(before)
      // The token still works through a proxy.
      const withToken = await postJson(d.url, '/v1/records', body, {
        'x-forwarded-for': '203.0.113.7',
        authorization: `Bearer ${d.token}`,
      })
      expect(withToken.status).toBe(201)
      // And plain loopback is trusted (api.trust_loopback defaults to true).
      const plain = await postJson(d.url, '/v1/records', { ...body, body: { text: 'direct' } })
      expect(plain.status).toBe(201)
    })

    it('open doors stay open behind a proxy header', async () => {
      const h = { 'x-forwarded-for': '203.0.113.7' }
      expect((await call(d.url, 'GET', '/health', { headers: h })).status).toBe(200)
      expect((await call(d.url, 'GET', '/v1/identity', { headers: h })).status).toBe(200)
      expect((await call(d.url, 'GET', '/openapi.json', { headers: h })).status).toBe(200)
    })
  })

  // The rest of SPEC 7.6 goes through app.request() in routes/errors.test.ts; these need a
  // socket to show how the connection ends after a 413.
  describe('SPEC 7.6 a body over 16 MiB (real socket)', () => {
    const T = 'th_errors'
    let countBefore: number

    beforeAll(async () => {
      countBefore = await d.daemon.ctx.store.count()
    })

    // The oversized requests go over their own connections (agent: false), so that a connection
    // the server drops after a 413 cannot break the requests of the other tests.
    it('a body over 16 MiB (20 MiB, with Content-Length) → 413 PAYLOAD_TOO_LARGE', async () => {
      const big = JSON.stringify({ act: 'INTEND', thread: T, body: { text: 'x'.repeat(20 * 1024 * 1024) } })
      expectErrorEnvelope(
        await httpOnce(d.port, 'POST', '/v1/records', { 'content-type': 'application/json' }, big),
        413,
        'PAYLOAD_TOO_LARGE',
      )
    })

    it('a body over 16 MiB sent chunked (no Content-Length) → 413 PAYLOAD_TOO_LARGE', async () => {
      const chunks = Array.from({ length: 20 }, () => Buffer.alloc(1024 * 1024, 'x'))
      expectErrorEnvelope(
        await httpOnce(d.port, 'POST', '/v1/records', { 'content-type': 'application/json' }, chunks),
        413,
        'PAYLOAD_TOO_LARGE',
      )
    })

    it('a 20 MiB body to another admin door (POST /v1/namespaces) → 413', async () => {
      const big = JSON.stringify({ namespace: 'big', description: 'x'.repeat(20 * 1024 * 1024) })
      expectErrorEnvelope(
        await httpOnce(d.port, 'POST', '/v1/namespaces', { 'content-type': 'application/json' }, big),
        413,
        'PAYLOAD_TOO_LARGE',
      )
    })

    it('after a 413 the connection is either announced closed (Connection: close) or still answers', async () => {
      // A client on a real network needs seconds to upload 20 MiB: send it at about 10 MiB/s.
      const r = await oversizedThenReuse(d.port)
      expect(r.first).toMatch(/^HTTP\/1\.1 413 /)
      if (!r.closeAnnounced) {
        expect(r.second, `the 413 said "Connection: keep-alive", then the connection was dropped:\n${r.first}`).toMatch(/^HTTP\/1\.1 200 /)
      }
    })

    it('after them the daemon still answers and stored nothing', async () => {
      expect((await call(d.url, 'GET', '/health')).status).toBe(200)
      expect(await d.daemon.ctx.store.count()).toBe(countBefore)
    })
  })
})

describe('api.trust_loopback = false', () => {
  it('loopback callers need the token too', async () => {
    const d = await startDaemon({ trustLoopback: false })
    expect(d.daemon.ctx.cfg.api.trust_loopback).toBe(false)
    const rec = { act: 'INTEND', thread: 'th_strict', body: { text: 'hi' } }
    expectErrorEnvelope(await postJson(d.url, '/v1/records', rec), 401, 'AUTH_REQUIRED')
    expectErrorEnvelope(await call(d.url, 'GET', '/v1/threads'), 401, 'AUTH_REQUIRED')
    expect((await postJson(d.url, '/v1/records', rec, { authorization: `Bearer ${d.token}` })).status).toBe(201)
    expect((await call(d.url, 'GET', '/health')).status).toBe(200)
  })
})
