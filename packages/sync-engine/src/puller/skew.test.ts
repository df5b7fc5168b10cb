import { PullError } from '@spl/transport'
import { describe, expect, it } from 'vitest'
import { advance, input, PAIR_ID, setup, useEngineHarness } from '../../test/engine-harness.js'

useEngineHarness()

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
