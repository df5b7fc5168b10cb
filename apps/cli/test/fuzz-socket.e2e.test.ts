import net from 'node:net'
import path from 'node:path'
import { Keypair } from '@spl/identity'
import { createRequestProof } from '@spl/transport'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  caseFor,
  type Door,
  describeCase,
  doorKey,
  doorsOf,
  type FuzzCase,
  type Known,
  MAX_BODY,
  runSeed,
  UNKNOWN_DOOR,
} from '../../../test-utils/fuzz.js'
import { TestDaemon } from '../../../test-utils/test-daemon.js'
import { Database, type SqliteDb } from './seed-records.js'

// Issue 18, the fuzzer on a socket: what app.request() cannot show, against a real `spl serve`.
// The same generated cases (100 per door of the daemon's own /openapi.json, plus unknown paths)
// written as raw HTTP/1.1 bytes, then the framing only a socket has (oversized headers, bad
// request lines, smuggling shapes, bodies over 16 MiB) and slow partial requests held open while
// the daemon keeps answering. Per case: an HTTP answer (never a silent close), no 5xx, the
// envelope on every error, no rows added or removed by a refused request, /health after each batch.
// `pnpm fuzz` runs it with SPL_FUZZ_SOCKET_CASES=1000 and SPL_FUZZ_SLOW_TIMEOUT=1 (a slow client
// held until the server's own timeout answers it).

const DEFAULT_SEED = 18
const seed = runSeed(DEFAULT_SEED)
const casesPerDoor = Number(process.env['SPL_FUZZ_SOCKET_CASES'] ?? 100)
const ALLOWED_5XX: Record<string, readonly string[]> = { 'POST /v1/sync/once': ['PEER_UNREACHABLE'] }

interface RawAnswer {
  status: number
  headers: Record<string, string>
  body: string
  /** Milliseconds until the answer was complete. */
  ms: number
}

/** Decodes a chunked body (enough for the daemon's answers). */
function dechunk(b: Buffer): Buffer {
  const out: Buffer[] = []
  let i = 0
  while (i < b.length) {
    const eol = b.indexOf('\r\n', i)
    if (eol < 0) break
    const size = Number.parseInt(b.subarray(i, eol).toString('latin1').split(';')[0]!, 16)
    if (!Number.isFinite(size) || size === 0) break
    out.push(b.subarray(eol + 2, eol + 2 + size))
    i = eol + 2 + size + 2
  }
  return Buffer.concat(out)
}

/** `buf` without the interim 1xx answers at its start (100 Continue). */
function final(buf: Buffer): Buffer {
  while (/^HTTP\/1\.[01] 1\d\d /.test(buf.subarray(0, 16).toString('latin1'))) {
    const end = buf.indexOf('\r\n\r\n')
    if (end < 0) return Buffer.alloc(0)
    buf = buf.subarray(end + 4)
  }
  return buf
}

/** True when `buf` holds a whole response (by Content-Length or the last chunk). */
function complete(all: Buffer): boolean {
  const buf = final(all)
  const end = buf.indexOf('\r\n\r\n')
  if (end < 0) return false
  const head = buf.subarray(0, end).toString('latin1').toLowerCase()
  const cl = /\r\ncontent-length: *(\d+)/.exec(head)
  if (cl) return buf.length - end - 4 >= Number(cl[1])
  if (/\r\ntransfer-encoding: *chunked/.test(head)) return buf.subarray(-5).toString('latin1') === '0\r\n\r\n'
  return false
}

/** Parses the first HTTP response in `buf`, or null. */
function parseResponse(all: Buffer): Omit<RawAnswer, 'ms'> | null {
  const buf = final(all)
  const end = buf.indexOf('\r\n\r\n')
  if (end < 0) return null
  const head = buf.subarray(0, end).toString('latin1').split('\r\n')
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(head[0] ?? '')
  if (!m) return null
  const headers: Record<string, string> = {}
  for (const line of head.slice(1)) {
    const c = line.indexOf(':')
    if (c > 0) headers[line.slice(0, c).trim().toLowerCase()] = line.slice(c + 1).trim()
  }
  let body = buf.subarray(end + 4)
  if (headers['transfer-encoding']?.includes('chunked')) body = dechunk(body)
  else if (headers['content-length'] !== undefined) body = body.subarray(0, Number(headers['content-length']))
  return { status: Number(m[1]), headers, body: body.toString('utf8') }
}

/**
 * Writes `bytes` to 127.0.0.1:`port` and reads until the server closes (every request here says
 * `Connection: close`) or `timeoutMs` passes. Null when no HTTP answer came.
 */
function raw(port: number, bytes: Buffer, timeoutMs = 30_000): Promise<RawAnswer | null> {
  const t0 = Date.now()
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    const s = net.connect(port, '127.0.0.1')
    let done = false
    const finish = () => {
      if (done) return
      done = true
      clearTimeout(timer)
      s.destroy()
      const r = parseResponse(Buffer.concat(chunks))
      resolve(r && { ...r, ms: Date.now() - t0 })
    }
    const timer = setTimeout(finish, timeoutMs)
    s.on('data', (d: Buffer) => {
      chunks.push(d)
      // A keep-alive answer is complete once its body is: no need to wait for a close.
      if (complete(Buffer.concat(chunks))) finish()
    })
    s.on('end', finish)
    s.on('close', finish)
    // The server may answer (413, 431) and close before the whole body is written: EPIPE is fine.
    s.on('error', () => setTimeout(finish, 50))
    // Large requests go out 64 KiB at a time and stop once an answer comes (as curl does):
    // written all at once, the server's early 413 is lost in the reset of its close.
    let at = 0
    const pump = () => {
      while (at < bytes.length && final(Buffer.concat(chunks)).length === 0 && !done) {
        const part = bytes.subarray(at, at + 65_536)
        at += part.length
        if (!s.write(part)) {
          s.once('drain', pump)
          return
        }
      }
    }
    pump()
  })
}

/** A generated case as raw HTTP/1.1 bytes (its own Host when it has one). */
function bytesOf(c: FuzzCase, port: number): Buffer {
  const headers = { ...c.headers }
  const host = headers['host'] ?? `127.0.0.1:${port}`
  delete headers['host']
  const body = c.body === undefined ? undefined : typeof c.body === 'string' ? Buffer.from(c.body, 'utf8') : Buffer.from(c.body)
  const lines = [`${c.method} ${c.target} HTTP/1.1`, `Host: ${host}`]
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`)
  if (body !== undefined) lines.push(`Content-Length: ${body.length}`)
  lines.push('Connection: close', '', '')
  const head = Buffer.from(lines.join('\r\n'), 'latin1')
  return body === undefined ? head : Buffer.concat([head, body])
}

/** A seconds-long slow client: the first part of a request, then nothing. */
function holdOpen(port: number, first: string): net.Socket {
  const s = net.connect(port, '127.0.0.1')
  s.on('error', () => {})
  s.write(first)
  return s
}

function envelopeProblem(a: RawAnswer, method: string): string | null {
  if (a.status < 400 || method === 'HEAD') return null
  let env: unknown
  try {
    env = JSON.parse(a.body)
  } catch {
    return `not JSON: ${a.body.slice(0, 120)}`
  }
  const e = env as Record<string, unknown>
  if (!(a.headers['content-type'] ?? '').includes('application/json')) return `content-type ${a.headers['content-type']}`
  if (e['object'] !== 'error' || typeof e['code'] !== 'string' || !/^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/.test(e['code']))
    return 'no error envelope'
  if (typeof e['message'] !== 'string' || e['message'] === '') return 'no message'
  if (Object.keys(e).some((k) => !['object', 'code', 'message', 'fix'].includes(k))) return `other keys: ${Object.keys(e).join(',')}`
  return null
}

let d: TestDaemon
let port: number
let db: SqliteDb
let countRows: () => Record<string, number>
const failures: string[] = []

beforeAll(async () => {
  d = await TestDaemon.start()
  port = Number(new URL(d.url).port)
  db = new Database(path.join(d.home, 'spl.db'), { readonly: true, fileMustExist: true })
  const tables = db
    .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
    .pluck()
    .all() as string[]
  const stmt = db.prepare(`SELECT ${tables.map((t) => `(SELECT count(*) FROM "${t}") AS "${t}"`).join(', ')}`)
  countRows = () => stmt.get() as Record<string, number>
}, 60_000)

afterAll(async () => {
  db?.close()
  await d?.[Symbol.asyncDispose]()
}, 60_000)

/** Tables whose row counts changed, but the replay cache's (burnt by a good proof; pruned in the background). */
function changedTables(before: Record<string, number>, after: Record<string, number>, proof: boolean): string[] {
  return Object.keys(after).filter((t) => {
    if (after[t] === before[t]) return false
    if (t === 'spl_proof_jtis') return !(proof || after[t]! < before[t]!)
    return true
  })
}

async function alive(where: string): Promise<void> {
  const h = await raw(port, Buffer.from(`GET /health HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`))
  if (h?.status !== 200) failures.push(`${where}: /health answered ${h ? h.status : 'nothing'}`)
}

describe('fuzz on a socket: a real spl serve (issue 18)', () => {
  it(`${casesPerDoor} generated cases per door as raw HTTP/1.1: an answer, no 5xx, the envelope, no rows left by a refusal`, {
    timeout: Math.max(300_000, casesPerDoor * 4000),
  }, async () => {
    const doc = (await d.api.get('/openapi.json')) as Parameters<typeof doorsOf>[0]
    const doors: Door[] = [...doorsOf(doc), UNKNOWN_DOOR]
    console.log(
      `[fuzz-socket] seed ${seed} (replay with SPL_FUZZ_SEED=${seed}), ${casesPerDoor} cases per door, ${doors.length} doors, ${d.url}`,
    )
    const peer = Keypair.generate()
    const emitted = await d.api.post<{ id: string }>('/v1/records', { act: 'INTEND', thread: 'th_fuzz', body: { text: 'seed' } })
    const known: Known = {
      origin: d.url,
      adminToken: d.token,
      recordIds: [emitted.id],
      pairIds: [],
      grantIds: [],
      namespaces: ['default'],
      dids: [d.did, peer.did],
      threads: ['th_fuzz'],
    }
    const t0 = Date.now()
    const perDoor: { door: string; cases: number; failures: number; ms: number }[] = []
    let total = 0
    for (const door of doors) {
      const key = doorKey(door)
      const td = Date.now()
      const before = failures.length
      let counts = countRows()
      for (let i = 0; i < casesPerDoor; i++) {
        const c = caseFor(door, seed, i, { known, socket: true })
        if (c.needsProof) {
          const { token } = await createRequestProof(peer, { method: 'GET', pathAndQuery: c.target, aud: d.did })
          c.headers['spl-proof'] = token
        }
        const a = await raw(port, bytesOf(c, port))
        total++
        const problems: string[] = []
        if (!a) problems.push('no HTTP answer (the connection closed or hung)')
        else {
          const env = (() => {
            try {
              return JSON.parse(a.body) as Record<string, unknown>
            } catch {
              return {}
            }
          })()
          if (a.status >= 500 && !ALLOWED_5XX[key]?.includes(String(env['code'])))
            problems.push(`answered ${a.status} ${String(env['code'])}`)
          const p = envelopeProblem(a, c.method)
          if (p) problems.push(`not the envelope: ${p}`)
        }
        const after = countRows()
        if (!a || a.status >= 400) {
          const changed = changedTables(counts, after, c.needsProof)
          if (changed.length) problems.push(`refused, yet rows changed in ${changed.join(', ')}`)
        }
        counts = after
        if (problems.length)
          failures.push(`${describeCase(c)}\n  answer ${a ? `${a.status} ${a.body.slice(0, 300)}` : 'none'}\n  ${problems.join(' | ')}`)
        if ((i + 1) % 50 === 0 || i === casesPerDoor - 1) await alive(`${key} after case ${i}`)
      }
      perDoor.push({ door: key, cases: casesPerDoor, failures: failures.length - before, ms: Date.now() - td })
    }
    const ms = Date.now() - t0
    console.log(`[fuzz-socket] ${total} cases over ${doors.length} doors in ${ms} ms, ${failures.length} failures`)
    const report = process.env['SPL_FUZZ_REPORT']
    if (report) {
      const { writeFileSync } = await import('node:fs')
      writeFileSync(
        report,
        JSON.stringify({
          seed,
          perDoor,
          totalCases: total,
          ms,
          failures: failures.map((f) => ({
            case: f.split('\n  answer')[0],
            answer: f.split('\n  answer ')[1]?.split('\n')[0] ?? '',
            problems: [f.split('\n').at(-1)],
          })),
        }),
      )
    }
    expect(failures.slice(0, 30), `seed ${seed}`).toEqual([])
  })

  // What only a socket can send. Each is answered with the envelope (never an empty 4xx or a
  // silent close), and the daemon answers the next request.
  const h = () => `Host: 127.0.0.1:${port}\r\n`
  /**
   * Framing cases that find a bug in code this suite does not own (apps/daemon/src/http-server.ts):
   * left as it.fails, each turns red once fixed (then move it back to `framing`).
   */
  const knownBugs: Record<string, string> = {}
  const framing: [string, () => Buffer | string, number | null][] = [
    ['a request line of garbage', () => 'GARBAGE\r\n\r\n', 400],
    ['HTTP/9.9', () => `GET /health HTTP/9.9\r\n${h()}\r\n`, null],
    ['no Host on HTTP/1.1', () => 'GET /health HTTP/1.1\r\nConnection: close\r\n\r\n', 400],
    ['HTTP/0.9 (no version)', () => 'GET /health\r\n\r\n', null],
    ['two spaces in the request line', () => `GET  /health HTTP/1.1\r\n${h()}\r\n`, null],
    ['a lowercase method', () => `get /health HTTP/1.1\r\n${h()}Connection: close\r\n\r\n`, 400],
    ['a 100 KB request target', () => `GET /${'a'.repeat(100_000)} HTTP/1.1\r\n${h()}\r\n`, 431],
    ['one 20 KB header', () => `GET /health HTTP/1.1\r\n${h()}X-Big: ${'b'.repeat(20_000)}\r\n\r\n`, 431],
    [
      '300 headers of 100 bytes',
      () => `GET /health HTTP/1.1\r\n${h()}${Array.from({ length: 300 }, (_, i) => `X-H${i}: ${'v'.repeat(90)}\r\n`).join('')}\r\n`,
      431,
    ],
    ['a header line without a colon', () => `GET /health HTTP/1.1\r\n${h()}NoColonHere\r\n\r\n`, 400],
    ['an obs-folded header', () => `GET /health HTTP/1.1\r\n${h()}X-A: a\r\n b\r\n\r\n`, 400],
    ['NUL in a header value', () => `GET /health HTTP/1.1\r\n${h()}X-A: a\u0000b\r\n\r\n`, 400],
    [
      'Content-Length and Transfer-Encoding both',
      () =>
        `POST /v1/records HTTP/1.1\r\n${h()}Content-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
      400,
    ],
    [
      'two different Content-Lengths',
      () => `POST /v1/records HTTP/1.1\r\n${h()}Content-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}x`,
      400,
    ],
    [
      'a negative Content-Length',
      () => `POST /v1/records HTTP/1.1\r\n${h()}Content-Type: application/json\r\nContent-Length: -1\r\n\r\n`,
      400,
    ],
    [
      'a Content-Length that is not a number',
      () => `POST /v1/records HTTP/1.1\r\n${h()}Content-Type: application/json\r\nContent-Length: 1e3\r\n\r\n`,
      400,
    ],
    [
      'a chunk size that is not hex',
      () => `POST /v1/records HTTP/1.1\r\n${h()}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`,
      400,
    ],
    [
      'huge chunk extensions',
      () =>
        `POST /v1/records HTTP/1.1\r\n${h()}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2;${'e'.repeat(20_000)}\r\n{}\r\n0\r\n\r\n`,
      413,
    ],
    [
      'Transfer-Encoding: gzip, chunked',
      () =>
        `POST /v1/records HTTP/1.1\r\n${h()}Content-Type: application/json\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n`,
      null,
    ],
    ['bare LF line endings', () => `GET /health HTTP/1.1\n${h().replace('\r\n', '\n')}Connection: close\n\n`, null],
    ['CONNECT', () => `CONNECT 127.0.0.1:1 HTTP/1.1\r\n${h()}\r\n`, 405],
    ['TRACE', () => `TRACE /health HTTP/1.1\r\n${h()}Connection: close\r\n\r\n`, null],
    [
      'Expect: something else',
      () => `POST /v1/records HTTP/1.1\r\n${h()}Content-Type: application/json\r\nExpect: 200-maybe\r\nContent-Length: 2\r\n\r\n{}`,
      417,
    ],
    [
      'an absolute-form target naming another host',
      () => `GET http://evil.example/v1/threads HTTP/1.1\r\n${h()}Connection: close\r\n\r\n`,
      null,
    ],
    ['an asterisk-form OPTIONS', () => `OPTIONS * HTTP/1.1\r\n${h()}Connection: close\r\n\r\n`, null],
    [
      'raw UTF-8 in the path',
      () =>
        Buffer.concat([
          Buffer.from('GET /v1/threads/th_'),
          Buffer.from('☃😀', 'utf8'),
          Buffer.from(`/records HTTP/1.1\r\n${h()}Connection: close\r\n\r\n`),
        ]),
      null,
    ],
    [
      'invalid UTF-8 bytes in the path',
      () =>
        Buffer.concat([
          Buffer.from('GET /v1/records/'),
          Buffer.from([0xff, 0xfe, 0xed, 0xa0, 0x80]),
          Buffer.from(` HTTP/1.1\r\n${h()}Connection: close\r\n\r\n`),
        ]),
      400,
    ],
    ['two Host headers', () => `GET /v1/threads HTTP/1.1\r\n${h()}Host: evil.example\r\nConnection: close\r\n\r\n`, null],
    ['a GET with a body', () => `GET /health HTTP/1.1\r\n${h()}Content-Length: 5\r\nConnection: close\r\n\r\nhello`, 200],
    ['a good request pipelined with garbage', () => `GET /health HTTP/1.1\r\n${h()}\r\nGARBAGE\r\n\r\n`, 200],
    [
      'Upgrade: h2c',
      () =>
        `GET /health HTTP/1.1\r\n${h()}Connection: Upgrade, HTTP2-Settings, close\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n`,
      null,
    ],
    [
      'Upgrade: websocket',
      () =>
        `GET /v1/sync/changes HTTP/1.1\r\n${h()}Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      null,
    ],
    [
      'a body over 16 MiB (Content-Length)',
      () =>
        Buffer.concat([
          Buffer.from(
            `POST /v1/records HTTP/1.1\r\n${h()}Content-Type: application/json\r\nContent-Length: ${MAX_BODY + 10}\r\nConnection: close\r\n\r\n`,
          ),
          Buffer.alloc(MAX_BODY + 10, 0x61),
        ]),
      413,
    ],
    [
      'a body over 16 MiB with Expect: 100-continue',
      () =>
        Buffer.concat([
          Buffer.from(
            `POST /v1/records HTTP/1.1\r\n${h()}Content-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: ${MAX_BODY + 10}\r\nConnection: close\r\n\r\n`,
          ),
          Buffer.alloc(MAX_BODY + 10, 0x61),
        ]),
      413,
    ],
    [
      'a chunked body over 16 MiB',
      () => {
        const chunk = Buffer.concat([Buffer.from(`${(MiB4).toString(16)}\r\n`), Buffer.alloc(MiB4, 0x61), Buffer.from('\r\n')])
        return Buffer.concat([
          Buffer.from(
            `POST /v1/records HTTP/1.1\r\n${h()}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n`,
          ),
          chunk,
          chunk,
          chunk,
          chunk,
          chunk,
          Buffer.from('0\r\n\r\n'),
        ])
      },
      413,
    ],
  ]
  for (const [what, make, want] of framing) {
    const bug = knownBugs[what]
    ;(bug ? it.fails : it)(
      `${bug ? `known bug (${bug}): ` : ''}framing: ${what} → ${want ?? 'any 1xx-4xx'} with the envelope; no rows; alive`,
      async () => {
        const before = countRows()
        const bytes = make()
        const a = await raw(port, typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes)
        expect(a, `${what}: an HTTP answer`).not.toBeNull()
        if (want !== null) expect(a!.status, a!.body).toBe(want)
        expect(a!.status, a!.body).toBeLessThan(500)
        expect(envelopeProblem(a!, 'GET'), a!.body).toBeNull()
        expect(changedTables(before, countRows(), false)).toEqual([])
        const health = await raw(port, Buffer.from(`GET /health HTTP/1.1\r\n${h()}Connection: close\r\n\r\n`))
        expect(health?.status).toBe(200)
      },
    )
  }

  it('slow clients: 40 partial requests held open (headers cut, bodies cut, a byte at a time) while the daemon answers others; nothing stored', async () => {
    const before = countRows()
    const slow: net.Socket[] = []
    const drips: NodeJS.Timeout[] = []
    for (let i = 0; i < 40; i++) {
      const kind = i % 4
      if (kind === 0) slow.push(holdOpen(port, `GET /health HTTP/1.1\r\nHo`))
      else if (kind === 1)
        slow.push(
          holdOpen(
            port,
            `POST /v1/records HTTP/1.1\r\n${h()}Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"act":"INTEND","thread":"th_slow",`,
          ),
        )
      else if (kind === 2)
        slow.push(
          holdOpen(
            port,
            `POST /v1/records HTTP/1.1\r\n${h()}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"act`,
          ),
        )
      else {
        const s = holdOpen(port, 'P')
        const rest = `OST /v1/records HTTP/1.1\r\n${h()}Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}`
        let k = 0
        drips.push(setInterval(() => k < rest.length - 1 && s.write(rest[k++]!), 200))
        slow.push(s)
      }
    }
    try {
      // While they hang: the daemon still answers (each within the harness's 30 s, else it hung).
      for (let i = 0; i < 20; i++) {
        const a = await raw(port, Buffer.from(`GET ${i % 2 ? '/health' : '/v1/threads'} HTTP/1.1\r\n${h()}Connection: close\r\n\r\n`))
        expect(a?.status, `request ${i} while 40 slow clients hang`).toBe(200)
      }
    } finally {
      for (const t of drips) clearInterval(t)
      for (const s of slow) s.destroy()
    }
    // Cut bodies are never stored.
    const threads = (await d.api.get<{ data: { thread: string }[] }>('/v1/threads')).data.map((t) => t.thread)
    expect(threads).not.toContain('th_slow')
    expect(changedTables(before, countRows(), false)).toEqual([])
  })

  it.runIf(process.env['SPL_FUZZ_SLOW_TIMEOUT'] === '1')(
    "a slow client is answered by the server's own timeout: 408 with the envelope (pnpm fuzz only: it takes the server's headers timeout)",
    { timeout: 400_000 },
    async () => {
      const t0 = Date.now()
      const a = await raw(port, Buffer.from(`GET /health HTTP/1.1\r\n${h()}X-Slow: `), 360_000)
      console.log(
        `[fuzz-socket] a request cut in its headers was answered after ${Date.now() - t0} ms: ${a ? `${a.status} ${a.body}` : 'nothing'}`,
      )
      expect(a?.status).toBe(408)
      expect(envelopeProblem(a!, 'GET')).toBeNull()
    },
  )

  it('the daemon is alive at the end', async () => {
    const a = await raw(port, Buffer.from(`GET /health HTTP/1.1\r\n${h()}Connection: close\r\n\r\n`))
    expect(a?.status).toBe(200)
  })
})

const MiB4 = 4 * 1024 * 1024
