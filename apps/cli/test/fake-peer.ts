import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { Keypair } from '@spl/identity'
import { type Envelope, type RecordFields, signRecord, toEnvelope } from '@spl/records'
import { createResponseProof, PROOF_HEADER, ReplayCache, verifyRequestProof } from '@spl/transport'

/** One `GET /v1/sync/changes` the fake received (after its request proof verified). */
export interface ChangesCall {
  thread: string
  since: string | null
  feed: string
  timeoutMs: number
  /** The `iss` of the caller's SPL-Proof. */
  caller: string
  jti: string
  at: number
}

/** How the fake answers one change-feed request. */
export type Reply =
  /** A JSON body (an object is serialised), signed by `signer` (default: the fake's own key; null = no proof). */
  | { kind: 'json'; status?: number; body: unknown; signer?: Keypair | null; delayMs?: number }
  /** Declares `content-length` larger than what it sends, then cuts the connection. */
  | { kind: 'truncated'; body: string }
  /** Never answers (the socket stays open until the fake closes). */
  | { kind: 'hang' }

export type Behaviour = (call: ChangesCall) => Reply | Promise<Reply>

/** A change-feed page body, as an spl source would send it. */
export function page(records: unknown[], nextCursor: string, hasMore = false): Record<string, unknown> {
  return { records, next_cursor: nextCursor, has_more: hasMore, server_time: Date.now() }
}

/** A record signed by `keypair` (its actor), as an envelope. */
export function signedEnvelope(keypair: Keypair, thread: string, clock: number, body: Record<string, unknown>): Envelope {
  const record: RecordFields = {
    parents: [],
    thread,
    actor: keypair.did,
    act: 'INTEND',
    body,
    clock,
    data_type: 'SCALAR',
  }
  return toEnvelope(signRecord(keypair, record), Date.now())
}

/**
 * The usual source: the first pull (no cursor) gets `records()`, later pulls get nothing new; a
 * long poll is held for up to a second before its empty answer, so the puller does not spin.
 */
export function serveRecords(records: () => unknown[]): Behaviour {
  return async (call) => {
    if (call.since === null) return { kind: 'json', body: page(records(), 'f.1') }
    const delayMs = call.feed === 'longpoll' ? Math.min(call.timeoutMs, 1000) : 0
    return { kind: 'json', body: page([], 'f.1'), delayMs }
  }
}

function errorBody(status: number, code: string, message: string): Reply {
  return { kind: 'json', status, body: { object: 'error', code, message }, signer: null }
}

/**
 * A node:http server that impersonates an spl source: it answers `/v1/identity` and `/health`, checks
 * the caller's SPL-Proof on `/v1/sync/changes` like a real source, then answers with the behaviour
 * registered for the requested thread.
 */
export class FakePeer {
  readonly calls: ChangesCall[] = []
  readonly #behaviours = new Map<string, Behaviour>()
  readonly #replay = new ReplayCache()

  private constructor(
    readonly keypair: Keypair,
    private readonly server: http.Server,
    readonly url: string,
  ) {}

  get did(): string {
    return this.keypair.did
  }

  /** Listens on 127.0.0.1 on a free port. */
  static async start(keypair: Keypair = Keypair.generate()): Promise<FakePeer> {
    let self: FakePeer | undefined
    const server = http.createServer((req, res) => {
      self!.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' })
        res.end(String(err))
      })
    })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(0, '127.0.0.1', () => resolve())
    })
    const { port } = server.address() as AddressInfo
    self = new FakePeer(keypair, server, `http://127.0.0.1:${port}`)
    return self
  }

  /** Answers change-feed requests for `thread` with `behaviour`. */
  on(thread: string, behaviour: Behaviour): void {
    this.#behaviours.set(thread, behaviour)
  }

  /** The change-feed requests received for `thread`. */
  callsFor(thread: string): ChangesCall[] {
    return this.calls.filter((c) => c.thread === thread)
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.url)
    if (url.pathname === '/health') return this.send(res, 200, JSON.stringify({ status: 'ok', did: this.did }))
    if (url.pathname === '/v1/identity') {
      const body = {
        object: 'identity',
        did: this.did,
        namespace: 'default',
        handle: null,
        method: 'key',
        version: 'fake',
      }
      return this.send(res, 200, JSON.stringify(body))
    }
    if (url.pathname !== '/v1/sync/changes') {
      return this.reply(res, null, errorBody(404, 'NOT_FOUND', `no route for ${url.pathname}`))
    }
    let proof: Awaited<ReturnType<typeof verifyRequestProof>>
    try {
      proof = await verifyRequestProof(req.headers['spl-proof'] as string | undefined, {
        selfDid: this.did,
        method: req.method ?? 'GET',
        pathAndQuery: url.pathname + url.search,
        replay: this.#replay,
      })
    } catch (err) {
      return this.reply(res, null, errorBody(401, 'PROOF_INVALID', err instanceof Error ? err.message : String(err)))
    }
    const call: ChangesCall = {
      thread: url.searchParams.get('thread') ?? '',
      since: url.searchParams.get('since'),
      feed: url.searchParams.get('feed') ?? 'normal',
      timeoutMs: Number(url.searchParams.get('timeout') ?? 25_000),
      caller: proof.iss,
      jti: proof.jti,
      at: Date.now(),
    }
    this.calls.push(call)
    const behaviour = this.#behaviours.get(call.thread)
    if (!behaviour) return this.reply(res, call, errorBody(404, 'NOT_FOUND', `no thread ${call.thread} here`))
    await this.reply(res, call, await behaviour(call))
  }

  private async reply(res: http.ServerResponse, call: ChangesCall | null, r: Reply): Promise<void> {
    if (r.kind === 'hang') return // the socket stays open; close() cuts it
    if (r.kind === 'truncated') {
      const bytes = Buffer.from(r.body, 'utf8')
      res.writeHead(200, {
        'content-type': 'application/json',
        'content-length': String(bytes.length * 2 + 100),
      })
      res.write(bytes)
      setTimeout(() => res.socket?.destroy(), 50)
      return
    }
    if (r.delayMs) await new Promise((resolve) => setTimeout(resolve, r.delayMs))
    const body = typeof r.body === 'string' ? r.body : JSON.stringify(r.body)
    const headers: Record<string, string> = {}
    const signer = r.signer === undefined ? this.keypair : r.signer
    if (signer && call)
      headers[PROOF_HEADER] = await createResponseProof(signer, {
        callerDid: call.caller,
        jti: call.jti,
        body,
      })
    this.send(res, r.status ?? 200, body, headers)
  }

  private send(res: http.ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
    if (res.destroyed) return
    const bytes = Buffer.from(body, 'utf8')
    const type = body.startsWith('{') || body.startsWith('[') ? 'application/json' : 'text/plain'
    res.writeHead(status, { 'content-type': type, 'content-length': String(bytes.length), ...headers })
    res.end(bytes)
  }

  /** Stops listening and cuts every open connection (hanging answers included). */
  async close(): Promise<void> {
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close()
  }
}
