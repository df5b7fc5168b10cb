import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import type { PullError } from './classify.js'
import { httpGet } from './http-get.js'

const servers: Server[] = []
afterEach(() => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections()
    s.close()
  }
})

async function serve(handler: Parameters<typeof createServer>[1]): Promise<URL> {
  const server = createServer(handler)
  servers.push(server)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/x?y=1`)
}

const failure = (p: Promise<unknown>) =>
  p.then(
    () => {
      throw new Error('the request succeeded')
    },
    (err: PullError) => err,
  )

describe('httpGet', () => {
  it('returns status, lowercase headers and the body, and reuses the connection', async () => {
    const ports = new Set<number>()
    const url = await serve((req, res) => {
      ports.add(req.socket.remotePort!)
      res.writeHead(201, { 'SPL-Proof': 'tok', 'content-type': 'application/json' })
      res.end(`{"path":"${req.url}","h":"${req.headers['x-a']}","é":"ü"}`)
    })
    for (let i = 0; i < 3; i++) {
      const a = await httpGet(url, () => ({ 'x-a': 'b' }), AbortSignal.timeout(2000))
      expect(a.status).toBe(201)
      expect(a.headers['spl-proof']).toBe('tok')
      expect(JSON.parse(a.body)).toEqual({ path: '/x?y=1', h: 'b', é: 'ü' })
    }
    expect(ports.size).toBe(1)
  })

  it('a connection the peer closed while it sat idle does not fail the next request', async () => {
    let n = 0
    const url = await serve((req, res) => {
      n++
      res.end('ok')
      // The server drops the kept-alive socket right after answering.
      res.on('finish', () => setTimeout(() => req.socket.destroy(), 5))
    })
    expect((await httpGet(url, () => ({}), AbortSignal.timeout(2000))).body).toBe('ok')
    await new Promise((r) => setTimeout(r, 50))
    expect((await httpGet(url, () => ({}), AbortSignal.timeout(2000))).body).toBe('ok')
    expect(n).toBe(2)
  })

  it('a closed port is CONNECT_REFUSED, an unknown host DNS_FAILURE', async () => {
    const url = await serve(() => {})
    const closed = servers.pop()!
    await new Promise<void>((r) => closed.close(() => r()))
    expect((await failure(httpGet(url, () => ({}), AbortSignal.timeout(2000)))).pullCode).toBe('CONNECT_REFUSED')
    expect((await failure(httpGet(new URL('http://no-such-host.invalid/'), () => ({}), AbortSignal.timeout(5000)))).pullCode).toBe(
      'DNS_FAILURE',
    )
  })

  it('no answer in time is TIMEOUT, before the head and while the body trickles', async () => {
    const silent = await serve(() => {})
    expect((await failure(httpGet(silent, () => ({}), AbortSignal.timeout(150)))).pullCode).toBe('TIMEOUT')
    const slow = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': '100' })
      res.write('{"records":')
    })
    expect((await failure(httpGet(slow, () => ({}), AbortSignal.timeout(150)))).pullCode).toBe('TIMEOUT')
  })

  it('a body cut off after the head is PARSE_ERROR; so is an answer over the size limit', async () => {
    const cut = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': '1000' })
      res.write('{"records":[')
      setTimeout(() => res.destroy(), 20)
    })
    expect((await failure(httpGet(cut, () => ({}), AbortSignal.timeout(2000)))).pullCode).toBe('PARSE_ERROR')
    const big = await serve((_req, res) => res.end('x'.repeat(5000)))
    const e = await failure(httpGet(big, () => ({}), AbortSignal.timeout(2000), 1000))
    expect([e.pullCode, e.message]).toEqual(['PARSE_ERROR', "the peer's answer is larger than 1000 bytes"])
  })

  it('a connection reset after the head is PARSE_ERROR, and the request is not sent again', async () => {
    let n = 0
    const url = await serve((req, res) => {
      n++
      res.writeHead(200, { 'content-length': '1000' })
      res.write('{"records":[')
      setTimeout(() => req.socket.resetAndDestroy(), 20)
    })
    // Twice: the second request goes out on a pooled connection, where a reset could look stale.
    for (let i = 0; i < 2; i++) expect((await failure(httpGet(url, () => ({}), AbortSignal.timeout(2000)))).pullCode).toBe('PARSE_ERROR')
    expect(n).toBe(2)
  })

  it('a pooled connection reset before any answer is retried once, with fresh headers', async () => {
    let n = 0
    const url = await serve((req, res) => {
      n++
      if (n === 2) {
        req.socket.resetAndDestroy() // the second request meets a connection the peer drops
        return
      }
      res.end(`answer ${n} to ${req.headers['x-try']}`)
    })
    let tries = 0
    const headers = () => ({ 'x-try': String(++tries) })
    expect((await httpGet(url, headers, AbortSignal.timeout(2000))).body).toBe('answer 1 to 1')
    expect((await httpGet(url, headers, AbortSignal.timeout(2000))).body).toBe('answer 3 to 3')
    expect(n).toBe(3)
  })

  it('a protocol other than http and https is refused', async () => {
    expect((await failure(httpGet(new URL('ftp://example.com/'), () => ({}), AbortSignal.timeout(100)))).pullCode).toBe('CONNECT_REFUSED')
  })
})
