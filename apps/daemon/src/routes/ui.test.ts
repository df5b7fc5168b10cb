import { Keypair } from '@spl/identity'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Answer, type AppUnderTest, answerOf, appUnderTest, expectErrorEnvelope } from '../../test/harness.js'
import { UiSessions } from '../ui/sessions.js'
import { CSRF_HEADER, cookieNameFor } from './ui.js'

// The web console's doors (issue 17) through app.request(): the login link, the session cookie,
// the CSRF token and the origin rules. The browser's side is apps/cli/test/ui.e2e.test.ts.

const BASE = 'http://127.0.0.1:9100'
const ORIGIN = BASE
const EVIL = 'http://127.0.0.1:9101'

let d: AppUnderTest
beforeAll(async () => {
  d = await appUnderTest()
})
afterAll(async () => {
  await d.close()
})

/** A request with exactly these headers (no admin token unless given). */
async function req(method: string, p: string, headers: Record<string, string> = {}, body?: string): Promise<Answer & { headers: Headers }> {
  const res = await d.app.request(`${BASE}${p}`, { method, headers, ...(body === undefined ? {} : { body }) })
  return { ...(await answerOf(res.clone())), headers: res.headers }
}

/** Logs in as `spl ui` does: the link from the admin door, then the browser's GET of it; the cookie header and the page's token. */
async function login(): Promise<{ cookie: string; csrf: string }> {
  const link = await d.postJson('/v1/ui/login', {})
  expect(link.status).toBe(201)
  const res = await d.app.request(`${BASE}${(link.json as { path: string }).path}`)
  expect(res.status).toBe(200)
  const cookie = (res.headers.get('set-cookie') ?? '').split(';')[0]!
  const csrf = /<meta name="spl-csrf" content="([\w-]{43})">/.exec(await res.text())?.[1] ?? ''
  expect(csrf).not.toBe('')
  const s = await req('GET', '/ui/api/session', { cookie, 'sec-fetch-site': 'same-origin', [CSRF_HEADER]: csrf })
  expect(s.status).toBe(200)
  return { cookie, csrf }
}

const namespaces = () => d.daemon.ctx.registry.namespaces().map((n) => n.namespace)

describe('the console without a login', () => {
  it('every /ui/api data call is 401, even with the admin token', async () => {
    const calls: [string, string][] = [
      ['GET', '/ui/api/session'],
      ['POST', '/ui/api/logout'],
      ['GET', '/ui/api/v1/sync/mesh'],
      ['GET', '/ui/api/v1/sync/pairs'],
      ['GET', '/ui/api/v1/federation/requests'],
      ['GET', '/ui/api/v1/consent/grants'],
      ['POST', '/ui/api/v1/namespaces'],
      ['DELETE', '/ui/api/v1/consent/grants/cg_000000000000'],
    ]
    for (const [method, p] of calls) {
      const variants: Record<string, string>[] = [
        {},
        { authorization: `Bearer ${d.token}` },
        { origin: ORIGIN, 'sec-fetch-site': 'same-origin' },
      ]
      for (const headers of variants) {
        const a = await req(method, p, headers)
        expectErrorEnvelope(a, 401, 'AUTH_REQUIRED')
      }
    }
    // A made-up cookie is no session either.
    const forged = await req('GET', '/ui/api/v1/sync/pairs', {
      cookie: `${cookieNameFor(d.daemon.ctx.keypair.did)}=abc`,
      [CSRF_HEADER]: 'abc',
    })
    expectErrorEnvelope(forged, 401, 'AUTH_REQUIRED')
  })

  it('the page and its assets are served with no framing, own scripts only, no caching', async () => {
    const page = await req('GET', '/ui/')
    expect(page.status).toBe(200)
    expect(page.type).toMatch(/^text\/html/)
    expect(page.headers.get('x-frame-options')).toBe('DENY')
    expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'")
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'")
    expect(page.headers.get('cache-control')).toBe('no-store')
    expect((await req('GET', '/ui')).status).toBe(301)
    expect((await req('GET', '/ui/assets/style.css')).type).toMatch(/^text\/css/)
    expectErrorEnvelope(await req('GET', '/ui/assets/..%2Fpackage.json'), 404)
    expectErrorEnvelope(await req('GET', '/ui/assets/index.html'), 404)
  })

  it('a login link works once; an unknown one is refused', async () => {
    const link = await d.postJson('/v1/ui/login', {})
    expect(link.json).toMatchObject({ object: 'ui_login', path: expect.stringMatching(/^\/ui\/login\?token=[\w-]{43}$/) })
    // The link is made at an admin door: nobody else gets one.
    expectErrorEnvelope(await req('POST', '/v1/ui/login'), 401, 'AUTH_REQUIRED')
    const path = (link.json as { path: string }).path
    const first = await d.app.request(`${BASE}${path}`)
    expect(first.status).toBe(200)
    expect(first.headers.get('x-frame-options')).toBe('DENY')
    expect(first.headers.get('referrer-policy')).toBe('no-referrer')
    expect(await first.text()).toMatch(/<meta name="spl-csrf" content="[\w-]{43}">/)
    const set = first.headers.get('set-cookie') ?? ''
    expect(set).toMatch(new RegExp(`^${cookieNameFor(d.daemon.ctx.keypair.did)}=[\\w-]{43};`))
    expect(set).toContain('HttpOnly')
    expect(set).toContain('SameSite=Strict')
    expect(set).toContain('Path=/ui')
    // Spent, unknown or missing: no cookie, and the console page says so (UI_LOGIN_INVALID, run spl ui).
    for (const p of [path, '/ui/login?token=nope', '/ui/login']) {
      const again = await d.app.request(`${BASE}${p}`)
      expect(again.status).toBe(303)
      expect(again.headers.get('location')).toBe('/ui/#/login-failed')
      expect(again.headers.get('set-cookie')).toBeNull()
    }
  })
})

describe('the console with a session', () => {
  it('reads and changes through /ui/api/v1 with the session, the same origin and the CSRF token', async () => {
    const { cookie, csrf } = await login()
    const same = { cookie, origin: ORIGIN, 'sec-fetch-site': 'same-origin', [CSRF_HEADER]: csrf }
    const pairs = await req('GET', '/ui/api/v1/sync/pairs', { cookie, 'sec-fetch-site': 'same-origin', [CSRF_HEADER]: csrf })
    expect(pairs.status).toBe(200)
    expect(pairs.json).toMatchObject({ object: 'list', data: [] })
    const made = await req('POST', '/ui/api/v1/namespaces', { ...same, 'content-type': 'application/json' }, '{"namespace":"from-console"}')
    expect(made.status).toBe(201)
    expect(namespaces()).toContain('from-console')
    // Errors of the inner door come back whole: code and fix.
    const bad = await req('POST', '/ui/api/v1/namespaces', { ...same, 'content-type': 'application/json' }, '{"namespace":"Bad Name"}')
    expectErrorEnvelope(bad, 400)
  })

  it('without the CSRF token, from another origin, or without an Origin on a change, the session counts for nothing', async () => {
    const { cookie, csrf } = await login()
    const json = { 'content-type': 'application/json' }
    const body = '{"namespace":"csrf-victim"}'
    const cases: [Record<string, string>, number, string][] = [
      // no CSRF token (a form post or a fetch by a page that cannot read it)
      [{ cookie, origin: ORIGIN, 'sec-fetch-site': 'same-origin', ...json }, 403, 'CSRF_INVALID'],
      [{ cookie, origin: ORIGIN, 'sec-fetch-site': 'same-origin', [CSRF_HEADER]: `${csrf.slice(0, -1)}x`, ...json }, 403, 'CSRF_INVALID'],
      // another origin: another port of the same host is the same *site*, so SameSite=Strict sends the cookie
      [{ cookie, origin: EVIL, 'sec-fetch-site': 'same-site', [CSRF_HEADER]: csrf, ...json }, 401, 'AUTH_REQUIRED'],
      [{ cookie, origin: EVIL, [CSRF_HEADER]: csrf, ...json }, 401, 'AUTH_REQUIRED'],
      [{ cookie, origin: 'null', [CSRF_HEADER]: csrf, ...json }, 401, 'AUTH_REQUIRED'],
      [{ cookie, 'sec-fetch-site': 'cross-site', [CSRF_HEADER]: csrf, ...json }, 401, 'AUTH_REQUIRED'],
      // a change without Origin
      [{ cookie, [CSRF_HEADER]: csrf, ...json }, 401, 'AUTH_REQUIRED'],
    ]
    for (const [headers, status, code] of cases) {
      const a = await req('POST', '/ui/api/v1/namespaces', headers, body)
      expectErrorEnvelope(a, status, code)
    }
    // A cross-site form post (urlencoded, text/plain) with the cookie: refused before any door.
    for (const type of ['application/x-www-form-urlencoded', 'text/plain']) {
      const a = await req(
        'POST',
        '/ui/api/v1/namespaces',
        { cookie, origin: EVIL, 'sec-fetch-site': 'same-site', 'content-type': type },
        'namespace=csrf-victim',
      )
      expectErrorEnvelope(a, 401, 'AUTH_REQUIRED')
    }
    // Even the console's own origin with the token cannot post a form: the /v1 door wants JSON.
    const form = await req(
      'POST',
      '/ui/api/v1/namespaces',
      { cookie, origin: ORIGIN, [CSRF_HEADER]: csrf, 'content-type': 'text/plain' },
      '{"namespace":"csrf-victim"}',
    )
    expectErrorEnvelope(form, 415, 'UNSUPPORTED_MEDIA_TYPE')
    expect(namespaces()).not.toContain('csrf-victim')
    expectErrorEnvelope(await req('GET', '/ui/api/session', { cookie, origin: EVIL, [CSRF_HEADER]: csrf }), 401, 'AUTH_REQUIRED')
    expectErrorEnvelope(
      await req('GET', '/ui/api/session', { cookie, 'sec-fetch-site': 'same-site', [CSRF_HEADER]: csrf }),
      401,
      'AUTH_REQUIRED',
    )
  })

  it('the cookie alone (as a server on another port of this host could get it) opens nothing, and no door hands out the token', async () => {
    const { cookie } = await login()
    // Whatever headers a non-browser forges, without the token the cookie reads and changes nothing.
    for (const p of ['/ui/api/session', '/ui/api/v1/sync/mesh', '/ui/api/v1/consent/grants']) {
      const a = await req('GET', p, { cookie, origin: ORIGIN, 'sec-fetch-site': 'same-origin' })
      expectErrorEnvelope(a, 403, 'CSRF_INVALID')
      expect(JSON.stringify(a.json)).not.toMatch(/[\w-]{43}/)
    }
  })

  it('a session cannot mint login links: those come from `spl ui` only', async () => {
    const { cookie, csrf } = await login()
    expectErrorEnvelope(await req('POST', '/ui/api/v1/ui/login', { cookie, origin: ORIGIN, [CSRF_HEADER]: csrf }), 404, 'NOT_FOUND')
  })

  it('the cookie is no admin credential at /v1, and logout ends the session', async () => {
    const { cookie, csrf } = await login()
    expectErrorEnvelope(await req('GET', '/v1/sync/pairs', { cookie, [CSRF_HEADER]: csrf }), 401, 'AUTH_REQUIRED')
    expectErrorEnvelope(await req('POST', '/ui/api/logout', { cookie, origin: ORIGIN }), 403, 'CSRF_INVALID')
    const out = await req('POST', '/ui/api/logout', { cookie, origin: ORIGIN, [CSRF_HEADER]: csrf })
    expect(out.status).toBe(200)
    expectErrorEnvelope(await req('GET', '/ui/api/v1/sync/pairs', { cookie, [CSRF_HEADER]: csrf }), 401, 'AUTH_REQUIRED')
  })

  it('methods other than GET, POST and DELETE are refused', async () => {
    const { cookie, csrf } = await login()
    const a = await req(
      'PUT',
      '/ui/api/v1/namespaces',
      { cookie, origin: ORIGIN, [CSRF_HEADER]: csrf, 'content-type': 'application/json' },
      '{}',
    )
    expectErrorEnvelope(a, 405, 'METHOD_NOT_ALLOWED')
  })
})

describe('the admin doors the console adds', () => {
  it('GET /v1/sync/mesh lists pulled pairs with the fix of their last error; history has 60 minutes', async () => {
    const peer = Keypair.fromSeed(new Uint8Array(32).fill(3)).did
    const made = await d.postJson('/v1/sync/pairs', { peer_did: peer, peer_url: 'http://127.0.0.1:1', thread_id: 'th_mesh' })
    expect(made.status).toBe(201)
    const id = (made.json as { pair_id: string }).pair_id
    const mesh = await d.call('GET', '/v1/sync/mesh')
    expect(mesh.status).toBe(200)
    expect(mesh.json).toMatchObject({
      object: 'sync_mesh',
      pulls: [{ direction: 'pull', pair_id: id, peer_did: peer, thread_id: 'th_mesh', rate_per_minute: 0, last_error: null }],
      serves: [],
    })
    const h = await d.call('GET', `/v1/sync/pairs/${id}/history`)
    expect(h.status).toBe(200)
    const history = h.json as { stored_per_minute: { minute_start: number }[]; latency_ms: { buckets: { le: number | null }[] } }
    expect(history.stored_per_minute).toHaveLength(60)
    expect(history.stored_per_minute[0]!.minute_start).toBeLessThan(history.stored_per_minute[59]!.minute_start)
    expect(history.latency_ms.buckets.at(-1)!.le).toBeNull()
    expectErrorEnvelope(await d.call('GET', '/v1/sync/pairs/ffffffffffffffff/history'), 404)
  })
})

describe('UiSessions', () => {
  it('a login link expires after 5 minutes; a session after 12 hours', () => {
    let now = 1_000_000
    const s = new UiSessions(() => now)
    const late = s.issueLogin()
    now += 5 * 60_000
    expect(s.redeem(late.token)).toBeNull()
    const ok = s.issueLogin()
    now += 60_000
    const made = s.redeem(ok.token)!
    expect(s.session(made.id)).not.toBeNull()
    now += 12 * 3_600_000
    expect(s.session(made.id)).toBeNull()
  })
})
