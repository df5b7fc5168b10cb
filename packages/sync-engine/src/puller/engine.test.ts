import { Keypair } from '@spl/identity'
import {
  canonicalRecord,
  type Envelope,
  inlineChecker,
  namespaceOf,
  type RecordFields,
  type SignedRecord,
  sha256Hex,
  signRecord,
  toEnvelope,
} from '@spl/records'
import { type ChangesPage, type ChangesRequest, classifyHttpStatus, PullError } from '@spl/transport'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { prng as seeded } from '../../../../test-utils/prng.js'
import { PairNotFoundError, pairIdFor } from '../pair.js'
import { MemorySyncStore } from '../stores/memory-store.js'
import type { PeerTransport, SyncEngineComponents, SyncOptions } from './components.js'
import { SyncEngine } from './engine.js'

const local = Keypair.fromSeed(new Uint8Array(32).fill(11))
const peerKey = Keypair.fromSeed(new Uint8Array(32).fill(12))
const stranger = Keypair.fromSeed(new Uint8Array(32).fill(13))
const THREAD = 'th_engine'
const PEER_URL = 'http://peer.test:9100'

function signed(clock: number, over: Partial<RecordFields> = {}, kp: Keypair = peerKey): SignedRecord {
  return signRecord(kp, {
    parents: [],
    thread: THREAD,
    actor: kp.did,
    act: 'DO',
    body: { text: `record ${clock}` },
    clock,
    data_type: 'SCALAR',
    ...over,
  })
}

function envelope(clock: number, over: Partial<RecordFields> = {}): Envelope {
  return toEnvelope(signed(clock, over), Date.now())
}

/**
 * A scripted peer: it serves `log` as a change feed (cursor = how many records were served),
 * throws the queued `failures` first, and holds a long poll open until `emit` or an abort.
 */
class FakePeer implements PeerTransport {
  readonly log: unknown[] = []
  readonly calls: Omit<ChangesRequest, 'signal'>[] = []
  failures: unknown[] = []
  /** The peer's clock minus ours, ms (server_time is stamped with it). */
  skewMs = 0
  intercept: ((req: ChangesRequest) => void) | null = null
  readonly #wake = new Set<() => void>()

  emit(...envelopes: unknown[]): void {
    this.log.push(...envelopes)
    for (const w of [...this.#wake]) w()
  }

  get waiting(): number {
    return this.#wake.size
  }

  async fetchChanges(req: ChangesRequest): Promise<ChangesPage> {
    const { signal, ...rest } = req
    this.calls.push(rest)
    if (this.failures.length > 0) throw this.failures.shift()
    this.intercept?.(req)
    const sentAt = Date.now()
    const after = req.cursor === null ? 0 : Number(req.cursor)
    if (req.feed === 'longpoll' && after >= this.log.length) {
      await new Promise<void>((resolve, reject) => {
        const cleanup = () => {
          this.#wake.delete(wake)
          signal?.removeEventListener('abort', onAbort)
        }
        const wake = () => {
          cleanup()
          resolve()
        }
        const onAbort = () => {
          cleanup()
          reject(signal?.reason ?? new Error('aborted'))
        }
        if (signal?.aborted) return onAbort()
        this.#wake.add(wake)
        signal?.addEventListener('abort', onAbort)
      })
    }
    const records = this.log.slice(after, after + (req.limit ?? 1000))
    const end = after + records.length
    return {
      records,
      next_cursor: String(end),
      has_more: end < this.log.length,
      server_time: Date.now() + this.skewMs,
      bytes: JSON.stringify(records).length,
      sentAt,
      receivedAt: Date.now(),
    }
  }
}

const engines: SyncEngine[] = []

function setup(opts: { store?: MemorySyncStore; options?: SyncOptions; components?: Partial<SyncEngineComponents>; peer?: FakePeer } = {}) {
  const store = opts.store ?? new MemorySyncStore()
  const peer = opts.peer ?? new FakePeer()
  const stored: string[] = []
  const engine = new SyncEngine(
    {
      localDid: local.did,
      pairs: store,
      sink: store,
      transport: peer,
      checker: inlineChecker,
      namespaces: { namespaceGate: () => null },
      onStored: (_thread, rows) => stored.push(...rows.map((r) => r.id)),
      ...opts.components,
    },
    { random: seeded(7), ...opts.options },
  )
  engines.push(engine)
  return { store, peer, engine, stored }
}

const input = { peer_did: peerKey.did, peer_url: PEER_URL, thread_id: THREAD }
const PAIR_ID = pairIdFor(local.did, peerKey.did, THREAD)

/** Lets every due timer and pending promise run (fake time moves by `ms`). */
async function advance(ms = 0): Promise<void> {
  await vi.advanceTimersByTimeAsync(ms)
  // A cycle that ends schedules the next one "now"; the fake clock runs a 0 ms timer made while
  // timers run 1 ms later, so step a few milliseconds to let those follow-ups run too.
  for (let i = 0; i < 10; i++) await vi.advanceTimersByTimeAsync(1)
}

async function storedIds(store: MemorySyncStore, thread = THREAD): Promise<string[]> {
  return (await store.listAfter(thread, 0, 100_000)).map((r) => r.id)
}

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(async () => {
  for (const e of engines.splice(0)) await e.stop()
  vi.useRealTimers()
})

describe('SyncEngine: pair lifecycle', () => {
  it('starts a pair as starting, and it runs once the first pull has finished', async () => {
    const peer = new FakePeer()
    peer.emit(envelope(0), envelope(1))
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    // The first answer is held until the test lets it go.
    const transport: PeerTransport = {
      fetchChanges: async (req) => {
        if (peer.calls.length === 0) await gate
        return peer.fetchChanges(req)
      },
    }
    const { engine, store } = setup({ peer, components: { transport } })
    await engine.start()
    const { pair, created } = await engine.addPair(input)
    expect(created).toBe(true)
    expect(pair).toMatchObject({ pair_id: PAIR_ID, state: 'starting', cursor: null, mode: 'longpoll', attempt: 0, backoff_ms: 0 })
    await advance(5000)
    expect(engine.getPair(PAIR_ID).state).toBe('starting')
    expect(engine.lagSeconds(PAIR_ID)).toBe(0)
    release()
    await advance()
    const after = engine.getPair(PAIR_ID)
    expect(after.state).toBe('running')
    expect(after.cursor).toBe('2')
    expect(after.last_error).toBeNull()
    expect(await storedIds(store)).toHaveLength(2)
    expect((await store.getPair(PAIR_ID))?.state).toBe('running')
  })

  it('adding the same pair twice returns the live one', async () => {
    const { engine } = setup()
    await engine.start()
    const first = await engine.addPair(input)
    const second = await engine.addPair({ ...input, peer_url: 'http://elsewhere.test' })
    expect(first.created).toBe(true)
    expect(second.created).toBe(false)
    expect(second.pair.pair_id).toBe(first.pair.pair_id)
    expect(engine.listPairs()).toHaveLength(1)
    expect(engine.findPair(peerKey.did, THREAD)?.pair_id).toBe(PAIR_ID)
    expect(engine.getPair(PAIR_ID.slice(0, 4)).pair_id).toBe(PAIR_ID)
  })

  it('sends the cursor, limit, target namespace and the peer link bearer', async () => {
    const { engine, peer } = setup({
      options: { targetNamespace: 'team', pageLimit: 50, longpollTimeoutMs: 12_000 },
      components: { credentials: (did) => (did === peerKey.did ? 'tok-123' : null) },
    })
    peer.emit(envelope(0))
    await engine.start()
    await engine.addPair(input)
    await advance()
    expect(peer.calls[0]).toMatchObject({
      peerUrl: PEER_URL,
      peerDid: peerKey.did,
      thread: THREAD,
      cursor: null,
      limit: 50,
      feed: 'normal',
      targetNamespace: 'team',
      bearer: 'tok-123',
    })
    expect(peer.calls[1]).toMatchObject({ cursor: '1', feed: 'longpoll', timeoutMs: 12_000 })
  })

  it('pulls has_more pages back to back, then long-polls', async () => {
    const { engine, peer, store, stored } = setup({ options: { pageLimit: 2 } })
    const envs = [0, 1, 2, 3, 4].map((c) => envelope(c))
    peer.emit(...envs)
    await engine.start()
    await engine.addPair(input)
    await advance()
    expect(peer.calls.map((c) => [c.feed, c.cursor])).toEqual([
      ['normal', null],
      ['normal', '2'],
      ['normal', '4'],
      ['longpoll', '5'],
    ])
    expect(await storedIds(store)).toEqual(envs.map((e) => e.id))
    expect(stored).toEqual(envs.map((e) => e.id))
    const p = engine.getPair(PAIR_ID)
    expect(p.totals).toMatchObject({ pulls: 3, records_received: 5, records_stored: 5, duplicates: 0 })
    expect(p.cursor).toBe('5')
    expect(p.caught_up_at).not.toBeNull()
  })

  it('a record emitted later arrives through the open long poll', async () => {
    const { engine, peer, store } = setup()
    await engine.start()
    await engine.addPair(input)
    await advance()
    expect(peer.waiting).toBe(1)
    const later = envelope(0)
    peer.emit(later)
    await advance()
    expect(await storedIds(store)).toEqual([later.id])
    expect(peer.calls.at(-2)).toMatchObject({ feed: 'longpoll', cursor: '0' })
  })

  it('pause stops pulling and keeps the cursor; resume pulls what came meanwhile', async () => {
    const { engine, peer, store } = setup()
    peer.emit(envelope(0))
    await engine.start()
    await engine.addPair(input)
    await advance()
    const paused = await engine.pausePair(PAIR_ID)
    expect(paused.state).toBe('paused')
    expect(paused.cursor).toBe('1')
    expect(peer.waiting).toBe(0) // the open long poll was ended
    expect((await store.getPair(PAIR_ID))?.state).toBe('paused')
    const callsAtPause = peer.calls.length
    const meanwhile = envelope(1)
    peer.emit(meanwhile)
    await advance(120_000)
    expect(peer.calls.length).toBe(callsAtPause)
    expect(await storedIds(store)).not.toContain(meanwhile.id)
    expect((await engine.kickPair(PAIR_ID)).state).toBe('paused') // kick does not wake a paused pair
    await advance(1000)
    expect(peer.calls.length).toBe(callsAtPause)

    const resumed = await engine.resumePair(PAIR_ID)
    expect(resumed.state).toBe('running')
    await advance()
    expect(await storedIds(store)).toContain(meanwhile.id)
    expect(peer.calls[callsAtPause]).toMatchObject({ cursor: '1' })
  })

  it('remove stops the pair and keeps it as a tombstone, listed only with all', async () => {
    const { engine, peer, store } = setup()
    peer.emit(envelope(0))
    await engine.start()
    await engine.addPair(input)
    await advance()
    const removed = await engine.removePair(PAIR_ID.slice(0, 6))
    expect(removed.state).toBe('stopped')
    expect(engine.listPairs()).toEqual([])
    expect(engine.listPairs({ all: true }).map((p) => [p.pair_id, p.state])).toEqual([[PAIR_ID, 'stopped']])
    expect(engine.findPair(peerKey.did, THREAD)).toBeUndefined()
    expect((await store.getPair(PAIR_ID))?.state).toBe('stopped')
    const calls = peer.calls.length
    peer.emit(envelope(1))
    await advance(60_000)
    expect(peer.calls.length).toBe(calls)
    await expect(engine.pausePair(PAIR_ID)).rejects.toBeInstanceOf(PairNotFoundError)
    await expect(engine.removePair(PAIR_ID)).rejects.toBeInstanceOf(PairNotFoundError)
    await expect(engine.resetPair(PAIR_ID)).rejects.toBeInstanceOf(PairNotFoundError)

    // Adding it again revives it from where it was.
    const again = await engine.addPair(input)
    expect(again.created).toBe(true)
    expect(again.pair).toMatchObject({ state: 'starting', cursor: '1' })
    await advance()
    expect(engine.getPair(PAIR_ID).state).toBe('running')
    expect(await storedIds(store)).toHaveLength(2)
  })

  it('reset moves the cursor back to the start: the replay is counted as duplicates, not stored twice', async () => {
    const { engine, peer, store } = setup()
    const envs = [0, 1, 2].map((c) => envelope(c))
    peer.emit(...envs)
    await engine.start()
    await engine.addPair(input)
    await advance()
    expect(engine.getPair(PAIR_ID).cursor).toBe('3')
    const callsBefore = peer.calls.length
    await engine.resetPair(PAIR_ID)
    await advance()
    expect(peer.calls[callsBefore]).toMatchObject({ cursor: null, feed: 'normal' })
    const p = engine.getPair(PAIR_ID)
    expect(p.cursor).toBe('3')
    expect(p.totals).toMatchObject({ records_received: 6, records_stored: 3, duplicates: 3 })
    expect(await storedIds(store)).toEqual(envs.map((e) => e.id))
    expect((await store.getPair(PAIR_ID))?.totals.duplicates).toBe(3)
  })

  it('a restarted engine resumes every pair from its stored cursor', async () => {
    const peer = new FakePeer()
    const first = setup({ peer })
    peer.emit(envelope(0), envelope(1))
    await first.engine.start()
    await first.engine.addPair(input)
    await advance()
    await first.engine.stop()
    const calls = peer.calls.length
    peer.emit(envelope(2))

    const second = setup({ peer, store: first.store })
    await second.engine.start()
    await advance()
    expect(peer.calls[calls]).toMatchObject({ cursor: '2' })
    expect(await storedIds(first.store)).toHaveLength(3)
    expect(second.engine.getPair(PAIR_ID).totals).toMatchObject({ records_stored: 3, duplicates: 0 })
  })
})

describe('SyncEngine: failures and backoff', () => {
  it('fails with the PullError code, backs off 1 s, 2 s, 4 s (±20 %), and a success resets it', async () => {
    const { engine, peer } = setup()
    const refused = () => new PullError('CONNECT_REFUSED', 'cannot connect to the peer (ECONNREFUSED)')
    peer.failures = [refused(), refused(), refused()]
    await engine.start()
    await engine.addPair(input)
    await advance()
    for (let attempt = 1; attempt <= 3; attempt++) {
      const p = engine.getPair(PAIR_ID)
      expect(p.state).toBe('failing')
      expect(p.attempt).toBe(attempt)
      expect(p.last_error).toMatchObject({ code: 'CONNECT_REFUSED' })
      expect(p.last_error?.message).toContain('ECONNREFUSED')
      expect(p.last_error?.message).toContain('check the peer is running') // the fix travels with the code
      const base = 1000 * 2 ** (attempt - 1)
      expect(p.backoff_ms).toBeGreaterThanOrEqual(base * 0.8)
      expect(p.backoff_ms).toBeLessThanOrEqual(base * 1.2)
      expect(p.next_attempt_at).toBe(p.last_error!.at + p.backoff_ms)
      expect(peer.calls).toHaveLength(attempt)
      // No retry before the backoff has passed; one right when it has.
      await advance(p.next_attempt_at! - Date.now() - 15)
      expect(peer.calls).toHaveLength(attempt)
      await advance(20)
      expect(peer.calls.length).toBeGreaterThan(attempt)
    }
    const ok = engine.getPair(PAIR_ID)
    expect(ok.state).toBe('running')
    expect(ok.last_error).toBeNull()
    expect(ok.attempt).toBe(0)
    expect(ok.backoff_ms).toBe(0)
    expect(ok.next_attempt_at).toBeNull() // long poll: no wait
    // The next failure starts again at 1 s.
    peer.failures = [new PullError('HTTP_5XX', 'peer answered 503 (HTTP 503)')]
    await engine.kickPair(PAIR_ID)
    await advance()
    const again = engine.getPair(PAIR_ID)
    expect(again).toMatchObject({ state: 'failing', attempt: 1, last_error: { code: 'HTTP_5XX' } })
    expect(again.backoff_ms).toBeGreaterThanOrEqual(800)
    expect(again.backoff_ms).toBeLessThanOrEqual(1200)
    expect(engine.metricsOf(PAIR_ID).errors.sum(3_600_000, Date.now())).toBe(4)
  })

  it('kick clears the backoff wait and pulls now', async () => {
    const { engine, peer, store } = setup()
    peer.failures = [new PullError('TIMEOUT', 'no answer in time (TimeoutError)')]
    const rec = envelope(0)
    peer.emit(rec)
    await engine.start()
    await engine.addPair(input)
    await advance()
    const failing = engine.getPair(PAIR_ID)
    expect(failing).toMatchObject({ state: 'failing', attempt: 1, last_error: { code: 'TIMEOUT' } })
    expect(failing.next_attempt_at).not.toBeNull()
    const kicked = await engine.kickPair(PAIR_ID)
    expect(kicked.backoff_ms).toBe(0)
    expect(kicked.next_attempt_at).toBeNull()
    await advance() // no time passes beyond "now"
    expect(peer.calls).toHaveLength(3) // the failure, the kicked pull, the long poll after it
    expect(engine.getPair(PAIR_ID)).toMatchObject({ state: 'running', attempt: 0 })
    expect(await storedIds(store)).toEqual([rec.id])
  })

  it('kick ends an open long poll and pulls at once', async () => {
    const { engine, peer } = setup()
    await engine.start()
    await engine.addPair(input)
    await advance()
    expect(peer.waiting).toBe(1)
    const calls = peer.calls.length
    await engine.kickPair(PAIR_ID)
    await advance()
    expect(peer.calls.length).toBe(calls + 1)
    expect(engine.getPair(PAIR_ID)).toMatchObject({ state: 'running', last_error: null })
  })

  it('a non-PullError failure is INTERNAL, and the loop keeps retrying', async () => {
    const { engine, peer } = setup()
    peer.failures = [new TypeError('boom')]
    await engine.start()
    await engine.addPair(input)
    await advance()
    expect(engine.getPair(PAIR_ID)).toMatchObject({ state: 'failing', last_error: { code: 'INTERNAL', message: 'boom' } })
    await advance(1200)
    expect(engine.getPair(PAIR_ID).state).toBe('running')
  })

  it('remembers a peer that answers 400 to feed=longpoll as poll-only, without failing', async () => {
    const { engine, peer, store } = setup({ options: { defaultPollIntervalMs: 2000 } })
    peer.intercept = (req) => {
      if (req.feed === 'longpoll') throw classifyHttpStatus(400, { code: 'INVALID_REQUEST', message: 'query.feed: must be normal' })
    }
    await engine.start()
    await engine.addPair(input)
    await advance()
    const p = engine.getPair(PAIR_ID)
    expect(p.poll_only).toBe(true)
    expect(p.state).toBe('running')
    expect(p.last_error).toBeNull()
    expect(p.attempt).toBe(0)
    expect((await store.getPair(PAIR_ID))?.poll_only).toBe(true)
    expect(peer.calls.map((c) => c.feed)).toEqual(['normal', 'longpoll', 'normal'])
    expect(p.next_attempt_at).toBe(p.last_success_at! + 2000)
    await advance(p.next_attempt_at! - Date.now() - 15)
    expect(peer.calls).toHaveLength(3)
    await advance(20)
    expect(peer.calls.map((c) => c.feed)).toEqual(['normal', 'longpoll', 'normal', 'normal'])
  })

  it('a peer that says has_more without moving the cursor is a PARSE_ERROR, not a busy loop', async () => {
    const peer = new FakePeer()
    const transport: PeerTransport = {
      fetchChanges: async (req) => {
        const page = await peer.fetchChanges(req)
        return req.cursor === '1' ? { ...page, records: [], next_cursor: '1', has_more: true } : page
      },
    }
    peer.emit(envelope(0), envelope(1))
    const { engine, store } = setup({ peer, components: { transport }, options: { pageLimit: 1 } })
    await engine.start()
    await engine.addPair(input)
    await advance()
    const p = engine.getPair(PAIR_ID)
    expect(p).toMatchObject({ state: 'failing', cursor: '1', last_error: { code: 'PARSE_ERROR' } })
    expect(peer.calls.length).toBeLessThan(5)
    expect(await storedIds(store)).toHaveLength(1)
  })

  it('a 400 INVALID_CURSOR is a failure, not a reason to stop long-polling', async () => {
    const { engine, peer } = setup()
    peer.failures = [classifyHttpStatus(400, { code: 'INVALID_CURSOR', message: "'x' is not a change-feed cursor." })]
    await engine.start()
    await engine.addPair(input)
    await advance()
    expect(engine.getPair(PAIR_ID)).toMatchObject({ state: 'failing', poll_only: false, last_error: { code: 'HTTP_4XX' } })
  })
})

describe('SyncEngine: ingest checks', () => {
  it('rejects bad records by code, never stores them, and keeps the pair running', async () => {
    const gate = (r: RecordFields) => (namespaceOf(r).startsWith('team') ? 'team' : null)
    const { engine, peer, store } = setup({ components: { namespaces: { namespaceGate: gate } } })
    const good = signed(0)
    const forgedSig = (() => {
      const s = signed(1)
      return { ...toEnvelope(s, 1), sig: Buffer.from(stranger.sign(Buffer.from(s.canonical))).toString('base64url') }
    })()
    const badHash = (() => {
      const s = signed(2)
      return { ...toEnvelope(s, 1), record: { ...s.record, body: { text: 'tampered' } } }
    })()
    const otherThread = toEnvelope(signed(3, { thread: 'th_other' }), 1)
    const namespaced = toEnvelope(signed(4, { body: { namespace: 'team/ops', text: 'x' } }), 1)
    const equivocation = toEnvelope(signed(0, { body: { text: 'a second record at clock 0' } }), 1)
    const webActor = (() => {
      const record: RecordFields = { ...signed(5).record, actor: 'did:web:example.com' }
      return { id: sha256Hex(canonicalRecord(record)), record, sig: signed(5).sig, stored_at: 1 }
    })()
    const garbage = { id: 'nope' }
    peer.emit(toEnvelope(good, 1), forgedSig, badHash, otherThread, namespaced, equivocation, webActor, garbage)
    await engine.start()
    await engine.addPair(input)
    await advance()
    const p = engine.getPair(PAIR_ID)
    expect(p.state).toBe('running')
    expect(p.cursor).toBe('8')
    expect(p.totals.records_received).toBe(8)
    expect(p.totals.records_stored).toBe(1)
    expect(p.totals.rejected).toEqual({
      SIGNATURE_INVALID: 1,
      HASH_MISMATCH: 1,
      THREAD_MISMATCH: 1,
      NAMESPACE_REJECTED: 1,
      CLOCK_CONFLICT: 1,
      UNVERIFIABLE_ACTOR: 1,
      INVALID_RECORD: 1,
    })
    expect(await storedIds(store)).toEqual([good.id])
    expect(await storedIds(store, 'th_other')).toEqual([])
    const log = await engine.rejections(PAIR_ID)
    expect(log).toHaveLength(7)
    const byCode = new Map(log.map((r) => [r.code, r]))
    expect(byCode.get('SIGNATURE_INVALID')?.record_id).toBe(forgedSig.id)
    expect(byCode.get('HASH_MISMATCH')?.record_id).toBe(badHash.id)
    expect(byCode.get('THREAD_MISMATCH')?.record_id).toBe(otherThread.id)
    expect(byCode.get('NAMESPACE_REJECTED')?.message).toContain("'team'")
    expect(byCode.get('CLOCK_CONFLICT')?.record_id).toBe(equivocation.id)
    expect(byCode.get('INVALID_RECORD')?.record_id).toBeNull()
    expect(log.every((r) => r.pair_id === PAIR_ID)).toBe(true)
    expect(engine.metricsOf(PAIR_ID).rejections.sum(3_600_000, Date.now())).toBe(7)
  })

  it('stores a redacted stub, and the full record replaces it when it arrives', async () => {
    const { engine, peer, store } = setup()
    const full = signed(0, { body: { namespace: 'team', text: 'secret' } })
    const stub = { id: full.id, record: { ...full.record, body: { redacted: true } }, stored_at: 1, redacted: true }
    peer.emit(stub)
    await engine.start()
    await engine.addPair(input)
    await advance()
    expect((await store.known([full.id])).get(full.id)).toEqual({ redacted: true })
    peer.emit(toEnvelope(full, 2))
    await advance()
    expect((await store.known([full.id])).get(full.id)).toEqual({ redacted: false })
    expect(engine.getPair(PAIR_ID).totals).toMatchObject({ records_stored: 2, duplicates: 0 })
  })
})

describe('SyncEngine: lag', () => {
  it('is 0 while starting, the time since creation when never caught up, 0 while caught up, then the time since', async () => {
    const { engine, peer } = setup({ options: { longpollTimeoutMs: 25_000, random: () => 0.5 } })
    peer.failures = [new PullError('CONNECT_REFUSED', 'x'), new PullError('CONNECT_REFUSED', 'x'), new PullError('CONNECT_REFUSED', 'x')]
    await engine.start()
    await engine.addPair(input)
    expect(engine.lagSeconds(PAIR_ID)).toBe(0) // starting
    expect(engine.lagSeconds('0000000000000000')).toBeNull()
    await advance() // failure 1 at 0 s, retry in 1 s
    await advance(1000) // failure 2 at 1 s, retry in 2 s
    await advance(2000) // failure 3 at 3 s, retry in 4 s
    expect(engine.getPair(PAIR_ID)).toMatchObject({ state: 'failing', attempt: 3 })
    expect(engine.lagSeconds(PAIR_ID)).toBe(3) // never caught up: time since the pair was made
    await advance(4000) // success at 7 s
    expect(engine.getPair(PAIR_ID).state).toBe('running')
    expect(engine.lagSeconds(PAIR_ID)).toBe(0)
    // The long poll stays open (no answer); within 25 s + 5 s of the last success the lag is 0.
    await advance(29_000)
    expect(engine.lagSeconds(PAIR_ID)).toBe(0)
    await advance(11_000)
    expect(engine.lagSeconds(PAIR_ID)).toBe(40)
  })

  it('counts from creation while the first pulls fail', async () => {
    const { engine, peer } = setup()
    peer.failures = Array.from({ length: 10 }, () => new PullError('DNS_FAILURE', 'the peer host does not resolve (ENOTFOUND)'))
    await engine.start()
    await engine.addPair(input)
    await advance()
    await advance(7000)
    expect(engine.getPair(PAIR_ID).state).toBe('failing')
    expect(engine.lagSeconds(PAIR_ID)).toBe(7)
  })
})

describe('SyncEngine: one-off pulls, races and latency', () => {
  it('pullOnce pages through a thread without a pair and keeps no pair row', async () => {
    const { engine, peer, store } = setup({ options: { pageLimit: 2 } })
    const envs = [0, 1, 2, 3, 4].map((c) => envelope(c))
    peer.emit(...envs)
    await engine.start()
    const seen: number[] = []
    const progress = await engine.pullOnce({ peerDid: peerKey.did, peerUrl: PEER_URL }, THREAD, (p) => seen.push(p.received))
    expect(progress).toMatchObject({ pages: 3, received: 5, stored: 5, duplicates: 0, rejected: 0, cursor: '5', hasMore: false })
    expect(seen).toEqual([2, 4, 5])
    expect(peer.calls.every((c) => c.feed === 'normal')).toBe(true)
    expect(await storedIds(store)).toEqual(envs.map((e) => e.id))
    expect(engine.listPairs({ all: true })).toEqual([])
    // Nothing that a restarted engine would pick up as a pair.
    expect(await store.listPairs()).toEqual([])
  })

  it('pullOnce with a live pair makes that pair pull now and reports its cycle', async () => {
    const { engine, peer, store } = setup()
    peer.emit(envelope(0))
    await engine.start()
    await engine.addPair(input)
    await advance()
    const later = envelope(1)
    peer.log.push(later) // stored at the source without waking the long poll
    const pulled = engine.pullOnce({ peerDid: peerKey.did, peerUrl: PEER_URL }, THREAD)
    await advance()
    expect(await pulled).toMatchObject({ received: 1, stored: 1, cursor: '2' })
    expect(await storedIds(store)).toContain(later.id)
  })

  it('a pause that lands while a page is being committed keeps the pair paused', async () => {
    const store = new MemorySyncStore()
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    let commits = 0
    const sink = {
      known: (ids: readonly string[]) => store.known(ids),
      commit: async (batch: Parameters<MemorySyncStore['commit']>[0]) => {
        if (commits++ === 0) await gate
        return store.commit(batch)
      },
    }
    const { engine, peer } = setup({ store, components: { sink } })
    peer.emit(envelope(0))
    await engine.start()
    await engine.addPair(input)
    await advance()
    expect(commits).toBe(1)
    const pausing = engine.pausePair(PAIR_ID)
    await advance()
    release()
    const paused = await pausing
    await advance(60_000)
    expect(paused.state).toBe('paused')
    expect(engine.getPair(PAIR_ID).state).toBe('paused')
    expect((await store.getPair(PAIR_ID))?.state).toBe('paused')
    expect(await storedIds(store)).toHaveLength(1) // the page itself was committed whole
    expect(peer.calls).toHaveLength(1)
  })

  it('measures delivery latency against the peer clock, corrected for skew', async () => {
    const latencies: number[] = []
    const { engine, peer } = setup({ components: { observeLatency: (_id, ms) => latencies.push(ms) } })
    peer.skewMs = 10_000 // the peer's clock is 10 s ahead
    const s = signed(0)
    peer.emit(toEnvelope(s, Date.now() + peer.skewMs - 500)) // stored at the source 0.5 s ago, its time
    await engine.start()
    await engine.addPair(input)
    await advance()
    expect(engine.skewOf(PAIR_ID)).toBe(10_000)
    expect(latencies).toHaveLength(1)
    expect(latencies[0]).toBe(500)
    const m = engine.metricsOf(PAIR_ID)
    expect(m.latency.count).toBe(1)
    expect(m.stored.sum(60_000, Date.now())).toBe(1)
  })
})
