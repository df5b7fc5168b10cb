import { toEnvelope } from '@spl/records'
import { describe, expect, it } from 'vitest'
import {
  advance,
  envelope,
  input,
  PAIR_ID,
  PEER_URL,
  peerKey,
  setup,
  signed,
  storedIds,
  THREAD,
  useEngineHarness,
} from '../../test/engine-harness.js'
import { MemorySyncStore } from '../stores/memory-store.js'

useEngineHarness()

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
