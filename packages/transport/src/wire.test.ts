import { describe, expect, it } from 'vitest'
import { changesQuerySchema, searchParamsObject, toSearchParams } from './wire.js'

describe('changesQuerySchema', () => {
  it('what the puller builds is what the source parses', () => {
    const params = toSearchParams({ thread: 'th_a', since: 'c1.0011223344556677.5', limit: '50', feed: 'longpoll', timeout: '1000' })
    expect(params.toString()).toBe('thread=th_a&since=c1.0011223344556677.5&limit=50&feed=longpoll&timeout=1000')
    expect(changesQuerySchema.parse(searchParamsObject(params))).toEqual({
      thread: 'th_a',
      since: 'c1.0011223344556677.5',
      limit: 50,
      feed: 'longpoll',
      timeout: 1000,
      target_namespace: undefined,
      include_own: false,
      max_bytes: 8 * 1024 * 1024,
    })
  })

  it('max_bytes: what the puller reads; 8 MiB when left out (older pullers) and at most that', () => {
    expect(changesQuerySchema.parse({ thread: 'th_a', max_bytes: '65536' }).max_bytes).toBe(65536)
    expect(changesQuerySchema.parse({ thread: 'th_a', max_bytes: '999999999' }).max_bytes).toBe(8 * 1024 * 1024)
    expect(changesQuerySchema.safeParse({ thread: 'th_a', max_bytes: '1023' }).success).toBe(false)
    expect(changesQuerySchema.safeParse({ thread: 'th_a', max_bytes: '1e6' }).success).toBe(false)
  })

  it('fills the defaults and refuses what does not fit', () => {
    expect(changesQuerySchema.parse({ thread: 'th_a' })).toMatchObject({ limit: 1000, feed: 'normal', timeout: 25_000 })
    expect(changesQuerySchema.safeParse({}).success).toBe(false)
    expect(changesQuerySchema.safeParse({ thread: 'th_a', limit: '0' }).success).toBe(false)
    expect(changesQuerySchema.safeParse({ thread: 'th_a', feed: 'push' }).success).toBe(false)
    expect(changesQuerySchema.safeParse({ thread: 'th_a', include_own: 'yes' }).success).toBe(false)
  })

  it('reads the first value of a repeated parameter', () => {
    expect(searchParamsObject(new URLSearchParams('thread=th_a&thread=th_b'))).toEqual({ thread: 'th_a' })
  })
})
