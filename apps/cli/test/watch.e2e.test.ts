// Issue 16, "one conversation per peer": 200 pairs towards one peer wait in one watch, not 200
// long polls, and every pair still gets its records; a peer without the watch door (an older
// spl, here a proxy that answers 404 for it) still serves pairs that long-poll one thread each.
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type PairView, TestDaemon } from '../../../test-utils/test-daemon.js'
import { until } from '../../../test-utils/until.js'

const PAIRS = 200
const threads = Array.from({ length: PAIRS }, (_, i) => `th_watch_${String(i).padStart(3, '0')}`)

let a: TestDaemon
let b: TestDaemon
let c: TestDaemon
let proxy: http.Server
let proxyUrl: string

/** A's held peer requests by door, and the threads its watches name, from /metrics. */
async function held(d: TestDaemon): Promise<{ changes: number; watch: number; threads: number }> {
  const text = await d.api.get<string>('/metrics')
  const read = (re: RegExp) => Number(re.exec(text)?.[1] ?? Number.NaN)
  return {
    changes: read(/^spl_feed_held_requests\{door="changes"\} (\d+)$/m),
    watch: read(/^spl_feed_held_requests\{door="watch"\} (\d+)$/m),
    threads: read(/^spl_feed_watched_threads (\d+)$/m),
  }
}

async function pairsOf(d: TestDaemon): Promise<PairView[]> {
  return (await d.api.get<{ data: PairView[] }>('/v1/sync/pairs')).data
}

/** One record in each of `ts` at `d`, in one batch. */
async function emitEach(d: TestDaemon, ts: readonly string[], text: string): Promise<void> {
  const records = ts.map((thread) => ({ act: 'INTEND', thread, body: { text } }))
  const r = await d.api.post<{ created: number }>('/v1/records/batch', { records })
  expect(r.created).toBe(ts.length)
}

/** Waits until every pair of `d` has stored at least `n` records and is caught up. */
function allHave(d: TestDaemon, n: number, count: number) {
  return until(
    `${count} pairs with ${n} records each`,
    async () => {
      const ps = await pairsOf(d)
      const done = ps.filter((p) => p.totals.records_stored >= n && p.caught_up_at !== null && p.state === 'running')
      return done.length === count ? ps : undefined
    },
    90_000,
    250,
  )
}

beforeAll(async () => {
  ;[a, b, c] = await Promise.all([TestDaemon.start(), TestDaemon.start(), TestDaemon.start()])
  await emitEach(a, threads, 'first')
  // A peer that predates the watch door: every request goes to A, except the watch, answered 404 as an unknown door is.
  const target = new URL(a.url)
  proxy = http.createServer((req, res) => {
    if (req.method === 'POST' && req.url?.startsWith('/v1/sync/watch')) {
      res.writeHead(404, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ object: 'error', code: 'NOT_FOUND', message: `no route for POST ${req.url}` }))
      return
    }
    const up = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers)
      r.pipe(res)
    })
    up.on('error', () => res.destroy())
    res.on('close', () => up.destroy())
    req.pipe(up)
  })
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
  proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`
}, 120_000)

afterAll(async () => {
  proxy?.close()
  await Promise.all([a, b, c].map((d) => d?.[Symbol.asyncDispose]()))
})

describe('one conversation per peer', () => {
  it(`${PAIRS} pairs towards one peer hold a bounded number of requests there, and each gets its records`, async () => {
    for (const thread of threads) await b.api.post('/v1/sync/pairs', { peer_did: a.did, peer_url: a.url, thread_id: thread })
    await allHave(b, 1, PAIRS)
    // Settled: B's caught-up pairs wait together. Sampled a few times: never one request per pair.
    const samples: Awaited<ReturnType<typeof held>>[] = []
    await until('the pairs waiting in watches', async () => ((await held(a)).threads === PAIRS ? true : undefined), 30_000)
    for (let i = 0; i < 5; i++) {
      samples.push(await held(a))
      await sleep(300)
    }
    for (const s of samples) {
      expect(s.changes).toBe(0)
      // ⌈200 / 1000⌉ request, and at most 2 more while newcomers join.
      expect(s.watch).toBeGreaterThanOrEqual(1)
      expect(s.watch).toBeLessThanOrEqual(3)
      expect(s.threads).toBe(PAIRS)
    }

    // A record in every thread: every pair gets it, through the watch.
    const before = (await pairsOf(b)).reduce((n, p) => n + p.totals.records_stored, 0)
    await emitEach(a, threads, 'second')
    const ps = await allHave(b, 2, PAIRS)
    expect(ps.reduce((n, p) => n + p.totals.records_stored, 0)).toBe(before + PAIRS)
    for (const t of threads.slice(0, 5)) expect(await b.threadRecordIds(t)).toEqual(await a.threadRecordIds(t))

    // And one record in one thread, later: it comes alone, soon, while the others keep waiting.
    await until('watches settled again', async () => ((await held(a)).threads === PAIRS ? true : undefined), 30_000)
    const t0 = Date.now()
    const id = await a.emit(threads[123]!, 'third')
    await until('the third record at B', async () => ((await b.threadRecordIds(threads[123]!)).includes(id) ? true : undefined), 20_000, 20)
    expect(Date.now() - t0).toBeLessThan(10_000)
    const after = await held(a)
    expect(after.changes).toBe(0)
    expect(after.watch).toBeLessThanOrEqual(3)
    // No pair failed or fell back to polling on the way.
    for (const p of await pairsOf(b)) expect(p).toMatchObject({ state: 'running', last_error: null, poll_only: false })
  }, 240_000)

  it('a peer without the watch door: each pair long-polls its thread, and still gets its records', async () => {
    const some = threads.slice(0, 20)
    for (const thread of some) await c.api.post('/v1/sync/pairs', { peer_did: a.did, peer_url: proxyUrl, thread_id: thread })
    await allHave(c, 2, some.length)
    // C's pairs hold long polls of one thread each at A (through the proxy); B's watch is still one request.
    const h = await until(
      "C's long polls held at A",
      async () => {
        const x = await held(a)
        return x.changes === some.length ? x : undefined
      },
      30_000,
    )
    expect(h.watch).toBeLessThanOrEqual(3)
    const id = await a.emit(some[7]!, 'through the proxy')
    await until('the record at C', async () => ((await c.threadRecordIds(some[7]!)).includes(id) ? true : undefined), 20_000, 50)
    for (const p of await pairsOf(c)) expect(p).toMatchObject({ state: 'running', last_error: null })
  }, 180_000)
})
