import type { ChangesPage, ChangesRequest } from '@spl/transport'
import { describe, expect, it } from 'vitest'
import { advance, envelope, FakePeer, input, PAIR_ID, setup, useEngineHarness } from '../../test/engine-harness.js'

useEngineHarness()

/** A peer that ends every request at once with an empty page (a broken proxy, or a hostile peer). */
class InstantEmptyPeer extends FakePeer {
  override async fetchChanges(req: ChangesRequest): Promise<ChangesPage> {
    const { signal: _, ...rest } = req
    this.calls.push(rest)
    return {
      records: [],
      next_cursor: 'c',
      has_more: false,
      server_time: Date.now(),
      bytes: 60,
      sentAt: Date.now(),
      receivedAt: Date.now(),
    }
  }
}

describe('SyncEngine: a peer that answers long polls at once with nothing', () => {
  it('backs off from the fast empty answers, then polls at the interval and says why', async () => {
    const peer = new InstantEmptyPeer()
    const { engine } = setup({ peer })
    await engine.start()
    await engine.addPair(input)
    await advance(60_000)
    const longpolls = peer.calls.filter((c) => c.feed === 'longpoll').length
    // Three fast answers, then polling (the old loop asked again at once: thousands of times here).
    expect(longpolls).toBe(3)
    const polls = peer.calls.filter((c) => c.feed === 'normal').length
    expect(polls).toBeGreaterThanOrEqual(10)
    expect(polls).toBeLessThanOrEqual(14)
    const p = engine.getPair(PAIR_ID)
    expect(p).toMatchObject({ state: 'running', poll_only: true, notice: { code: 'LONGPOLL_RETURNS_AT_ONCE' } })
    expect(p.notice?.message).toContain('polling every 5000 ms')
    expect(p.next_attempt_at).not.toBeNull()
  })

  it('a long poll that is held and then brings records resets the count', async () => {
    const { engine, peer } = setup()
    await engine.start()
    await engine.addPair(input)
    await advance()
    for (let i = 0; i < 5; i++) {
      await advance(2000)
      peer.emit(envelope(i))
      await advance()
    }
    const p = engine.getPair(PAIR_ID)
    expect(p).toMatchObject({ state: 'running', poll_only: false, notice: null })
    expect(peer.waiting).toBe(1)
  })
})
