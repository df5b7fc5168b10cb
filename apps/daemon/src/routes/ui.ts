import crypto from 'node:crypto'
import { SplError } from '@spl/identity'
import { AuthRequiredError } from '@spl/transport'
import type { Context, Hono } from 'hono'
import { deleteCookie, getCookie, setCookie } from 'hono/cookie'
import type { DaemonContext } from '../context.js'
import { ASSET_NAME, asset } from '../ui/assets.js'
import { meshView, pairHistory } from '../ui/mesh.js'
import { SESSION_TTL_MS, secretMatches, sessionsOf, type UiSession } from '../ui/sessions.js'

/** The header the console's page sends its session's CSRF token in. */
export const CSRF_HEADER = 'x-spl-csrf'
const LOGIN_FIX = 'run `spl ui` and open the link it prints'

/**
 * The session cookie's name: one per daemon, since browsers do not keep cookies apart by port and
 * two daemons on one machine would otherwise overwrite each other's session.
 */
export function cookieNameFor(did: string): string {
  return `spl_ui_${crypto.createHash('sha256').update(did).digest('hex').slice(0, 12)}`
}

/** Headers of every /ui answer: no framing (clickjacking of the buttons), only our own scripts, no caching, no referrer. */
const PAGE_HEADERS: Record<string, string> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
}

/** True when `origin` is exactly the origin the request reached (`host`), http or https. */
function sameOrigin(origin: string, host: string): boolean {
  let u: URL
  let want: URL
  try {
    u = new URL(origin)
    want = new URL(`${u.protocol}//${host.trim()}`)
  } catch {
    return false // "null" and anything else that is not an origin
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return false
  return u.origin === origin.toLowerCase().replace(/\/$/, '') && u.host === want.host
}

/**
 * The console's session door: the session cookie counts only on a request the console's own page
 * made — no other origin (Origin, Sec-Fetch-Site), an Origin on every change — and only with the
 * session's CSRF token in its header (handed out once, in the login's page). Without a session: 401.
 */
function gate(c: Context, ctx: DaemonContext): UiSession {
  const site = c.req.header('sec-fetch-site')
  if (site !== undefined && site !== 'same-origin') {
    throw new AuthRequiredError(
      `Sec-Fetch-Site ${site.slice(0, 40)}: a page of another origin made this request, and the console's session counts only on its own pages`,
      LOGIN_FIX,
    )
  }
  const origin = c.req.header('origin')
  const host = c.req.header('host') ?? new URL(c.req.url).host
  if (origin !== undefined && !sameOrigin(origin, host)) {
    throw new AuthRequiredError(`Origin ${origin.slice(0, 100)} is not the console's origin`, LOGIN_FIX)
  }
  const m = c.req.method
  if (m !== 'GET' && m !== 'HEAD' && origin === undefined) {
    throw new AuthRequiredError('a change through the console must carry the Origin header that browsers send', LOGIN_FIX)
  }
  const session = sessionsOf(ctx).session(getCookie(c, cookieNameFor(ctx.keypair.did)))
  if (!session) throw new AuthRequiredError('there is no console session (it is made by the one-time link of `spl ui`)', LOGIN_FIX)
  const given = c.req.header(CSRF_HEADER)
  if (given === undefined || !secretMatches(given, session.csrf)) {
    throw new SplError('CSRF_INVALID', `the console's calls carry the session's CSRF token in ${CSRF_HEADER}; this one does not.`, {
      status: 403,
      fix: 'run `spl ui` again and open the new link (the token is kept by the page that logged in)',
    })
  }
  return session
}

/**
 * The web console's doors (issue 17): the page and its assets (open: they hold no data), the
 * one-time login, the session, and `/ui/api/v1/*` — the admin doors of `/v1/*` reached with the
 * session instead of the admin token. Registered before the admin middleware: none of these paths
 * is under /v1.
 */
export function uiRoutes(app: Hono, ctx: DaemonContext): void {
  const sessions = sessionsOf(ctx)
  const cookie = cookieNameFor(ctx.keypair.did)
  const withHeaders = async (c: Context, next: () => Promise<void>) => {
    await next()
    for (const [k, v] of Object.entries(PAGE_HEADERS)) c.res.headers.set(k, v)
  }
  app.use('/ui', withHeaders)
  app.use('/ui/*', withHeaders)

  app.get('/ui', (c) => c.redirect('/ui/', 301))
  app.get('/ui/', async (c) => {
    const page = await asset('index.html')
    if (!page)
      throw new SplError('UI_ASSETS_MISSING', 'the console files are not installed.', { status: 500, fix: 'reinstall @spl/daemon' })
    return c.body(page.body, 200, { 'content-type': page.type })
  })
  app.get('/ui/assets/:file', async (c) => {
    const name = c.req.param('file')
    const file = name === 'index.html' || !ASSET_NAME.test(name) ? null : await asset(name)
    if (!file) throw new SplError('NOT_FOUND', `no console file ${name.slice(0, 80)}.`, { status: 404 })
    return c.body(file.body, 200, { 'content-type': file.type })
  })

  // The login answers the page itself with the session's CSRF token in a <meta>: the page keeps
  // it in localStorage, which (unlike a cookie) no other port of this host can read. The cookie
  // alone — which browsers also send to other ports of the host, under /ui — opens nothing.
  app.get('/ui/login', async (c) => {
    const token = c.req.query('token') ?? ''
    const made = token ? sessions.redeem(token) : null
    // A spent, expired or unknown link: to the console, which says so (UI_LOGIN_INVALID) and what to do.
    if (!made) return c.redirect('/ui/#/login-failed', 303)
    const page = await asset('index.html')
    if (!page)
      throw new SplError('UI_ASSETS_MISSING', 'the console files are not installed.', { status: 500, fix: 'reinstall @spl/daemon' })
    setCookie(c, cookie, made.id, {
      httpOnly: true,
      sameSite: 'Strict',
      path: '/ui',
      maxAge: Math.floor(SESSION_TTL_MS / 1000),
      secure: new URL(c.req.url).protocol === 'https:',
    })
    const meta = `<meta name="spl-csrf" content="${made.session.csrf}">`
    return c.body(page.body.replace('</head>', `${meta}\n</head>`), 200, { 'content-type': page.type })
  })

  app.get('/ui/api/session', (c) => {
    const s = gate(c, ctx)
    return c.json({
      object: 'ui_session',
      expires_at: new Date(s.expiresAt).toISOString(),
      did: ctx.keypair.did,
      version: ctx.version,
    })
  })
  app.post('/ui/api/logout', (c) => {
    gate(c, ctx)
    sessions.end(getCookie(c, cookie))
    deleteCookie(c, cookie, { path: '/ui' })
    return c.json({ object: 'ui_session', ended: true })
  })

  // The console's data calls: the same admin doors as the CLI's, with the admin token added here
  // once the session, the origin and the CSRF token are checked. The browser's own headers
  // (cookie, origin) do not go further; the inner call meets every /v1 rule (JSON bodies only).
  app.all('/ui/api/v1/*', async (c) => {
    const method = c.req.method
    if (method !== 'GET' && method !== 'POST' && method !== 'DELETE') {
      throw new SplError('METHOD_NOT_ALLOWED', `the console uses GET, POST and DELETE, not ${method.slice(0, 20)}.`, { status: 405 })
    }
    gate(c, ctx)
    const url = new URL(c.req.url)
    const inner = new URL(url.pathname.slice('/ui/api'.length) + url.search, url.origin)
    // Login links come from `spl ui` (the admin token), not from a session.
    if (inner.pathname.startsWith('/v1/ui/'))
      throw new SplError('NOT_FOUND', 'login links are made by `spl ui`, not through the console.', { status: 404 })
    const headers = new Headers({ authorization: `Bearer ${ctx.adminToken}`, host: url.host })
    const type = c.req.header('content-type')
    if (type !== undefined) headers.set('content-type', type)
    const body = method === 'GET' ? undefined : await c.req.arrayBuffer()
    const res = await app.fetch(
      new Request(inner, { method, headers, ...(body && body.byteLength > 0 ? { body } : {}), signal: c.req.raw.signal }),
      c.env,
    )
    return new Response(res.body, {
      status: res.status,
      headers: { 'content-type': res.headers.get('content-type') ?? 'application/json' },
    })
  })
}

/**
 * The admin doors the console adds under /v1 (registered after the admin middleware): the login
 * link of `spl ui`, the mesh table in one call, and a pair's last hour for the charts.
 */
export function uiAdminRoutes(app: Hono, ctx: DaemonContext): void {
  app.post('/v1/ui/login', (c) => {
    const { token, expiresAt } = sessionsOf(ctx).issueLogin()
    return c.json(
      { object: 'ui_login', path: `/ui/login?token=${encodeURIComponent(token)}`, expires_at: new Date(expiresAt).toISOString() },
      201,
    )
  })
  app.get('/v1/sync/mesh', (c) => c.json(meshView(ctx)))
  app.get('/v1/sync/pairs/:id/history', (c) => c.json(pairHistory(ctx, ctx.engine.getPair(c.req.param('id')))))
}
