import { Hono } from 'hono'
import { HTTPException } from 'hono/http-exception'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { errorHandler, InvalidRequestError, notFoundHandler } from './middleware.js'

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
