import { describe, expect, it } from 'vitest'
import { InternalError, InvalidDidError, SplError } from './errors.js'

describe('SplError.from', () => {
  it('passes the house type through unchanged', () => {
    const e = new InvalidDidError('did:nope', 'bad')
    expect(SplError.from(e)).toBe(e)
  })

  it('maps a zod-shaped error to 400 INVALID_REQUEST naming the first field', () => {
    const zod = Object.assign(new Error('x'), { name: 'ZodError', issues: [{ path: ['body', 'text'], message: 'expected string' }] })
    expect(SplError.from(zod).toJSON()).toEqual({ object: 'error', code: 'INVALID_REQUEST', message: 'body.text: expected string' })
    expect(SplError.from(zod).status).toBe(400)
  })

  it('maps a JSON SyntaxError to 400 INVALID_JSON', () => {
    let thrown: unknown
    try {
      JSON.parse('{nope')
    } catch (err) {
      thrown = err
    }
    const e = SplError.from(thrown)
    expect(e.status).toBe(400)
    expect(e.toJSON()).toEqual({
      object: 'error',
      code: 'INVALID_JSON',
      message: 'the request body is not valid JSON.',
      fix: 'send a JSON object with content-type: application/json',
    })
  })

  it('maps an HTTPException-shaped error by its status; 413 is PAYLOAD_TOO_LARGE', () => {
    const http = (status: number, message = '') => Object.assign(new Error(message), { status, getResponse: () => new Response() })
    expect(SplError.from(http(413)).toJSON()).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', fix: 'send smaller batches' })
    expect(SplError.from(http(413)).status).toBe(413)
    expect(SplError.from(http(405, 'no')).toJSON()).toEqual({ object: 'error', code: 'HTTP_405', message: 'no' })
    expect(SplError.from(http(418)).message).toBe('request refused')
  })

  it('turns anything else into a 500 INTERNAL that hides the message and keeps the cause', () => {
    const secret = new Error('password=hunter2 at /srv/db')
    const e = SplError.from(secret)
    expect(e).toBeInstanceOf(InternalError)
    expect(e.status).toBe(500)
    expect(e.code).toBe('INTERNAL')
    expect(JSON.stringify(e.toJSON())).not.toContain('hunter2')
    expect(e.cause).toBe(secret)
    expect(SplError.from('a string').code).toBe('INTERNAL')
    expect(SplError.from(secret, { message: 'the change feed failed' }).toJSON()).toEqual({
      object: 'error',
      code: 'INTERNAL',
      message: 'the change feed failed',
    })
  })
})
