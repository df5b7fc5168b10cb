import crypto from 'node:crypto'
import { InvalidJsonError, SplError } from '@spl/identity'
import type { Context, ErrorHandler, MiddlewareHandler, NotFoundHandler } from 'hono'
import { HTTPException } from 'hono/http-exception'
import type { z } from 'zod'

const TOKEN_FIX = 'send `Authorization: Bearer <token>` with the token in $SYNCROPEL_HOME/admin.token'

/**
 * The request needs the admin token: it came from another host, or from loopback with a sign
 * that the operator is not the one asking (`reason`: a web page's Origin, a foreign Host, a proxy).
 */
export class AuthRequiredError extends SplError {
  override readonly name = 'AuthRequiredError'
  constructor(reason?: string, fix?: string) {
    super('AUTH_REQUIRED', reason ? `this door is for the instance admin: ${reason}.` : 'this door is for the instance admin.', {
      status: 401,
      fix: fix ?? `${TOKEN_FIX}, or call from loopback`,
    })
  }
}

/** A JSON door got a body of another content type (SPEC 7.1). */
export class UnsupportedMediaTypeError extends SplError {
  override readonly name = 'UnsupportedMediaTypeError'
  constructor(got: string | undefined) {
    super(
      'UNSUPPORTED_MEDIA_TYPE',
      got
        ? `this door takes application/json, not ${got.slice(0, 100)}.`
        : 'this door takes application/json; the request has a body without a Content-Type.',
      { status: 415, fix: 'send the body as JSON with `Content-Type: application/json`' },
    )
  }
}

/** A request body or parameter that does not fit. */
export class InvalidRequestError extends SplError {
  override readonly name = 'InvalidRequestError'
  constructor(message: string, fix?: string) {
    super('INVALID_REQUEST', message, { status: 400, ...(fix ? { fix } : {}) })
  }
}

/** Something asked for does not exist. */
export class NotFoundError extends SplError {
  override readonly name = 'NotFoundError'
  constructor(what: string, fix?: string) {
    super('NOT_FOUND', `${what} not found.`, { status: 404, ...(fix ? { fix } : {}) })
  }
}

/** One error handler: every thrown error becomes the envelope of SPEC 7.6 through SplError.from. */
export function errorHandler(onInternal: (err: unknown, c: Context) => void = () => {}): ErrorHandler {
  return (err, c) => {
    const e = SplError.from(err)
    if (e.code === 'INTERNAL' && !(err instanceof SplError)) onInternal(err, c)
    return errorResponse(c, e)
  }
}

/** The envelope of `err` as a response; after a 413 the rest of the body is not read, so the connection ends here. */
export function errorResponse(c: Context, err: SplError): Response {
  return err.status === 413 ? c.json(err.toJSON(), 413, { connection: 'close' }) : c.json(err.toJSON(), err.status as 400)
}

/** Unknown routes answer the envelope too. */
export const notFoundHandler: NotFoundHandler = (c) =>
  errorResponse(
    c,
    new SplError('NOT_FOUND', `no route for ${c.req.method} ${new URL(c.req.url).pathname}.`, {
      status: 404,
      fix: 'see /openapi.json for the API',
    }),
  )

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|::ffff:127\.\d+\.\d+\.\d+)$/

/** True for 127.0.0.0/8 and ::1 (also IPv4-mapped). */
function isLoopbackAddress(address: string | undefined): boolean {
  return address !== undefined && LOOPBACK.test(address)
}

/** True for a loopback host as found in a URL or a bind address: `localhost`, 127.0.0.0/8, ::1, [::1]. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '')
  return h === 'localhost' || isLoopbackAddress(h)
}

function tokenMatches(given: string, expected: string): boolean {
  const a = Buffer.from(given)
  const b = Buffer.from(expected)
  return a.length === b.length && crypto.timingSafeEqual(a, b)
}

/**
 * Headers that a proxy, a load balancer or a CDN adds: a request that carries one was relayed,
 * so its loopback peer address is the relay's, not the caller's.
 */
const PROXY_HEADER =
  /^(forwarded|via|x-forwarded-.+|x-real-ip|x-original-forwarded-for|x-envoy-external-address|x-remote-(ip|addr)|(.+-)?client-ip|.+-connecting-ip)$/

/** The hostname of a `Host` header (lowercase, no port, no brackets, no trailing dot); null when it is not one. */
export function hostnameOf(host: string): string | null {
  const h = host.trim().toLowerCase()
  const m = /^(\[[0-9a-f:.]+\]|[^:[\]]+)(:\d{1,5})?$/.exec(h)
  if (!m) return null
  return m[1]!.replace(/^\[|\]$/g, '').replace(/\.$/, '')
}

/** What adminAuth needs to know about this daemon. */
export interface AdminAuthOptions {
  token: string
  trustLoopback: boolean
  remoteAddress: (c: Context) => string | undefined
  /**
   * Host names (besides localhost, 127.0.0.0/8 and ::1) that name this daemon in a `Host`
   * header: the bound host, the host of `advertise_url`.
   */
  hostnames?: readonly string[]
}

/** Why a loopback request is not trusted as the operator, or null when it is (SPEC 7.1). */
export function loopbackRefusal(headers: Headers, hostnames: ReadonlySet<string>): { reason: string; fix: string } | null {
  for (const name of headers.keys()) {
    if (PROXY_HEADER.test(name)) {
      return {
        reason: `the request carries the proxy header ${name}, so it was relayed and its loopback address is not the caller's`,
        fix: `${TOKEN_FIX} (a proxy in front of spl must send it)`,
      }
    }
  }
  const host = headers.get('host')
  const hostname = host === null ? null : hostnameOf(host)
  const ours = (h: string) => hostnames.has(h) || isLoopbackHost(h)
  if (hostname === null || !ours(hostname)) {
    return {
      reason:
        host === null
          ? 'the request has no Host header'
          : `Host ${host.slice(0, 100)} does not name this daemon (a page on another name that resolves here: DNS rebinding)`,
      fix: `call http://127.0.0.1:<port> (or a name in [sync.discovery] advertise_url), or ${TOKEN_FIX}`,
    }
  }
  const origin = headers.get('origin')
  if (origin !== null && !sameOrigin(origin, host!)) {
    return {
      reason: `Origin ${origin.slice(0, 100)} is a web page on another site, and a web page in the operator's browser is not the operator`,
      fix: `use the spl CLI, or ${TOKEN_FIX}`,
    }
  }
  const site = headers.get('sec-fetch-site')
  if (site !== null && site !== 'same-origin' && site !== 'none') {
    return {
      reason: `Sec-Fetch-Site ${site.slice(0, 40)}: the browser says a page of another origin made this request`,
      fix: `use the spl CLI, or ${TOKEN_FIX}`,
    }
  }
  return null
}

/** True when `origin` is this daemon's own origin as the request reached it (`Host`), over http or https. */
function sameOrigin(origin: string, host: string): boolean {
  let u: URL
  try {
    u = new URL(origin)
  } catch {
    return false // "null" and anything else that is not an origin
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return false
  if (u.origin !== origin.toLowerCase().replace(/\/$/, '')) return false
  let want: URL
  try {
    want = new URL(`http://${host.trim()}`)
  } catch {
    return false
  }
  return u.hostname === want.hostname && (u.port || (u.protocol === 'https:' ? '443' : '80')) === (want.port || '80')
}

/**
 * Admin doors (SPEC 7.1): the admin bearer token from anywhere, or — when `trustLoopback` is on —
 * a loopback peer that shows no sign of a proxy, of a web page (Origin, Sec-Fetch-Site) or of a
 * foreign name in `Host` (DNS rebinding). A refusal names the reason.
 */
export function adminAuth(options: AdminAuthOptions): MiddlewareHandler {
  const hostnames = new Set((options.hostnames ?? []).map((h) => hostnameOf(h) ?? h.toLowerCase()).filter((h) => h !== ''))
  return async (c, next) => {
    const auth = c.req.header('authorization')
    if (auth?.startsWith('Bearer ') && tokenMatches(auth.slice(7).trim(), options.token)) return next()
    if (!options.trustLoopback || !isLoopbackAddress(options.remoteAddress(c))) throw new AuthRequiredError()
    const refusal = loopbackRefusal(c.req.raw.headers, hostnames)
    if (refusal) throw new AuthRequiredError(refusal.reason, refusal.fix)
    return next()
  }
}

/** True for `application/json` with any parameters (`; charset=utf-8`). */
function isJsonType(type: string): boolean {
  return /^application\/json\s*(;|$)/i.test(type.trim())
}

/**
 * JSON doors (SPEC 7.1): a POST, PUT or PATCH that has a body, or names a content type, must be
 * `application/json`, else `415`. A web page can send text/plain or a form without asking the
 * server first (no CORS preflight); it cannot send application/json that way.
 */
export function jsonBodiesOnly(): MiddlewareHandler {
  return async (c, next) => {
    const m = c.req.method
    if (m !== 'POST' && m !== 'PUT' && m !== 'PATCH') return next()
    const type = c.req.header('content-type')
    const length = c.req.header('content-length')
    const hasBody = c.req.header('transfer-encoding') !== undefined || (length !== undefined && length.trim() !== '0')
    if (type === undefined ? hasBody : !isJsonType(type)) throw new UnsupportedMediaTypeError(type)
    return next()
  }
}

/** Reads and checks a JSON body against `schema`; throws INVALID_JSON / INVALID_REQUEST. */
export async function readJson<S extends z.ZodType>(c: Context, schema: S): Promise<z.output<S>> {
  let raw: unknown
  try {
    const text = await c.req.text()
    raw = text.length === 0 ? {} : JSON.parse(text)
  } catch (err) {
    // A body cut at the size limit is a 413; anything else that stops the read is bad JSON.
    if (err instanceof HTTPException) throw err
    throw new InvalidJsonError(err)
  }
  return parseWith(schema, raw, 'body')
}

/** Checks `value` against `schema`; throws INVALID_REQUEST naming the first offending field. */
export function parseWith<S extends z.ZodType>(schema: S, value: unknown, where: string): z.output<S> {
  const parsed = schema.safeParse(value)
  if (parsed.success) return parsed.data
  const issue = parsed.error.issues[0]
  const path = issue?.path.length ? `${where}.${issue.path.map(String).join('.')}` : where
  throw new InvalidRequestError(`${path}: ${issue?.message ?? 'invalid'}`)
}
