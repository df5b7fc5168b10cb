import { DiskFullError } from '@spl/identity'
import { describe, expect, it } from 'vitest'
import { advance, envelope, input, PAIR_ID, setup, storedIds, useEngineHarness } from '../../test/engine-harness.js'
import { MemorySyncStore } from '../stores/memory-store.js'

useEngineHarness()

/** A store whose writes fail with DISK_FULL while `full` is set (the pair row's included). */
class FullStore extends MemorySyncStore {
  full = false
  override async commit(...args: Parameters<MemorySyncStore['commit']>) {
    if (this.full) throw new DiskFullError(Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' }))
    return super.commit(...args)
  }
  override async savePair(...args: Parameters<MemorySyncStore['savePair']>) {
    if (this.full) throw new DiskFullError()
    return super.savePair(...args)
  }
}

function memoryLogger() {
  const lines: { level: string; obj: unknown; msg: string }[] = []
  const log = (level: string) => (obj: unknown, msg: string) => lines.push({ level, obj, msg })
  const logger = { info: log('info'), warn: log('warn'), error: log('error'), debug: log('debug'), child: () => logger }
  return { logger, lines }
}

describe('SyncEngine: a full disk', () => {
  it('the pair is failing DISK_FULL even when that cannot be saved, retries every ≤ 2 s, logs it once, and resumes', async () => {
    const store = new FullStore()
    const { logger, lines } = memoryLogger()
    const { engine, peer } = setup({ store, components: { logger: logger as never } })
    await engine.start()
    await engine.addPair(input)
    await advance()
    store.full = true
    const recs = [envelope(0), envelope(1)]
    peer.emit(...recs)
    await advance()
    const p = engine.getPair(PAIR_ID)
    expect(p).toMatchObject({ state: 'failing', last_error: { code: 'DISK_FULL' } })
    expect(p.last_error?.message).toContain('free space')
    for (let i = 0; i < 10; i++) {
      const now = engine.getPair(PAIR_ID)
      expect(now.backoff_ms).toBeLessThanOrEqual(2000)
      await advance(2000)
    }
    expect(engine.getPair(PAIR_ID).attempt).toBeGreaterThanOrEqual(10)
    const said = () => lines.filter((l) => JSON.stringify(l).includes('DISK_FULL'))
    expect(said()).toHaveLength(1)
    // A kick is the operator asking: the same failure is said again, once.
    await engine.kickPair(PAIR_ID)
    await advance()
    expect(said()).toHaveLength(2)
    await advance(4000)
    expect(said()).toHaveLength(2)
    // Space returns: the next retry (≤ 2 s) stores both records.
    store.full = false
    await advance(2000)
    expect(await storedIds(store)).toEqual(recs.map((r) => r.id))
    expect(engine.getPair(PAIR_ID)).toMatchObject({ state: 'running', last_error: null, attempt: 0 })
    expect(lines.some((l) => l.msg === 'pulls work again')).toBe(true)
  })
})
