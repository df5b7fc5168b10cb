import { PullError, type WatchedChange, type WatchRequest, WatchUnsupportedError } from '@spl/transport'
import { describe, expect, it } from 'vitest'
import { silentLogger } from '../logger.js'
import { newPair, type Pair } from '../pair.js'
import { DEFAULT_OPTIONS } from './components.js'
import type { PullContext } from './pull-loop.js'
import { PeerWatches } from './watcher.js'

const PEER = 'did:key:z6MkpeerWatchTest'

/** A fake peer's watch door: each request waits until the test answers or fails it. */
class FakeWatchPeer {
  readonly open: { req: WatchRequest; answer: (c: WatchedChange[]) => void; fail: (e: unknown) => void }[] = []
  readonly sent: WatchRequest[] = []
  send = (req: WatchRequest): Promise<WatchedChange[]> => {
    this.sent.push(req)
    return new Promise((resolve, reject) => {
      const entry = { req, answer: resolve, fail: reject }
      this.open.push(entry)
      req.signal?.addEventListener('abort', () => {
        this.open.splice(this.open.indexOf(entry), 1)
        reject(new Error('aborted'))
      })
    })
  }
  /** Answers the open request that names `thread`. */
  answer(thread: string, changes: WatchedChange[]): void {
    const i = this.open.findIndex((o) => o.req.threads.some((t) => t.thread === thread))
    if (i < 0) throw new Error(`no open watch names ${thread}`)
    const [o] = this.open.splice(i, 1)
    o!.answer(changes)
  }
}

function setup(longpollTimeoutMs = 25_000) {
  const ctx = {
    c: { clock: { now: Date.now }, logger: silentLogger },
    o: { ...DEFAULT_OPTIONS, longpollTimeoutMs },
    pairs: new Map(),
    runtime: () => {
      throw new Error('not used')
    },
  } as unknown as PullContext
  const peer = new FakeWatchPeer()
  return { peer, watches: new PeerWatches(ctx, peer.send) }
}

function pair(i: number): Pair {
  const p = newPair(`pair${String(i).padStart(12, '0')}`, PEER, 'http://peer.test', `th_w${i}`, 0)
  return { ...p, state: 'running', cursor: `c1.0123456789abcdef.${i}`, caught_up_at: 1 }
}

const tick = (ms = 10) => new Promise((r) => setTimeout(r, ms))
const page = (cursor: string) => ({
  records: [{ id: 'x' }],
  next_cursor: cursor,
  has_more: false,
  server_time: 1,
  bytes: 1,
  sentAt: 0,
  receivedAt: 0,
})

describe('PeerWatches: one conversation per peer', () => {
  it('pairs that join together wait in one request naming every thread with its cursor', async () => {
    const { peer, watches } = setup()
    const ac = new AbortController()
    const waits = Array.from({ length: 200 }, (_, i) => watches.wait(pair(i), ac.signal))
    await tick()
    expect(peer.open).toHaveLength(1)
    expect(peer.open[0]!.req.threads).toHaveLength(200)
    expect(peer.open[0]!.req.threads[5]).toEqual({ thread: 'th_w5', since: 'c1.0123456789abcdef.5' })
    ac.abort()
    await Promise.allSettled(waits)
  })

  it("an answer goes to its thread's pair; the others wait on, asked again together with the one that comes back", async () => {
    const { peer, watches } = setup()
    const ac = new AbortController()
    const pairs = Array.from({ length: 10 }, (_, i) => pair(i))
    const waits = pairs.map((p) => watches.wait(p, ac.signal))
    await tick()
    peer.answer('th_w3', [{ thread: 'th_w3', page: page('next3') }])
    expect(await waits[3]).toEqual({ page: page('next3') })
    // The pair comes back with its new cursor before the debounce ends: one request for all ten.
    const back = watches.wait({ ...pairs[3]!, cursor: 'next3' }, ac.signal)
    await tick()
    expect(peer.open).toHaveLength(1)
    expect(peer.open[0]!.req.threads).toHaveLength(10)
    expect(peer.open[0]!.req.threads.find((t) => t.thread === 'th_w3')).toEqual({ thread: 'th_w3', since: 'next3' })
    ac.abort()
    await Promise.allSettled([...waits, back])
  })

  it('more than 1,000 pairs: one request per 1,000; newcomers while they wait never make more than two more', async () => {
    const { peer, watches } = setup()
    const ac = new AbortController()
    const waits = Array.from({ length: 2500 }, (_, i) => watches.wait(pair(i), ac.signal))
    await tick()
    expect(peer.open.map((o) => o.req.threads.length)).toEqual([1000, 1000, 500])
    // Newcomers one by one, each after the debounce: at most ⌈n/1000⌉ + 2 open at any time.
    for (let i = 2500; i < 2520; i++) {
      waits.push(watches.wait(pair(i), ac.signal))
      await tick(5)
      expect(peer.open.length).toBeLessThanOrEqual(3 + 2)
    }
    expect(watches.open).toBe(peer.open.length)
    expect(peer.open.reduce((n, o) => n + o.req.threads.length, 0)).toBe(2520)
    ac.abort()
    await Promise.allSettled(waits)
    await tick()
    expect(peer.open).toHaveLength(0)
  })

  it('an idle answer (nothing for anyone) settles every pair with an idle page at its own cursor', async () => {
    const { peer, watches } = setup()
    const ac = new AbortController()
    const p = pair(1)
    const w = watches.wait(p, ac.signal)
    await tick()
    // Answered after a while (not at once: that would be a peer that does not hold).
    await tick(1100)
    peer.answer('th_w1', [])
    const out = await w
    expect(out).toMatchObject({ page: { records: [], next_cursor: p.cursor, has_more: false } })
  })

  it('a refusal of one thread sends its pair to pull alone; a peer without the door sends them all to long-poll alone', async () => {
    const { peer, watches } = setup()
    const ac = new AbortController()
    const w1 = watches.wait(pair(1), ac.signal)
    const w2 = watches.wait(pair(2), ac.signal)
    await tick()
    peer.answer('th_w1', [{ thread: 'th_w1', error: { object: 'error', code: 'THREAD_PRIVATE', message: 'no' } }])
    expect(await w1).toBe('pull')
    await tick()
    expect(peer.open[0]!.req.threads).toEqual([{ thread: 'th_w2', since: pair(2).cursor }])
    peer.open[0]!.fail(new WatchUnsupportedError(404))
    expect(await w2).toBe('fallback')
    expect(watches.unsupported(pair(3))).toBe(true)
    expect(await watches.wait(pair(3), ac.signal)).toBe('fallback')
  })

  it('a peer that cannot be reached: every waiting pair fails with the error (and backs off on its own)', async () => {
    const { peer, watches } = setup()
    const ac = new AbortController()
    const waits = [watches.wait(pair(1), ac.signal), watches.wait(pair(2), ac.signal)]
    await tick()
    peer.open[0]!.fail(new PullError('CONNECT_REFUSED', 'refused'))
    for (const w of waits) await expect(w).rejects.toMatchObject({ code: 'CONNECT_REFUSED' })
  })

  it('a pair that leaves (paused, kicked) is dropped; the last one to leave hangs the request up', async () => {
    const { peer, watches } = setup()
    const a1 = new AbortController()
    const a2 = new AbortController()
    const w1 = watches.wait(pair(1), a1.signal)
    const w2 = watches.wait(pair(2), a2.signal)
    await tick()
    a1.abort(new Error('paused'))
    await expect(w1).rejects.toThrow('paused')
    expect(peer.open).toHaveLength(1)
    // Kicked and back at the same cursor before the answer: it waits on the same request, nothing new is sent.
    const again = watches.wait(pair(1), a1.signal.aborted ? new AbortController().signal : a1.signal)
    await tick()
    expect(peer.sent).toHaveLength(1)
    peer.answer('th_w1', [{ thread: 'th_w1', page: page('n1') }])
    expect(await again).toEqual({ page: page('n1') })
    a2.abort()
    await expect(w2).rejects.toThrow()
    await tick()
    expect(peer.open).toHaveLength(0)
  })

  it('a peer that answers every watch at once with nothing: after three, its pairs long-poll alone', async () => {
    const { peer, watches } = setup()
    const ac = new AbortController()
    let w = watches.wait(pair(1), ac.signal)
    for (let i = 0; i < 2; i++) {
      await tick()
      peer.answer('th_w1', [])
      // An empty answer settles the pair with an idle page; the pair comes back at once.
      expect(await w).toMatchObject({ page: { records: [] } })
      w = watches.wait(pair(1), ac.signal)
    }
    await tick()
    peer.answer('th_w1', [])
    expect(await w).toBe('fallback')
  })
})
