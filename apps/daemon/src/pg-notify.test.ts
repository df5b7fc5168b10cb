import { setTimeout as sleep } from 'node:timers/promises'
import { ThreadNotifier } from '@spl/sync-engine'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { PG_SKIP, type PgCluster, startPgCluster } from '../../../test-utils/pg-cluster.js'
import { until } from '../../../test-utils/until.js'
import { createLogger } from './logger.js'
import { MAX_PAYLOAD_BYTES, NotifyCoalescer, RECORDS_CHANNEL, ReplicaBus, STATE_CHANNEL } from './pg-notify.js'

describe('NotifyCoalescer', () => {
  function recorder() {
    const sent: { channel: string; payloads: string[] }[] = []
    return { sent, send: async (channel: string, payloads: readonly string[]) => void sent.push({ channel, payloads: [...payloads] }) }
  }

  it('a burst of stores in a thread within the window is one notification carrying the highest seq', async () => {
    vi.useFakeTimers()
    try {
      const r = recorder()
      const c = new NotifyCoalescer(r.send, 5)
      for (const seq of [3, 9, 4, 7]) c.records('th_a', seq)
      c.records('th_b', 2)
      expect(r.sent).toEqual([])
      await vi.advanceTimersByTimeAsync(5)
      expect(r.sent).toEqual([{ channel: RECORDS_CHANNEL, payloads: ['th_a\t9', 'th_b\t2'] }])
      // The next store after the flush is a notification of its own, in the next window.
      c.records('th_a', 10)
      await vi.advanceTimersByTimeAsync(4)
      expect(r.sent).toHaveLength(1)
      await vi.advanceTimersByTimeAsync(1)
      expect(r.sent[1]).toEqual({ channel: RECORDS_CHANNEL, payloads: ['th_a\t10'] })
      expect(c.sent).toEqual({ records: 3, state: 0 })
    } finally {
      vi.useRealTimers()
    }
  })

  it('1,000 stores in 1,000 threads in one window: 1,000 payloads in one send; components named once', async () => {
    const r = recorder()
    const c = new NotifyCoalescer(r.send, 1000)
    for (let i = 0; i < 1000; i++) c.records(`th_${i}`, i + 1)
    c.state('federation')
    c.state('federation')
    c.state('relay')
    await c.flush()
    expect(r.sent.map((s) => [s.channel, s.payloads.length])).toEqual([
      [RECORDS_CHANNEL, 1000],
      [STATE_CHANNEL, 2],
    ])
    expect(r.sent[1]!.payloads).toEqual(['federation', 'relay'])
  })

  it('a payload PostgreSQL would refuse (≥ 8000 bytes) is not sent; a failed send is reported, the next one goes out', async () => {
    const r = recorder()
    const errors: unknown[] = []
    let fail = true
    const c = new NotifyCoalescer(
      async (channel, payloads) => {
        if (fail) {
          fail = false
          throw new Error('gone')
        }
        await r.send(channel, payloads)
      },
      1000,
      (err) => errors.push(err),
    )
    c.records(`th_${'x'.repeat(MAX_PAYLOAD_BYTES)}`, 1)
    c.records('th_ok', 1)
    await c.flush()
    expect(errors).toHaveLength(1)
    c.records('th_ok', 2)
    await c.flush()
    expect(r.sent).toEqual([{ channel: RECORDS_CHANNEL, payloads: ['th_ok\t2'] }])
  })
})

describe.skipIf(PG_SKIP !== null)(`ReplicaBus on PostgreSQL${PG_SKIP ? ` (skipped: ${PG_SKIP})` : ''}`, () => {
  let cluster: PgCluster
  let url: string
  let pool: pg.Pool
  beforeAll(async () => {
    cluster = await startPgCluster()
    url = await cluster.createDatabase()
    pool = new pg.Pool({ connectionString: url, max: 1 })
    pool.on('error', () => {})
  })
  afterAll(async () => {
    await pool?.end().catch(() => {})
    cluster?.remove()
  })

  const logger = createLogger({ level: 'silent' })
  function bus(notifier: ThreadNotifier, reloaded: string[] = []) {
    return new ReplicaBus({
      url,
      pool,
      notifier,
      reloaders: {
        consent: async () => void reloaded.push('consent'),
        federation: async () => void reloaded.push('federation'),
      },
      componentOf: (t) => (t === 'th_consent' ? 'consent' : null),
      logger,
      backoff: { minMs: 50, maxMs: 200 },
    })
  }

  /** Two replicas' buses on the database, listening; what the second reloaded goes into `r2`. */
  async function twoReplicas() {
    const n1 = new ThreadNotifier()
    const n2 = new ThreadNotifier()
    const r2: string[] = []
    const b1 = bus(n1)
    const b2 = bus(n2, r2)
    await b1.start()
    await b2.start()
    return { n1, n2, r2, b1, b2 }
  }

  it('a store told on one replica wakes a long poll on the other (its seq as the head hint); its own notification is ignored', async () => {
    const { n1, n2, r2, b1, b2 } = await twoReplicas()
    try {
      const v1 = n1.version('th_x')
      const t0 = Date.now()
      const woken = n2.wait('th_x', 20_000)
      b1.recordsStored('th_x', 42)
      await woken
      const ms = Date.now() - t0
      expect(ms).toBeLessThan(1000)
      expect(n2.headOf('th_x', Date.now(), 60_000)).toBe(42)
      await until('b1 saw its own notification come back', async () => (b1.counters.own >= 1 ? true : undefined), 5000, 10)
      expect(n1.version('th_x')).toBe(v1)
      expect(b1.counters.receivedRecords).toBe(0)
      expect(b2.counters.receivedRecords).toBe(1)
      // A registry record reloads the registry first; a state change names its component.
      b1.recordsStored('th_consent', 43)
      b1.stateChanged('federation')
      await until('b2 reloaded both', async () => (r2.includes('consent') && r2.includes('federation') ? true : undefined), 5000, 10)
    } finally {
      await b1.close()
      await b2.close()
    }
  })

  it('PostgreSQL restarted: the listener comes back by itself, forgets head hints, wakes every waiter once and reloads everything', async () => {
    const { n2, r2, b1, b2 } = await twoReplicas()
    try {
      n2.hintHead('th_gap', 5)
      cluster.stop()
      await until('b2 noticed', async () => (b2.connected ? undefined : true), 10_000, 20)
      const waiting = n2.wait('th_gap', 30_000)
      cluster.start()
      await waiting
      expect(b2.counters.reconnects).toBe(1)
      // A head told before the gap is not trusted after it: stores in the gap were not heard.
      expect(n2.headOf('th_gap', Date.now(), 60_000)).toBeUndefined()
      expect(r2.sort()).toEqual(['consent', 'federation'])
      await until('b1 listens again', async () => (b1.connected ? true : undefined), 10_000, 20)
      const woken = n2.wait('th_after', 20_000)
      const t0 = Date.now()
      b1.recordsStored('th_after', 7)
      await woken
      expect(Date.now() - t0).toBeLessThan(1000)
    } finally {
      await b1.close()
      await b2.close()
    }
  })

  it('closed: nothing is listening or reconnecting any more', async () => {
    const b = bus(new ThreadNotifier())
    await b.start()
    expect(b.connected).toBe(true)
    await b.close()
    expect(b.connected).toBe(false)
    await sleep(300)
    expect(b.connected).toBe(false)
  })
})
