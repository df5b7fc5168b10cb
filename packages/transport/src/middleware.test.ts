import { Hono } from 'hono'
import { HTTPException } from 'hono/http-exception'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { adminAuth, errorHandler, InvalidRequestError, jsonBodiesOnly, notFoundHandler } from './middleware.js'

// The one onError of the daemon: what each family of thrown errors answers on the wire.

function appThrowing(thrown: () => unknown, logged: unknown[] = []) {
  const app = new Hono()
  app.onError(errorHandler((err) => logged.push(err)))
  app.notFound(notFoundHandler)
  app.get('/boom', () => {
    throw thrown()
  })
  return app
}

async function answer(app: Hono, p = '/boom') {
  const res = await app.request(p)
  return { status: res.status, connection: res.headers.get('connection'), json: await res.json() }
}

describe('errorHandler', () => {
  it('an SplError answers its own envelope and status, and is not logged', async () => {
    const logged: unknown[] = []
    const a = await answer(appThrowing(() => new InvalidRequestError('body.x: bad', 'send x'), logged))
    expect(a).toMatchObject({ status: 400, json: { object: 'error', code: 'INVALID_REQUEST', message: 'body.x: bad', fix: 'send x' } })
    expect(logged).toEqual([])
  })

  it('a zod error is 400 INVALID_REQUEST naming the field', async () => {
    const a = await answer(appThrowing(() => z.object({ n: z.number() }).safeParse({ n: 'x' }).error))
    expect(a.status).toBe(400)
    expect(a.json).toMatchObject({ object: 'error', code: 'INVALID_REQUEST', message: expect.stringMatching(/^n: /) })
  })

  it('an HTTPException 413 is PAYLOAD_TOO_LARGE and closes the connection; others keep their status', async () => {
    const big = await answer(appThrowing(() => new HTTPException(413)))
    expect(big).toMatchObject({ status: 413, connection: 'close', json: { code: 'PAYLOAD_TOO_LARGE', fix: 'send smaller batches' } })
    const teapot = await answer(appThrowing(() => new HTTPException(418, { message: 'short and stout' })))
    expect(teapot).toMatchObject({ status: 418, json: { object: 'error', code: 'HTTP_418', message: 'short and stout' } })
  })

  it('anything else is a logged 500 INTERNAL that does not show its message', async () => {
    const logged: unknown[] = []
    const secret = new Error('SQLITE_CORRUPT at /home/alice/.syncro/spl.db')
    const a = await answer(appThrowing(() => secret, logged))
    expect(a.status).toBe(500)
    expect(a.json).toEqual({
      object: 'error',
      code: 'INTERNAL',
      message: 'the daemon hit an unexpected error; it is logged.',
      fix: 'check the daemon log (spl serve --logs)',
    })
    expect(logged).toEqual([secret])
  })

  it('an unknown route answers 404 NOT_FOUND naming it', async () => {
    const a = await answer(
      appThrowing(() => null),
      '/nope',
    )
    expect(a).toMatchObject({
      status: 404,
      json: { code: 'NOT_FOUND', message: 'no route for GET /nope.', fix: 'see /openapi.json for the API' },
    })
  })
})

// SPEC 7.1 as one function: who is the operator. The app's peer address is injected, so every
// header variant is tried against a loopback and a remote caller without a socket.
describe('adminAuth (SPEC 7.1)', () => {
  const TOKEN = 'k'.repeat(43)
  function guarded(remote: string, options: { trustLoopback?: boolean; hostnames?: string[] } = {}) {
    const app = new Hono()
    app.onError(errorHandler())
    app.use(
      '*',
      adminAuth({
        token: TOKEN,
        trustLoopback: options.trustLoopback ?? true,
        remoteAddress: () => remote,
        hostnames: options.hostnames ?? [],
      }),
    )
    app.use('*', jsonBodiesOnly())
    app.all('/v1/x', (c) => c.json({ ok: true }))
    return app
  }
  async function status(
    remote: string,
    headers: Record<string, string>,
    init: { method?: string; body?: string; hostnames?: string[] } = {},
  ) {
    const res = await guarded(remote, { hostnames: init.hostnames ?? ['spl.example.net'] }).request('/v1/x', {
      method: init.method ?? 'GET',
      headers,
      ...(init.body === undefined ? {} : { body: init.body }),
    })
    return { status: res.status, json: (await res.json()) as { code?: string; message?: string; fix?: string } }
  }
  const LOCAL = { host: '127.0.0.1:9100' }

  it('plain loopback with a loopback Host is the operator (what the CLI sends)', async () => {
    for (const host of ['127.0.0.1:9100', 'localhost:9100', 'LOCALHOST', '[::1]:9100', '127.0.0.2', 'localhost.:9100']) {
      expect((await status('127.0.0.1', { host, 'sec-fetch-mode': 'cors', 'user-agent': 'node' })).status, host).toBe(200)
    }
    expect((await status('::1', { host: '[::1]:9100' })).status).toBe(200)
    expect((await status('::ffff:127.0.0.1', LOCAL)).status).toBe(200)
  })

  it('a Host that names this daemon otherwise (bound host, advertise_url host) is fine; any other name is refused', async () => {
    expect((await status('127.0.0.1', { host: 'spl.example.net:9100' })).status).toBe(200)
    for (const host of ['evil.example', 'evil.example:9100', 'spl.example.net.evil.example', '10.0.0.1:9100', 'a b', 'x@127.0.0.1']) {
      const a = await status('127.0.0.1', { host })
      expect(a.status, host).toBe(401)
      expect(a.json.code).toBe('AUTH_REQUIRED')
    }
    const a = await status('127.0.0.1', { host: 'evil.example:9100' })
    expect(a.json.message).toMatch(/Host evil\.example:9100 does not name this daemon.*DNS rebinding/)
    expect(a.json.fix).toMatch(/127\.0\.0\.1/)
    expect((await status('127.0.0.1', {})).json.message).toMatch(/no Host header/)
  })

  it('an Origin of another site is refused; the daemon’s own origin is fine', async () => {
    expect((await status('127.0.0.1', { ...LOCAL, origin: 'http://127.0.0.1:9100' })).status).toBe(200)
    expect((await status('127.0.0.1', { host: 'localhost:9100', origin: 'http://localhost:9100' })).status).toBe(200)
    for (const origin of [
      'http://evil.example',
      'null',
      'http://127.0.0.1:3000',
      'http://localhost:9100',
      'https://127.0.0.1:9101',
      'file://',
      'chrome-extension://abc',
      'garbage',
    ]) {
      const a = await status('127.0.0.1', { ...LOCAL, origin })
      expect(a.status, origin).toBe(401)
      expect(a.json.code, origin).toBe('AUTH_REQUIRED')
    }
    expect((await status('127.0.0.1', { ...LOCAL, origin: 'http://evil.example' })).json.message).toMatch(
      /Origin http:\/\/evil\.example is a web page/,
    )
  })

  it('Sec-Fetch-Site other than same-origin or none is refused', async () => {
    expect((await status('127.0.0.1', { ...LOCAL, 'sec-fetch-site': 'same-origin' })).status).toBe(200)
    expect((await status('127.0.0.1', { ...LOCAL, 'sec-fetch-site': 'none' })).status).toBe(200)
    for (const site of ['cross-site', 'same-site', 'whatever']) {
      const a = await status('127.0.0.1', { ...LOCAL, 'sec-fetch-site': site })
      expect(a.status, site).toBe(401)
      expect(a.json.message).toMatch(/Sec-Fetch-Site/)
    }
  })

  const PROXY_HEADERS: Record<string, string> = {
    forwarded: 'for=203.0.113.7',
    'x-forwarded-for': '127.0.0.1',
    'x-forwarded-host': 'localhost',
    'x-forwarded-proto': 'http',
    'x-real-ip': '127.0.0.1',
    'true-client-ip': '203.0.113.7',
    'cf-connecting-ip': '203.0.113.7',
    'x-client-ip': '203.0.113.7',
    'client-ip': '203.0.113.7',
    'x-cluster-client-ip': '203.0.113.7',
    'fastly-client-ip': '203.0.113.7',
    via: '1.1 proxy',
  }
  it('any proxy header makes a loopback request non-admin, naming the header', async () => {
    for (const [name, value] of Object.entries(PROXY_HEADERS)) {
      const a = await status('127.0.0.1', { ...LOCAL, [name]: value })
      expect(a.status, name).toBe(401)
      expect(a.json.message, name).toContain(`proxy header ${name}`)
    }
  })

  it('the token is admin from anywhere, whatever the other headers say', async () => {
    const bad = { host: 'evil.example', origin: 'http://evil.example', 'sec-fetch-site': 'cross-site', ...PROXY_HEADERS }
    expect((await status('203.0.113.7', { ...bad, authorization: `Bearer ${TOKEN}` })).status).toBe(200)
    expect((await status('127.0.0.1', { ...bad, authorization: `Bearer ${TOKEN}` })).status).toBe(200)
    for (const auth of [`Bearer ${TOKEN.slice(1)}x`, `Bearer ${TOKEN}x`, `Basic ${TOKEN}`, '']) {
      expect((await status('203.0.113.7', { host: '10.0.0.1:9100', authorization: auth })).status, auth).toBe(401)
    }
    // From another host nothing but the token counts, even with loopback-looking headers.
    expect((await status('10.213.0.2', { ...LOCAL, 'x-forwarded-for': '127.0.0.1' })).status).toBe(401)
    expect((await status('10.213.0.2', LOCAL)).json.fix).toMatch(/admin\.token/)
  })

  it('trust_loopback off: loopback needs the token too', async () => {
    const app = guarded('127.0.0.1', { trustLoopback: false })
    expect((await app.request('/v1/x', { headers: LOCAL })).status).toBe(401)
    expect((await app.request('/v1/x', { headers: { ...LOCAL, authorization: `Bearer ${TOKEN}` } })).status).toBe(200)
  })
})

describe('jsonBodiesOnly (SPEC 7.1: JSON doors refuse other content types)', () => {
  const TOKEN = 't'.repeat(43)
  const auth = { authorization: `Bearer ${TOKEN}` }
  function app() {
    const a = new Hono()
    a.onError(errorHandler())
    a.use('*', adminAuth({ token: TOKEN, trustLoopback: false, remoteAddress: () => undefined }))
    a.use('*', jsonBodiesOnly())
    a.all('/v1/x', (c) => c.json({ ok: true }))
    return a
  }
  const send = async (method: string, headers: Record<string, string>, body?: string) => {
    const res = await app().request('/v1/x', { method, headers: { ...auth, ...headers }, ...(body === undefined ? {} : { body }) })
    return { status: res.status, json: (await res.json()) as Record<string, unknown> }
  }

  it('application/json (with parameters) passes', async () => {
    expect((await send('POST', { 'content-type': 'application/json' }, '{}')).status).toBe(200)
    expect((await send('PUT', { 'content-type': 'application/json; charset=utf-8' }, '{}')).status).toBe(200)
    expect((await send('PATCH', { 'content-type': 'Application/JSON' }, '{}')).status).toBe(200)
  })

  it('text/plain, forms, multipart and JSON look-alikes are 415 UNSUPPORTED_MEDIA_TYPE with a fix', async () => {
    for (const type of [
      'text/plain',
      'text/plain;charset=UTF-8',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/jsonp',
      'text/json',
      '',
    ]) {
      for (const method of ['POST', 'PUT', 'PATCH']) {
        const a = await send(method, { 'content-type': type }, '{"act":"INTEND"}')
        expect(a.status, `${method} ${type}`).toBe(415)
        expect(a.json).toMatchObject({
          object: 'error',
          code: 'UNSUPPORTED_MEDIA_TYPE',
          fix: 'send the body as JSON with `Content-Type: application/json`',
        })
      }
    }
  })

  it('a body without a Content-Type is 415; a bodyless POST and other methods pass', async () => {
    const res = await app().request(
      new Request('http://127.0.0.1/v1/x', { method: 'POST', headers: { ...auth, 'content-length': '2' }, body: new Blob(['{}']) }),
    )
    // Blob bodies get no content type from the Request constructor.
    expect(res.headers.get('content-type')).toContain('application/json')
    expect(res.status).toBe(415)
    expect((await send('POST', {})).status).toBe(200)
    expect((await send('GET', { 'content-type': 'text/plain' })).status).toBe(200)
    expect((await send('DELETE', { 'content-type': 'text/plain' })).status).toBe(200)
  })
})
