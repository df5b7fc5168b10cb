import { existsSync } from 'node:fs'
import { homePaths, loadConfig, readAdminToken, readDaemonInfo, readEnv, type SplEnv } from '@spl/daemon/home'
import { SplError } from '@spl/identity/errors'
import { SplClient } from '@spl/transport/client'
import { Command, Option } from 'clipanion'

/** Exit codes scripts can trust. */
export const EXIT = { OK: 0, ERROR: 1, USAGE: 2 } as const

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

  /** An admin client for this home's daemon. */
  protected client(): SplClient {
    return new SplClient(this.daemonUrl(), readAdminToken(this.env.home))
  }

  protected out(text: string): void {
    this.context.stdout.write(`${text}\n`)
  }

  protected err(text: string): void {
    this.context.stderr.write(`${text}\n`)
  }

  protected printJson(value: unknown): void {
    this.out(JSON.stringify(value, null, 2))
  }

  /** The command body; thrown errors are printed on one line with the code and the fix. */
  protected abstract run(): Promise<number | undefined>

  async execute(): Promise<number> {
    try {
      return (await this.run()) ?? EXIT.OK
    } catch (err) {
      this.printError(err)
      return EXIT.ERROR
    }
  }

  protected printError(err: unknown): void {
    if (err instanceof SplError) {
      if (this.json) {
        this.context.stderr.write(`${JSON.stringify(err.toJSON())}\n`)
        return
      }
      const msg = err.message.startsWith(`${err.code}:`) ? err.message : `${err.code}: ${err.message}`
      this.err(`Error: ${msg}${err.fix ? ` Fix: ${err.fix}` : ''}`)
      return
    }
    this.err(`Error: INTERNAL: ${err instanceof Error ? err.message : String(err)}`)
  }
}
