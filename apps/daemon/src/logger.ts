import { mkdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import pino, { type Logger } from 'pino'

export type { Logger }

/**
 * Structured JSON lines to `logFile` when detached (--daemon); readable lines on a terminal in
 * the foreground; silent in tests.
 */
export function createLogger(options: {
  logFile?: string | undefined
  pretty?: boolean
  level?: string | undefined
  silent?: boolean
}): Logger {
  const level = options.silent ? 'silent' : (options.level ?? 'info')
  if (options.logFile) {
    mkdirSync(path.dirname(options.logFile), { recursive: true })
    return pino({ level, base: { pid: process.pid } }, pino.destination({ dest: options.logFile, append: true, sync: true }))
  }
  if (options.pretty) {
    // Loaded only for a terminal: a detached daemon never pays for it.
    const pretty = createRequire(import.meta.url)('pino-pretty') as typeof import('pino-pretty')
    return pino({ level }, pretty({ colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' }))
  }
  return pino({ level }, process.stdout)
}
