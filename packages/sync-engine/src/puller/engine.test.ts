import { describe, expect, it } from 'vitest'
import {
  advance,
  envelope,
  FakePeer,
  input,
  PAIR_ID,
  PEER_URL,
  peerKey,
  setup,
  storedIds,
  THREAD,
  useEngineHarness,
} from '../../test/engine-harness.js'
import { PairNotFoundError } from '../pair.js'
import type { PeerTransport } from './components.js'

useEngineHarness()

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
