import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import pino, { type DestinationStream, type Logger } from 'pino'

export type { Logger }

/**
 * A log file that never takes the process down: a line that cannot be written (ENOSPC on a full
 * disk, EIO…) is dropped and counted, and once writing works again one line says how many were
 * lost and why. pino.destination would emit an `error` event that nothing can handle well: with
 * no listener the daemon dies a few seconds after its disk fills.
 */
export class SafeFileDestination implements DestinationStream {
  #fd: number | null
  #lost = 0
  #firstError: { code: string; at: number } | null = null
  #cut = false

  constructor(readonly file: string) {
    mkdirSync(path.dirname(file), { recursive: true })
    this.#fd = openSync(file, 'a')
  }

  /** Lines dropped since writing last worked. */
  get lost(): number {
    return this.#lost
  }

  write(line: string): void {
    if (this.#fd === null) return
    try {
      if (this.#firstError !== null) {
        const { code, at } = this.#firstError
        const note = {
          level: 40,
          time: Date.now(),
          pid: process.pid,
          msg: `the log could not be written from ${new Date(at).toISOString()} (${code}): ${this.#lost} line(s) lost`,
        }
        // A line cut off by the full disk is ended first, so that every line stays JSON of its own.
        this.#writeAll(`${this.#cut ? '\n' : ''}${JSON.stringify(note)}\n`)
        this.#firstError = null
        this.#lost = 0
        this.#cut = false
      }
      this.#writeAll(line)
    } catch (err) {
      this.#lost++
      this.#firstError ??= { code: (err as NodeJS.ErrnoException).code ?? 'EIO', at: Date.now() }
    }
  }

  /** Writes all of `text`, or throws; a throw after part of it was written marks the line as cut. */
  #writeAll(text: string): void {
    const bytes = Buffer.from(text, 'utf8')
    let done = 0
    try {
      while (done < bytes.length) done += writeSync(this.#fd!, bytes, done)
    } catch (err) {
      if (done > 0) this.#cut = true
      throw err
    }
  }

  close(): void {
    if (this.#fd !== null) closeSync(this.#fd)
    this.#fd = null
  }
}

/** stdout and stderr of a detached daemon are the log file too: a failed write there must not kill it either. */
function ignoreStdioErrors(): void {
  for (const stream of [process.stdout, process.stderr]) {
    if (stream.listenerCount('error') === 0) stream.on('error', () => {})
  }
}

/**
 * Structured JSON lines to `logFile` when detached (--daemon); readable lines on a terminal in
 * the foreground; silent in tests.
 */
export function createLogger(options: {
  logFile?: string | undefined
  pretty?: boolean
  /** With `pretty`: colour codes (default true; the CLI passes its NO_COLOR/FORCE_COLOR verdict). */
  colorize?: boolean
  level?: string | undefined
  silent?: boolean
}): Logger {
  const level = options.silent ? 'silent' : (options.level ?? 'info')
  if (options.logFile) {
    ignoreStdioErrors()
    return pino({ level, base: { pid: process.pid } }, new SafeFileDestination(options.logFile))
  }
  if (options.pretty) {
    // Loaded only for a terminal: a detached daemon never pays for it.
    const pretty = createRequire(import.meta.url)('pino-pretty') as typeof import('pino-pretty')
    return pino({ level }, pretty({ colorize: options.colorize ?? true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' }))
  }
  return pino({ level }, process.stdout)
}
