import http from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { getRequestListener, RequestError } from '@hono/node-server'
import { SplError } from '@spl/identity'
import type { Hono } from 'hono'

// The HTTP layer under the hono app: what Node's parser and the node-server adapter refuse
// before the app sees a request (oversized headers, bad request lines, a bad Host, timeouts)
// answers the SPEC 7.6 envelope too, instead of Node's empty `431`/`400`.

/** What the HTTP layer refused, as the error the envelope is made of. */
export function clientErrorOf(err: NodeJS.ErrnoException): SplError {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return new SplError('HEADERS_TOO_LARGE', `the request headers are over ${http.maxHeaderSize} bytes.`, {
        status: 431,
        fix: 'send fewer or shorter headers (cookies set for localhost by other local sites count too)',
      })
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return new SplError('PAYLOAD_TOO_LARGE', 'the chunk extensions of the request are too large.', {
        status: 413,
        fix: 'send the body without chunk extensions',
      })
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new SplError('REQUEST_TIMEOUT', 'the request did not arrive in time.', {
        status: 408,
        fix: 'send the whole request at once; retry',
      })
    default:
      return new SplError('MALFORMED_REQUEST', `the request is not valid HTTP/1.1 (${String(err.code ?? 'parse error').slice(0, 60)}).`, {
        status: 400,
        fix: 'send a well-formed HTTP/1.1 request (any HTTP client library does)',
      })
  }
}

/** The envelope of `err` as a complete HTTP/1.1 response that closes the connection. */
export function rawErrorResponse(err: SplError): string {
  const body = JSON.stringify(err.toJSON())
  return (
    `HTTP/1.1 ${err.status} ${http.STATUS_CODES[err.status] ?? 'Error'}\r\n` +
    'Content-Type: application/json\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\n` +
    'Connection: close\r\n\r\n' +
    body
  )
}

function sendEnvelope(res: http.ServerResponse, err: SplError): void {
  const body = JSON.stringify(err.toJSON())
  res.writeHead(err.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), connection: 'close' })
  res.end(body)
}

/** Node's internals that feed a server socket to its HTTP parser (see _http_server.js, upgrade). */
interface ParsedSocket {
  parser?: { unconsume?: () => void } | null
  _handle?: { _consumed?: boolean } | null
}

/** Stops the HTTP parser reading `socket`: its bytes come as plain data events again. */
function detachFromParser(socket: Duplex): void {
  const s = socket as Duplex & ParsedSocket
  if (s._handle?._consumed) {
    s._handle._consumed = false
    s.parser?.unconsume?.()
  }
  socket.removeAllListeners('data')
  socket.removeAllListeners('end')
}

/** Writes the envelope as a raw response and closes, reading (and dropping) what still comes. */
function endWithEnvelope(socket: Duplex, err: SplError): void {
  // Keep reading, so that closing does not reset the connection before the client has read the answer;
  // but no longer into the HTTP parser, which fails again on every chunk of a body still coming.
  // Detach the socket as node does for an upgrade: the parser reads the handle itself ("consume").
  detachFromParser(socket)
  socket.on('data', () => {})
  socket.resume()
  socket.end(rawErrorResponse(err))
  setTimeout(() => socket.destroy(), 5_000).unref()
}

/** Answers through the response of the request that broke; whatever the app answers later goes nowhere. */
function answerThrough(res: http.ServerResponse, err: SplError): void {
  sendEnvelope(res, err)
  const self = () => res
  Object.assign(res, { writeHead: self, setHeader: self, write: () => true, end: self, flushHeaders: () => {} })
}

/**
 * The HTTP layer refused what came on `socket`. Three cases, by the response in flight there:
 * none → a raw answer; one for an earlier, complete request (pipelining) → that answer first,
 * then the refusal; the one of the request whose body broke (bad chunk framing) → the refusal
 * through it. Only a response already under way cannot be followed by an answer: then the
 * socket is dropped.
 */
function answerSocket(socket: Duplex, err: SplError): void {
  const res = (socket as Duplex & { _httpMessage?: http.ServerResponse | null })._httpMessage
  if (!socket.writable) {
    socket.destroy()
    return
  }
  if (!res) {
    endWithEnvelope(socket, err)
    return
  }
  if (res.req?.complete) {
    res.once('finish', () => (socket.writable ? endWithEnvelope(socket, err) : socket.destroy()))
    res.once('close', () => {
      if (!res.writableFinished) socket.destroy()
    })
    return
  }
  if (res.headersSent) {
    socket.destroy()
    return
  }
  answerThrough(res, err)
}

/**
 * A lingering close, for every connection the server ends (`Connection: close` after a 413 or a
 * refusal, the adapter giving up on draining a body): the answer went out before the request body
 * was read, and closing at once would reset the connection while the client still sends — a
 * client's kernel then drops the answer it has not read yet. So this side ends its half, reads and
 * drops what still comes until the client closes its side, for at most two seconds.
 */
function lingeringClose(socket: Socket, req: http.IncomingMessage | undefined): void {
  if (socket.destroyed) return
  req?.resume()
  socket.resume()
  if (socket.writable) socket.end()
  setTimeout(() => socket.destroy(), 2_000).unref()
}

const hostRequired = () =>
  new SplError('HOST_REQUIRED', 'an HTTP/1.1 request must carry a Host header.', {
    status: 400,
    fix: 'send `Host: 127.0.0.1:<port>` (any HTTP client does)',
  })

/**
 * An http.Server for `app` (the node-server adapter underneath) whose own refusals carry the
 * envelope: parser errors (`clientError`), a missing or unusable Host, an `Expect` it cannot
 * meet, and `CONNECT`.
 */
export function createHttpServer(app: Hono, options: { hostname: string; onInternal?: (err: unknown) => void }): http.Server {
  const listener = getRequestListener(app.fetch, {
    hostname: options.hostname,
    errorHandler: (err) => {
      let e: SplError
      if (err instanceof RequestError) {
        e = new SplError('MALFORMED_REQUEST', `the request cannot be read: ${err.message.slice(0, 100)}.`, {
          status: 400,
          fix: 'check the Host header and the request target (an absolute path such as /v1/records)',
        })
      } else {
        options.onInternal?.(err)
        e = SplError.from(err)
      }
      return new Response(JSON.stringify(e.toJSON()), { status: e.status, headers: { 'content-type': 'application/json' } })
    },
  })
  const lastRequest = new WeakMap<Socket, http.IncomingMessage>()
  // Node's own missing-Host answer is an empty 400: this listener answers it instead.
  const server = http.createServer({ requireHostHeader: false }, (req, res) => {
    if (req.headers.host === undefined && req.httpVersionMajor === 1 && req.httpVersionMinor >= 1) {
      sendEnvelope(res, hostRequired())
      return
    }
    lastRequest.set(req.socket, req)
    void listener(req, res)
  })
  server.on('connection', (socket: Socket) => {
    socket.destroySoon = () => lingeringClose(socket, lastRequest.get(socket))
  })
  // The parser stays in its error state and fails again on every chunk of a body still coming:
  // the first refusal is the answer, the later ones must not reset the connection under it.
  const refused = new WeakSet<Duplex>()
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    if (err.code === 'ECONNRESET') {
      socket.destroy()
      return
    }
    if (refused.has(socket)) return
    refused.add(socket)
    answerSocket(socket, clientErrorOf(err))
  })
  server.on('checkExpectation', (req: http.IncomingMessage, res: http.ServerResponse) => {
    sendEnvelope(
      res,
      new SplError('EXPECTATION_FAILED', `Expect: ${String(req.headers.expect).slice(0, 60)} is not supported.`, {
        status: 417,
        fix: 'leave Expect out, or send `Expect: 100-continue`',
      }),
    )
  })
  server.on('connect', (_req: http.IncomingMessage, socket: Duplex) => {
    answerSocket(
      socket,
      new SplError('METHOD_NOT_ALLOWED', 'CONNECT is not supported: this is not a proxy.', {
        status: 405,
        fix: 'call the daemon directly (see /openapi.json)',
      }),
    )
  })
  return server
}
