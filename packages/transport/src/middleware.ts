import crypto from 'node:crypto'
import { InvalidJsonError, SplError } from '@spl/identity'
import type { Context, ErrorHandler, MiddlewareHandler, NotFoundHandler } from 'hono'
import { HTTPException } from 'hono/http-exception'
import type { z } from 'zod'

/** The request needs the admin token (or a loopback origin). */
export class AuthRequiredError extends SplError {
  override readonly name = 'AuthRequiredError'
  constructor() {
    super('AUTH_REQUIRED', 'this door is for the instance admin.', {
      status: 401,
      fix: 'send `Authorization: Bearer <token>` with the token in $SYNCROPEL_HOME/admin.token, or call from loopback',
    })
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
 * Admin doors (SPEC 7.1): the admin bearer token, or a loopback peer without forwarding
 * headers when `trustLoopback` is on.
 */
export function adminAuth(options: {
  token: string
  trustLoopback: boolean
  remoteAddress: (c: Context) => string | undefined
}): MiddlewareHandler {
  return async (c, next) => {
    const auth = c.req.header('authorization')
    if (auth?.startsWith('Bearer ') && tokenMatches(auth.slice(7).trim(), options.token)) return next()
    const forwarded = c.req.header('forwarded') !== undefined || c.req.header('x-forwarded-for') !== undefined
    if (options.trustLoopback && !forwarded && isLoopbackAddress(options.remoteAddress(c))) return next()
    throw new AuthRequiredError()
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
