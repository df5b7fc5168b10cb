import { classifyHttpStatus, PullError } from '@spl/transport'
import { describe, expect, it } from 'vitest'
import { advance, envelope, FakePeer, input, PAIR_ID, setup, storedIds, useEngineHarness } from '../../test/engine-harness.js'
import type { PeerTransport } from './components.js'

useEngineHarness()

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
    // "Pull now": a normal pull at once, then the long poll again.
    expect(peer.calls.slice(calls).map((c) => c.feed)).toEqual(['normal', 'longpoll'])
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
