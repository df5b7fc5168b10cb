import { describe, expect, it } from 'vitest'
import { DAEMON_NODE_FLAGS, daemonEnv } from './runtime.js'

describe('daemon process settings', () => {
  it('adds the malloc settings and keeps what the operator set', () => {
    const env = daemonEnv({ PATH: '/bin', MALLOC_ARENA_MAX: '8' })
    expect(env).toMatchObject({ PATH: '/bin', MALLOC_ARENA_MAX: '8', MALLOC_MMAP_THRESHOLD_: '32768', MALLOC_TRIM_THRESHOLD_: '32768' })
    expect(daemonEnv({})['MALLOC_ARENA_MAX']).toBe('2')
  })

  it('starts the daemon with a 2 MB semi-space', () => {
    expect(DAEMON_NODE_FLAGS).toEqual(['--max-semi-space-size=2'])
  })
})
