import { existsSync } from 'node:fs'
import { homePaths, loadConfig, readAdminToken, readDaemonInfo, readEnv, type SplEnv } from '@spl/daemon/home'
import { SplClient } from '@spl/transport/client'
import { InternalError, SplError } from '@spl/transport/identity'
import { Command, Option } from 'clipanion'

/** Exit codes scripts can trust. */
export const EXIT = { OK: 0, ERROR: 1, USAGE: 2 } as const

/**
 * What a command prints for humans: one line, several lines, or a function that writes them
 * itself (to stdout or stderr) and may return the exit code of the text mode.
 */
export type Human = string | readonly string[] | (() => number | undefined | Promise<number | undefined>)

/** A house error from another copy of @spl/identity: an Error with a CODE and the envelope's toJSON. */
function isForeignSplError(err: unknown): err is Error & { code: string; fix?: string } {
  if (!(err instanceof Error)) return false
  const e = err as Error & { code?: unknown; toJSON?: unknown }
  return typeof e.code === 'string' && /^[A-Z][A-Z0-9_]*$/.test(e.code) && typeof e.toJSON === 'function'
}

/** A usage mistake clipanion (or a command) reports: `UsageError`, exit 2. */
function isUsageError(err: unknown): err is Error {
  return err instanceof Error && err.name === 'UsageError'
}

/** The error line of anything thrown: house errors keep their code and fix. */
function toSplError(err: unknown): SplError {
  // `spl serve` runs the daemon package as a separate import (the CLI is bundled, the daemon is
  // not), so a house error thrown there is another copy's SplError: recognise it by its shape.
  if (!(err instanceof SplError) && isForeignSplError(err)) {
    return new SplError(err.code, err.message, { ...(err.fix ? { fix: err.fix } : {}), cause: err })
  }
  // The CLI's only SyntaxError is a malformed daemon stream, not a bad request body, and the
  // user is the operator: it stays INTERNAL with its own message, like any other surprise.
  const own = { message: err instanceof Error ? err.message : String(err) }
  return err instanceof SyntaxError ? new InternalError(err, own) : SplError.from(err, own)
}

/** The base of every command: `--json`, the daemon URL and token, one-line errors. */
export abstract class BaseCommand extends Command {
  json = Option.Boolean('--json', false, { description: 'Print machine-readable JSON' })

  #env: SplEnv | undefined
  protected get env(): SplEnv {
    this.#env ??= readEnv()
    return this.#env
  }

  /** Where the daemon of this home listens: SPL_DAEMON_URL, run/daemon.json, then config. */
  protected daemonUrl(): string {
    if (this.env.daemonUrl) return this.env.daemonUrl.replace(/\/+$/, '')
    const info = readDaemonInfo(homePaths(this.env.home).runDir)
    if (info) return info.url
    if (existsSync(homePaths(this.env.home).config)) {
      const { host, port } = loadConfig(this.env.home).server
      const h = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host
      return `http://${h}:${port}`
    }
    return 'http://127.0.0.1:9100'
  }

  /** An admin client for this home's daemon (each request gives up after `timeoutMs`, default 30 s). */
  protected client(timeoutMs?: number): SplClient {
    return new SplClient(this.daemonUrl(), readAdminToken(this.env.home), timeoutMs)
  }

  /** True when progress may be drawn: a terminal on stderr and no `--json`. */
  protected get interactive(): boolean {
    return Boolean(process.stderr.isTTY) && !this.json
  }

  protected out(text: string): void {
    this.context.stdout.write(`${text}\n`)
  }

  protected err(text: string): void {
    this.context.stderr.write(`${text}\n`)
  }

  /**
   * Prints `value` as JSON with `--json`, else the human text; returns the exit code: `code`,
   * or in text mode what the human function returns, if anything.
   */
  protected async render(value: unknown, human: Human, code: number = EXIT.OK): Promise<number> {
    if (this.json) {
      this.out(JSON.stringify(value, null, 2))
      return code
    }
    if (typeof human === 'function') return (await human()) ?? code
    this.lines(human)
    return code
  }

  /** Prints each line on stdout (none for an empty list). */
  protected lines(text: string | readonly string[]): undefined {
    for (const line of typeof text === 'string' ? [text] : text) this.out(line)
    return undefined
  }

  /** The command body; thrown errors are printed on one line with the code and the fix. */
  protected abstract run(): Promise<number | undefined>

  async execute(): Promise<number> {
    try {
      return (await this.run()) ?? EXIT.OK
    } catch (err) {
      if (isUsageError(err)) {
        const path = (this.constructor as typeof BaseCommand).paths?.[0]?.join(' ')
        const msg = err.message.replace(/^usage:\s*/i, 'the form is: ').replace(/\.$/, '')
        this.err(`Error: USAGE: ${msg}.${path ? ` Fix: spl ${path} --help` : ''}`)
        return EXIT.USAGE
      }
      this.printError(err)
      return EXIT.ERROR
    }
  }

  /** One line on stderr: the envelope with `--json` for house errors, else `Error: CODE: message Fix: …`. */
  protected printError(err: unknown): void {
    const e = toSplError(err)
    // Only errors that were already house errors have an envelope worth a script's parsing.
    if (this.json && (err instanceof SplError || isForeignSplError(err))) {
      this.err(JSON.stringify(e.toJSON()))
      return
    }
    const msg = e.message.startsWith(`${e.code}:`) ? e.message : `${e.code}: ${e.message}`
    this.err(`Error: ${msg}${e.fix ? ` Fix: ${e.fix}` : ''}`)
  }
}
