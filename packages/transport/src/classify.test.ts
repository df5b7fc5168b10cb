import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, expect, it } from 'vitest'
import { classifyFetchError, classifyHttpStatus, type PullError } from './classify.js'

async function failFetch(url: string, init: RequestInit = {}): Promise<PullError> {
  try {
    await fetch(url, init)
  } catch (err) {
    return classifyFetchError(err)
  }
  throw new Error('fetch succeeded')
}

describe('classifying failures of a pull', () => {
  it('a closed port is CONNECT_REFUSED', async () => {
    const server = createServer()
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const { port } = server.address() as AddressInfo
    await new Promise<void>((r) => server.close(() => r()))
    expect((await failFetch(`http://127.0.0.1:${port}/`)).pullCode).toBe('CONNECT_REFUSED')
  })

  it('a host that does not resolve is DNS_FAILURE', async () => {
    expect((await failFetch('http://no-such-host.invalid/')).pullCode).toBe('DNS_FAILURE')
  })

  it('no answer before the deadline is TIMEOUT', async () => {
    const server = createServer(() => {}) // never answers
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const { port } = server.address() as AddressInfo
    const e = await failFetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(200) })
    server.closeAllConnections()
    server.close()
    expect(e.pullCode).toBe('TIMEOUT')
  })

  it('a body cut off after the headers is PARSE_ERROR', async () => {
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-length': '1000', 'content-type': 'application/json' })
      res.write('{"records":[')
      setTimeout(() => res.destroy(), 20)
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const { port } = server.address() as AddressInfo
    const res = await fetch(`http://127.0.0.1:${port}/`)
    const e = await res.text().then(
      () => null,
      (err: unknown) => classifyFetchError(err, 'body'),
    )
    server.close()
    expect(e?.pullCode).toBe('PARSE_ERROR')
  })

  it('HTTP statuses map to HTTP_4XX / HTTP_5XX and keep the peer code and status', () => {
    const e4 = classifyHttpStatus(403, { code: 'NAMESPACE_CLAIM_DENIED', message: 'no' })
    expect([e4.pullCode, e4.remoteCode, e4.httpStatus]).toEqual(['HTTP_4XX', 'NAMESPACE_CLAIM_DENIED', 403])
    expect(e4.message).toContain('NAMESPACE_CLAIM_DENIED')
    const e5 = classifyHttpStatus(502, null)
    expect([e5.pullCode, e5.remoteCode, e5.httpStatus]).toEqual(['HTTP_5XX', undefined, 502])
    expect(e5.fix).toMatch(/logs/)
  })
})
