import net from 'node:net'
import { Keypair } from '@spl/identity'
import { createRequestProof } from '@spl/transport'
import Database from 'better-sqlite3'
import {
  type CaseOptions,
  caseFor,
  type Door,
  describeCase,
  doorKey,
  doorsOf,
  type FuzzCase,
  type Known,
  UNKNOWN_DOOR,
} from '../../../../test-utils/fuzz.js'
import { homePaths } from '../../src/config.js'
import { openApiDocument } from '../../src/openapi.js'
import { VERSION } from '../../src/package-files.js'
import { type Answer, type AppUnderTest, answerOf, appUnderTest, expectErrorEnvelope } from '../harness.js'

// The in-process fuzzer (issue 18): every door of openApiDocument() plus unknown paths, through
// app.request() on a daemon built on a fresh home. Per case: no 5xx (but the few a door documents
// for a peer it could not reach), the SPEC 7.6 envelope on every error, admin doors refused (401)
// without the token, and no state left by a refused request (SQLite's data_version seen from a
// second connection, the replay cache's row counts, the registry's counts); /health after each batch.

/** 5xx answers a door documents for something outside the caller's request (none for the caller's mistakes). */
const ALLOWED_5XX: Record<string, readonly string[]> = {
  // `spl sync <thread> from <url>`: the URL the fuzzer names is 127.0.0.1 on a closed port.
  'POST /v1/sync/once': ['PEER_UNREACHABLE'],
  // An audit asks the pair's source; the fuzzer's pairs name 127.0.0.1 on a closed port.
  'POST /v1/sync/pairs/{id}/audit': ['PEER_UNREACHABLE'],
}

/** The doors to fuzz: every operation of the OpenAPI document, then unknown paths. */
export function fuzzDoors(): Door[] {
  return [...doorsOf(openApiDocument(VERSION) as Parameters<typeof doorsOf>[0]), UNKNOWN_DOOR]
}

export interface CaseFailure {
  door: string
  index: number
  problems: string[]
  case: string
  answer: string
}

export interface DoorSummary {
  door: string
  cases: number
  failures: number
  /** Answers by status. */
  statuses: Record<string, number>
  ms: number
}

export interface FuzzSummary {
  seed: number
  perDoor: DoorSummary[]
  failures: CaseFailure[]
  totalCases: number
  ms: number
  /** Where the time went (ms): making cases, the requests, the answer checks, the state probes. */
  split: { gen: number; req: number; check: number; probe: number }
  /** The slowest cases (ms, door#index, what): where the time goes. */
  slowest: { ms: number; case: string; what: string }[]
  /** Connections the network guard refused (a door asked to connect off loopback). */
  blockedConnections: string[]
}

const LOOPBACK_HOST = /^(localhost|127\.\d+\.\d+\.\d+|::1|\[::1\]|::ffff:127\.\d+\.\d+\.\d+)$/

/**
 * Refuses every TCP connection that is not to loopback (before any DNS lookup), for as long as
 * the fuzzer runs: whatever a door is made to fetch, no packet leaves this machine.
 */
export function guardNetwork(blocked: string[]): () => void {
  const proto = net.Socket.prototype as unknown as { connect: (...args: unknown[]) => net.Socket }
  const original = proto.connect
  proto.connect = function (this: net.Socket, ...args: unknown[]) {
    const first = args[0]
    let host: unknown
    if (Array.isArray(first)) host = (first[0] as { host?: unknown } | undefined)?.host
    else if (typeof first === 'object' && first !== null) {
      const o = first as { host?: unknown; path?: unknown }
      host = o.path !== undefined ? 'localhost' : (o.host ?? 'localhost')
    } else if (typeof first === 'number' || /^\d+$/.test(String(first))) host = typeof args[1] === 'string' ? args[1] : 'localhost'
    else host = 'localhost' // a unix socket path
    if (typeof host === 'string' && !LOOPBACK_HOST.test(host)) {
      blocked.push(host.slice(0, 200))
      process.nextTick(() =>
        this.destroy(Object.assign(new Error(`fuzz network guard: no connection to ${host}`), { code: 'ECONNREFUSED' })),
      )
      return this
    }
    return original.apply(this, args)
  }
  return () => {
    proto.connect = original
  }
}

/** A fingerprint of what a refused request must not change. */
interface StateProbe {
  /** Changes whenever the daemon's connection commits (PRAGMA data_version of a second connection). */
  dataVersion(): number
  tableCounts(): Record<string, number>
  memory(): string
}

function stateProbe(d: AppUnderTest): StateProbe & { close(): void } {
  const db = new Database(homePaths(d.home).db, { readonly: true, fileMustExist: true })
  const dv = db.prepare('PRAGMA data_version').pluck()
  const tables = db
    .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
    .pluck()
    .all() as string[]
  const count = db.prepare(`SELECT ${tables.map((t) => `(SELECT count(*) FROM "${t}") AS "${t}"`).join(', ')}`)
  const { ctx } = d.daemon
  return {
    dataVersion: () => Number(dv.get()),
    tableCounts: () => count.get() as Record<string, number>,
    memory: () => {
      // Counts and states, not whole objects: this runs after every write-method case. (The pairs
      // are persisted on every change, so data_version covers them; their views cost too much here.)
      const namespaces = ctx.registry.namespaces()
      let nsActive = 0
      for (const n of namespaces) if (n.status === 'active') nsActive++
      const grants = ctx.registry.grants()
      let revoked = 0
      for (const g of grants) if (g.revoked) revoked++
      return `ns ${namespaces.length}/${nsActive} grants ${grants.length}/${revoked} bindings ${ctx.registry.bindings().length}`
    },
    close: () => db.close(),
  }
}

/** Makes the objects that valid-shaped cases name: records, a namespace, a pair, a grant, a binding. */
async function makeKnown(d: AppUnderTest): Promise<Known> {
  const known: Known = {
    origin: 'http://localhost',
    adminToken: d.token,
    recordIds: [],
    pairIds: [],
    grantIds: [],
    namespaces: ['default'],
    dids: [d.daemon.did, Keypair.generate().did],
    threads: ['th_fuzz', 'th_fuzz.b'],
  }
  const must = (a: Answer, what: string) => {
    if (a.status >= 300) throw new Error(`fuzz setup: ${what} answered ${a.status} ${JSON.stringify(a.json)}`)
    return a.json as Record<string, unknown>
  }
  for (const ns of ['fuzz', 'fuzz/a']) {
    must(await d.postJson('/v1/namespaces', { namespace: ns }), `namespace ${ns}`)
    known.namespaces.push(ns)
  }
  for (let i = 0; i < 5; i++) {
    const r = must(await d.postJson('/v1/records', { act: 'INTEND', thread: known.threads[i % 2], body: { text: `seed ${i}` } }), 'emit')
    known.recordIds.push(String(r['id']))
  }
  const pair = must(
    await d.postJson('/v1/sync/pairs', { peer_did: known.dids[1], peer_url: 'http://127.0.0.1:1', thread_id: 'th_fuzz' }),
    'pair',
  )
  known.pairIds.push(String(pair['pair_id']))
  const grant = must(await d.postJson('/v1/consent/grants', { source_namespace: 'fuzz', target_namespace: 'fuzz/a' }), 'grant')
  known.grantIds.push(String(grant['grant_id']))
  must(await d.postJson('/v1/consent/bindings', { did: known.dids[1], namespace: 'fuzz' }), 'binding')
  return known
}

const PER_CASE_TIMEOUT_MS = 15_000

function tokenOk(c: FuzzCase, token: string): boolean {
  const auth = Object.entries(c.headers).find(([k]) => k.toLowerCase() === 'authorization')?.[1] ?? ''
  return auth.startsWith('Bearer ') && auth.slice(7).trim() === token
}

/** The paths of doors that are not admin (open or proof), as regexes over the path the URL parser leaves. */
function notAdminPaths(doors: Door[]): RegExp[] {
  return doors
    .filter((d) => d.auth === 'open' || d.auth === 'proof')
    .map((d) => new RegExp(`^${d.path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{\w+\}/g, '[^/]+')}$`))
}

/** True when the path is behind the admin middleware (SPEC 7.1: everything under /v1/ and /metrics but the open and peer doors). */
function adminPath(pathname: string, open: RegExp[]): boolean {
  return (pathname.startsWith('/v1/') || pathname === '/metrics') && !open.some((re) => re.test(pathname))
}

function summarize(a: Answer): string {
  const j = typeof a.json === 'string' ? a.json : JSON.stringify(a.json)
  return `${a.status} ${a.type} ${j.length > 400 ? `${j.slice(0, 400)}…` : j}`
}

const CODE_RE = /^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/
const ENVELOPE_KEYS = new Set(['object', 'code', 'message', 'fix'])

/** expectErrorEnvelope's rules without vitest's expect (which costs most of a case): true when all hold. */
function looksLikeEnvelope(a: Answer): boolean {
  if (a.status < 400 || a.status >= 500 || !a.type.includes('application/json')) return false
  if (typeof a.json !== 'object' || a.json === null || Array.isArray(a.json)) return false
  const env = a.json as Record<string, unknown>
  return (
    env['object'] === 'error' &&
    typeof env['code'] === 'string' &&
    CODE_RE.test(env['code']) &&
    typeof env['message'] === 'string' &&
    env['message'].length > 0 &&
    Object.keys(env).every((k) => ENVELOPE_KEYS.has(k)) &&
    (!('fix' in env) || typeof env['fix'] === 'string')
  )
}

/** What is wrong with `a` as the answer to `c` (empty when nothing). */
function answerProblems(c: FuzzCase, a: Answer, token: string, pathname: string, open: RegExp[]): string[] {
  const problems: string[] = []
  const env = (typeof a.json === 'object' && a.json !== null ? a.json : {}) as Record<string, unknown>
  if (a.status >= 500) {
    const allowed = ALLOWED_5XX[c.door]?.includes(String(env['code'])) ?? false
    if (!allowed) problems.push(`answered ${a.status} (${String(env['code'] ?? 'no code')}): no 5xx for a caller's request`)
  }
  if (a.status >= 400 && c.method !== 'HEAD') {
    if (a.status >= 500) {
      if (env['object'] !== 'error' || typeof env['code'] !== 'string' || typeof env['message'] !== 'string')
        problems.push('not the error envelope')
    } else if (!looksLikeEnvelope(a)) {
      // The fast check failed: expectErrorEnvelope (the suite's one definition) says why.
      try {
        expectErrorEnvelope(a)
        problems.push('not the error envelope (looksLikeEnvelope and expectErrorEnvelope disagree)')
      } catch (err) {
        problems.push(`not the error envelope: ${(err as Error).message.split('\n')[0]}`)
      }
    }
  }
  // In process there is no loopback peer: an admin door without the token is refused (401, or an earlier 413).
  if (adminPath(pathname, open) && !tokenOk(c, token) && a.status < 400) {
    problems.push(`an admin door answered ${a.status} without the admin token`)
  }
  return problems
}

export interface RunOptions {
  seed: number
  casesPerDoor: number
  /** Only these doors (keys as `doorKey`), else all. */
  doors?: Door[]
  /** Only this case (replay). */
  only?: { door: string; index: number } | null
  /** Case indexes left out (known bugs, each replayed by its own test). */
  skip?: ReadonlySet<string>
  batch?: number
  log?: (line: string) => void
  /** Runs after each request, before the checks (the suite's own test plants defects with it). */
  afterRequest?: (d: AppUnderTest, c: FuzzCase, a: Answer) => Promise<void>
}

/** Runs the fuzzer in process; returns the summary (the caller asserts on its failures). */
export async function runFuzz(options: RunOptions): Promise<FuzzSummary> {
  const { seed, casesPerDoor, batch = 100, log = () => {} } = options
  const blocked: string[] = []
  const unguard = guardNetwork(blocked)
  // A relay too, so that the mailbox doors reach their store (SPEC 10).
  const d = await appUnderTest({ config: '[relay]\nenabled = true' })
  const probe = stateProbe(d)
  const t0 = performance.now()
  const summary: FuzzSummary = {
    seed,
    perDoor: [],
    failures: [],
    totalCases: 0,
    ms: 0,
    split: { gen: 0, req: 0, check: 0, probe: 0 },
    slowest: [],
    blockedConnections: blocked,
  }
  try {
    const known = await makeKnown(d)
    const opts: CaseOptions = { known }
    const peer = Keypair.generate()
    const doors = options.doors ?? fuzzDoors()
    const open = notAdminPaths(fuzzDoors())
    for (const door of doors) {
      const key = doorKey(door)
      if (options.only && options.only.door !== key) continue
      const ds: DoorSummary = { door: key, cases: 0, failures: 0, statuses: {}, ms: 0 }
      const td = performance.now()
      let dv = probe.dataVersion()
      let mem = probe.memory()
      let counts: Record<string, number> = {}
      for (let i = 0; i < casesPerDoor; i++) {
        if (options.only && options.only.index !== i) continue
        if (options.skip?.has(`${key}#${i}`)) continue
        const tg = performance.now()
        const c = caseFor(door, seed, i, opts)
        summary.split.gen += performance.now() - tg
        let url: URL
        try {
          // Concatenated, not resolved: a target of `//x` is a path here, not another host.
          url = new URL(`http://localhost${c.target}`)
        } catch {
          ds.statuses['unsendable'] = (ds.statuses['unsendable'] ?? 0) + 1
          continue
        }
        const headers = { ...c.headers }
        if (c.needsProof) {
          const { token } = await createRequestProof(peer, { method: 'GET', pathAndQuery: url.pathname + url.search, aud: d.daemon.did })
          headers['spl-proof'] = token
        }
        // Row counts (a scan per table: only where a refusal may change one table, the replay cache).
        if (c.needsProof) counts = probe.tableCounts()
        let a: Answer
        const problems: string[] = []
        const tc = performance.now()
        try {
          const ac = new AbortController()
          let timer: NodeJS.Timeout | undefined
          // A handler that ignores the abort would hang the run: the race ends the case anyway.
          const hung = new Promise<never>((_, reject) => {
            timer = setTimeout(() => {
              ac.abort()
              reject(new Error(`no answer within ${PER_CASE_TIMEOUT_MS} ms (aborted)`))
            }, PER_CASE_TIMEOUT_MS)
          })
          try {
            a = await Promise.race([
              (async () =>
                answerOf(
                  await d.app.request(url.href, {
                    method: c.method,
                    headers,
                    ...(c.body === undefined ? {} : { body: c.body }),
                    signal: ac.signal,
                  }),
                ))(),
              hung,
            ])
          } finally {
            clearTimeout(timer)
          }
        } catch (err) {
          // fetch's Request refused what the generator made (an invalid header value): not the daemon's doing.
          if (err instanceof TypeError && !/aborted/i.test(err.message)) {
            ds.statuses['unsendable'] = (ds.statuses['unsendable'] ?? 0) + 1
            continue
          }
          a = { status: 0, type: '', json: String(err) }
          problems.push(`the app threw or hung: ${String(err).slice(0, 200)}`)
        }
        if (options.afterRequest) await options.afterRequest(d, c, a)
        ds.cases++
        const ms = performance.now() - tc
        summary.split.req += ms
        if (summary.slowest.length < 20 || ms > summary.slowest[summary.slowest.length - 1]!.ms) {
          summary.slowest.push({ ms: Math.round(ms), case: `${key}#${i}`, what: c.what.join('; ') })
          summary.slowest.sort((x, y) => y.ms - x.ms)
          summary.slowest.length = Math.min(summary.slowest.length, 20)
        }
        ds.statuses[String(a.status)] = (ds.statuses[String(a.status)] ?? 0) + 1
        const tk = performance.now()
        problems.push(...answerProblems(c, a, d.token, url.pathname, open))
        summary.split.check += performance.now() - tk
        const tp = performance.now()
        // No state left by a refused request. (The registry and the pairs are compared after the
        // requests that can change them: any method but GET and HEAD.)
        const dv2 = probe.dataVersion()
        const refused = a.status >= 400 || a.status === 0
        const writes = c.method !== 'GET' && c.method !== 'HEAD'
        if (refused) {
          if (writes) {
            const mem2 = probe.memory()
            if (mem2 !== mem) problems.push(`refused, yet the registry or the pairs changed: ${mem.slice(0, 300)} → ${mem2.slice(0, 300)}`)
            mem = mem2
          }
          if (dv2 !== dv) {
            if (c.needsProof) {
              const counts2 = probe.tableCounts()
              const changed = Object.keys(counts2).filter((t) => counts2[t] !== counts[t])
              // A proof that verified is burnt even when the query after it is refused (SPEC 7.4: once).
              const onlyJti = changed.length === 1 && changed[0] === 'spl_proof_jtis'
              if (!onlyJti)
                problems.push(`refused, yet the database changed (tables with other row counts: ${changed.join(', ') || 'none'})`)
            } else problems.push('refused, yet the database changed (a commit: PRAGMA data_version moved)')
          }
        } else if (writes) mem = probe.memory()
        dv = dv2
        summary.split.probe += performance.now() - tp
        if (problems.length) {
          ds.failures++
          const f = { door: key, index: i, problems, case: describeCase(c), answer: summarize(a) }
          summary.failures.push(f)
          if (summary.failures.length <= 30) log(`FAIL ${f.case}\n  answer ${f.answer}\n  problems: ${problems.join(' | ')}`)
        }
        if ((i + 1) % batch === 0 || i === casesPerDoor - 1) {
          const h = await answerOf(await d.app.request('http://localhost/health'))
          if (h.status !== 200 || (h.json as { status?: string }).status !== 'ok') {
            summary.failures.push({
              door: key,
              index: i,
              problems: ['/health did not answer ok after the batch'],
              case: describeCase(c),
              answer: summarize(h),
            })
          }
        }
      }
      ds.ms = Math.round(performance.now() - td)
      summary.perDoor.push(ds)
      summary.totalCases += ds.cases
      log(`${key}: ${ds.cases} cases, ${ds.failures} failures, ${ds.ms} ms ${JSON.stringify(ds.statuses)}`)
    }
  } finally {
    summary.ms = Math.round(performance.now() - t0)
    for (const k of ['gen', 'req', 'check', 'probe'] as const) summary.split[k] = Math.round(summary.split[k])
    probe.close()
    await d.close()
    unguard()
  }
  return summary
}
