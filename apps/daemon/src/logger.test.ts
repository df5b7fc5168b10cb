import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { createLogger, SafeFileDestination } from './logger.js'

// The log of a detached daemon must never take it down (issue 18: it died ~3 s after its disk
// filled). /dev/full answers every write with ENOSPC, as a full disk does.

describe.skipIf(!existsSync('/dev/full'))('the daemon log on a full disk', () => {
  it('drops and counts what it cannot write, and never throws', () => {
    const dest = new SafeFileDestination('/dev/full')
    expect(() => {
      for (let i = 0; i < 100; i++) dest.write(`{"msg":"line ${i}"}\n`)
    }).not.toThrow()
    expect(dest.lost).toBe(100)
    dest.close()
  })

  it('a pino logger on it logs on, with no error event to crash the process', async () => {
    const logger = createLogger({ logFile: '/dev/full', level: 'info' })
    expect(() => {
      for (let i = 0; i < 50; i++) logger.warn({ code: 'DISK_FULL' }, 'the disk is full')
    }).not.toThrow()
    // An error event, had one been emitted, would surface here as an unhandled error of the run.
    await new Promise((resolve) => setTimeout(resolve, 50))
  })
})

describe('the daemon log on a disk with room', () => {
  it('writes JSON lines', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'spl-log-'))
    try {
      const file = path.join(dir, 'logs', 'daemon.log')
      const logger = createLogger({ logFile: file })
      logger.info({ n: 1 }, 'hello')
      const lines = readFileSync(file, 'utf8').trim().split('\n')
      expect(JSON.parse(lines[0]!)).toMatchObject({ msg: 'hello', n: 1 })
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
