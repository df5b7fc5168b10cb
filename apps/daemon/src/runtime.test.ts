import { describe, expect, it } from 'vitest'
import { DAEMON_NODE_FLAGS, daemonEnv, threadPoolSize } from './runtime.js'

describe('daemon process settings', () => {
  it('adds the malloc settings and keeps what the operator set', () => {
    const env = daemonEnv({ PATH: '/bin', MALLOC_ARENA_MAX: '8' })
    expect(env).toMatchObject({ PATH: '/bin', MALLOC_ARENA_MAX: '8', MALLOC_MMAP_THRESHOLD_: '32768', MALLOC_TRIM_THRESHOLD_: '32768' })
    expect(daemonEnv({})['MALLOC_ARENA_MAX']).toBe('2')
    expect(daemonEnv({ UV_THREADPOOL_SIZE: '3' })['UV_THREADPOOL_SIZE']).toBe('3')
    expect(daemonEnv({})['UV_THREADPOOL_SIZE']).toBe(String(threadPoolSize()))
  })

  it('sizes the verification threads by the cores, at least 2', () => {
    expect([1, 2, 8, 200].map((n) => threadPoolSize(n))).toEqual([2, 2, 8, 64])
  })

  it('starts the daemon with a 2 MB semi-space', () => {
    expect(DAEMON_NODE_FLAGS).toEqual(['--max-semi-space-size=2'])
  })
})
