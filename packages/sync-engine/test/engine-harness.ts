// Shared by the puller tests: a scripted peer and an engine on an in-memory store.
import { Keypair } from '@spl/identity'
import { type Envelope, inlineChecker, type RecordFields, type SignedRecord, signRecord, toEnvelope } from '@spl/records'
import type { ChangesPage, ChangesRequest } from '@spl/transport'
import { afterEach, beforeEach, vi } from 'vitest'
import { prng as seeded } from '../../../test-utils/prng.js'
import { pairIdFor } from '../src/pair.js'
import type { PeerTransport, SyncEngineComponents, SyncOptions } from '../src/puller/components.js'
import { SyncEngine } from '../src/puller/engine.js'
import { MemorySyncStore } from '../src/stores/memory-store.js'

export const local = Keypair.fromSeed(new Uint8Array(32).fill(11))
export const peerKey = Keypair.fromSeed(new Uint8Array(32).fill(12))
export const stranger = Keypair.fromSeed(new Uint8Array(32).fill(13))
export const THREAD = 'th_engine'
export const PEER_URL = 'http://peer.test:9100'

export function signed(clock: number, over: Partial<RecordFields> = {}, kp: Keypair = peerKey): SignedRecord {
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

export function envelope(clock: number, over: Partial<RecordFields> = {}): Envelope {
  return toEnvelope(signed(clock, over), Date.now())
}

/**
 * A scripted peer: it serves `log` as a change feed (cursor = how many records were served),
 * throws the queued `failures` first, and holds a long poll open until `emit` or an abort.
 */
export class FakePeer implements PeerTransport {
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

export const engines: SyncEngine[] = []

export function setup(
  opts: { store?: MemorySyncStore; options?: SyncOptions; components?: Partial<SyncEngineComponents>; peer?: FakePeer } = {},
) {
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

export const input = { peer_did: peerKey.did, peer_url: PEER_URL, thread_id: THREAD }
export const PAIR_ID = pairIdFor(local.did, peerKey.did, THREAD)

/** Lets every due timer and pending promise run (fake time moves by `ms`). */
export async function advance(ms = 0): Promise<void> {
  await vi.advanceTimersByTimeAsync(ms)
  // A cycle that ends schedules the next one "now"; the fake clock runs a 0 ms timer made while
  // timers run 1 ms later, so step a few milliseconds to let those follow-ups run too.
  for (let i = 0; i < 10; i++) await vi.advanceTimersByTimeAsync(1)
}

export async function storedIds(store: MemorySyncStore, thread = THREAD): Promise<string[]> {
  return (await store.listAfter(thread, 0, 100_000)).map((r) => r.id)
}

/** Fake timers for each test of the calling file, and every engine it made stopped after it. */
export function useEngineHarness(): void {
  beforeEach(() => {
    vi.useFakeTimers()
  })
  afterEach(async () => {
    for (const e of engines.splice(0)) await e.stop()
    vi.useRealTimers()
  })
}
