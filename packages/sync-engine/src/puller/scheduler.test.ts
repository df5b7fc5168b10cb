import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { Scheduler } from './scheduler.js'

const clock = { now: () => Date.now() }

describe('Scheduler', () => {
  let ran: string[]
  let scheduler: Scheduler

  beforeEach(() => {
    vi.useFakeTimers()
    ran = []
    scheduler = new Scheduler((id) => ran.push(id), clock)
  })
  afterEach(() => {
    scheduler.clear()
    vi.useRealTimers()
  })

  it('runs many schedules in due order with one timer', async () => {
    const t0 = Date.now()
    scheduler.schedule('c', t0 + 300)
    scheduler.schedule('a', t0 + 100)
    scheduler.schedule('d', t0 + 400)
    scheduler.schedule('b', t0 + 200)
    expect(vi.getTimerCount()).toBe(1)
    await vi.advanceTimersByTimeAsync(99)
    expect(ran).toEqual([])
    await vi.advanceTimersByTimeAsync(1)
    expect(ran).toEqual(['a'])
    await vi.advanceTimersByTimeAsync(300)
    expect(ran).toEqual(['a', 'b', 'c', 'd'])
    expect(vi.getTimerCount()).toBe(0)
  })

  it('keeps one timer for a thousand pairs, and runs those due together in one firing', async () => {
    const t0 = Date.now()
    for (let i = 0; i < 1000; i++) scheduler.schedule(`p${i}`, t0 + 1000 + (i % 10))
    expect(vi.getTimerCount()).toBe(1)
    await vi.advanceTimersByTimeAsync(1000)
    expect(ran).toHaveLength(100) // those due exactly at +1000
    await vi.advanceTimersByTimeAsync(9)
    expect(ran).toHaveLength(1000)
    expect(new Set(ran).size).toBe(1000)
  })

  it('moves a schedule earlier', async () => {
    const t0 = Date.now()
    scheduler.schedule('x', t0 + 10_000)
    scheduler.schedule('x', t0 + 10)
    await vi.advanceTimersByTimeAsync(10)
    expect(ran).toEqual(['x'])
    await vi.advanceTimersByTimeAsync(20_000)
    expect(ran).toEqual(['x']) // the old due time was replaced, not added
  })

  it('moves a schedule later', async () => {
    const t0 = Date.now()
    scheduler.schedule('x', t0 + 10)
    scheduler.schedule('x', t0 + 500)
    await vi.advanceTimersByTimeAsync(100)
    expect(ran).toEqual([])
    await vi.advanceTimersByTimeAsync(400)
    expect(ran).toEqual(['x'])
  })

  it('runs a schedule in the past at once', async () => {
    scheduler.schedule('late', Date.now() - 5000)
    await vi.advanceTimersByTimeAsync(0)
    expect(ran).toEqual(['late'])
  })

  it('cancels one id and leaves the others', async () => {
    const t0 = Date.now()
    scheduler.schedule('a', t0 + 50)
    scheduler.schedule('b', t0 + 60)
    scheduler.cancel('a')
    await vi.advanceTimersByTimeAsync(1000)
    expect(ran).toEqual(['b'])
  })

  it('clear drops every schedule and the timer', async () => {
    const t0 = Date.now()
    scheduler.schedule('a', t0 + 50)
    scheduler.schedule('b', t0 + 60)
    scheduler.clear()
    expect(vi.getTimerCount()).toBe(0)
    await vi.advanceTimersByTimeAsync(1000)
    expect(ran).toEqual([])
    scheduler.schedule('c', Date.now() + 5)
    await vi.advanceTimersByTimeAsync(5)
    expect(ran).toEqual(['c'])
  })

  it('lets a run reschedule itself (the loop of a pair)', async () => {
    const runs: number[] = []
    const loop = new Scheduler((id) => {
      runs.push(Date.now())
      if (runs.length < 3) loop.schedule(id, Date.now() + 100)
    }, clock)
    const t0 = Date.now()
    loop.schedule('p', t0 + 100)
    await vi.advanceTimersByTimeAsync(1000)
    expect(runs).toEqual([t0 + 100, t0 + 200, t0 + 300])
    loop.clear()
  })
})
