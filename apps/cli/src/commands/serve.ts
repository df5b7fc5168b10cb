import { spawn } from 'node:child_process'
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, statSync, watchFile } from 'node:fs'
import { DAEMON_NODE_FLAGS, daemonEnv, homePaths, isAlive, NotInitializedError, readDaemonInfo, tuneDaemonProcess } from '@spl/daemon/home'
import { SplError } from '@spl/transport/identity'
import { Command, Option } from 'clipanion'
import * as t from 'typanion'
import { BaseCommand } from '../base.js'
import { colourWanted } from '../colour.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export class ServeCommand extends BaseCommand {
  static override paths = [['serve']]
  static override usage = Command.Usage({
    description: 'Run the daemon (foreground, or detached with --daemon)',
    details: `
      In the foreground the daemon logs readable lines to the terminal and stops on Ctrl-C.
      With \`--daemon\` it detaches, logs JSON lines to \`logs/daemon.log\`, writes \`run/daemon.json\`,
      and this command returns once \`/health\` answers. One daemon per home: a second is refused.
      Bind \`--host 0.0.0.0\` to be reachable from other machines (default 127.0.0.1: loopback only).
    `,
    examples: [
      ['Run in the foreground', 'spl serve'],
      ['Detach on port 9200, reachable from the network', 'spl serve --daemon --port 9200 --host 0.0.0.0'],
      ['Also be a relay (mailboxes for peers that are away)', 'spl serve --daemon --port 9300 --host 0.0.0.0 --relay'],
      [
        'On PostgreSQL (one replica of several, docs/postgres.md)',
        'spl serve --daemon --database postgres://spl:secret@db.internal:5432/spl',
      ],
      ['Is it running?', 'spl serve --status'],
      ['Follow its log', 'spl serve --logs --follow'],
      ['Stop it', 'spl serve --stop'],
    ],
  })

  daemon = Option.Boolean('--daemon', false, { description: 'Detach and run in the background' })
  port = Option.String('--port', {
    validator: t.cascade(t.isNumber(), [t.isInteger(), t.isInInclusiveRange(0, 65535)]),
    description: 'Port (default from config, 9100)',
  })
  host = Option.String('--host', { description: 'Address to bind (default 127.0.0.1)' })
  relay = Option.Boolean('--relay', false, { description: 'Also serve mailboxes for peers that are away (SPEC 10; [relay] enabled)' })
  database = Option.String('--database', {
    description: "A postgres:// URL: run on PostgreSQL instead of the home's spl.db ([storage] url)",
  })
  stop = Option.Boolean('--stop', false, { description: 'Stop the running daemon' })
  status = Option.Boolean('--status', false, { description: 'Say whether a daemon runs (exit 1 when not)' })
  logs = Option.Boolean('--logs', false, { description: 'Print the daemon log' })
  follow = Option.Boolean('--follow,-f', false, { description: 'With --logs: keep printing new lines' })

  protected async run() {
    const paths = homePaths(this.env.home)
    if (this.stop) return this.doStop()
    if (this.status) return this.doStatus()
    if (this.logs) return this.doLogs(paths.log)
    // Before anything opens logs/daemon.log or the keys: a home that `spl init` never made.
    if (!existsSync(paths.config)) throw new NotInitializedError(this.env.home)
    if (this.daemon && !this.env.daemonized) return this.detach()
    return this.foreground()
  }

  private async foreground(): Promise<number> {
    tuneDaemonProcess()
    // The server, database and engine load only here, so other commands start fast.
    const { createLogger, SplDaemon } = await import('@spl/daemon')
    const paths = homePaths(this.env.home)
    const logger = this.env.daemonized
      ? createLogger({ logFile: paths.log, level: this.env.logLevel })
      : createLogger({ pretty: Boolean(process.stdout.isTTY), colorize: colourWanted(), level: this.env.logLevel })
    const daemon = await SplDaemon.create({
      home: this.env.home,
      host: this.host,
      port: this.port,
      relay: this.relay || undefined,
      database: this.database,
      logger,
    })
    await daemon.start()
    if (!this.env.daemonized) this.err(`spl daemon ${daemon.did} listening on ${daemon.url} (Ctrl-C to stop)`)
    await new Promise<void>((resolve) => {
      const onSignal = (signal: string) => {
        logger.info({ signal }, 'stopping')
        resolve()
      }
      process.once('SIGTERM', onSignal)
      process.once('SIGINT', onSignal)
    })
    await daemon.destroy()
    return 0
  }

  private async detach(): Promise<number> {
    const paths = homePaths(this.env.home)
    const running = readDaemonInfo(paths.runDir)
    if (running) {
      throw new SplError('DAEMON_RUNNING', `a daemon is already running on ${this.env.home} (pid ${running.pid}) at ${running.url}.`, {
        fix: 'spl serve --stop (or use another SYNCROPEL_HOME)',
      })
    }
    const args = [...DAEMON_NODE_FLAGS, process.argv[1]!, 'serve']
    if (this.port !== undefined) args.push('--port', String(this.port))
    if (this.host) args.push('--host', this.host)
    if (this.relay) args.push('--relay')
    if (this.database !== undefined) args.push('--database', this.database)
    const logStart = existsSync(paths.log) ? statSync(paths.log).size : 0
    // A home copied without its logs (a replica made from another's home) gets them back.
    mkdirSync(paths.logsDir, { recursive: true, mode: 0o700 })
    const fd = openSync(paths.log, 'a')
    const child = spawn(process.execPath, args, {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: { ...daemonEnv(process.env), SPL_DAEMONIZED: '1' },
    })
    closeSync(fd)
    let exited: number | null = null
    child.once('exit', (code) => {
      exited = code ?? 1
    })
    child.unref()
    const deadline = Date.now() + 30_000
    while (Date.now() < deadline) {
      if (exited !== null) break
      const info = readDaemonInfo(paths.runDir)
      if (info && info.pid === child.pid) {
        try {
          const res = await fetch(`${info.url}/health`, { signal: AbortSignal.timeout(1000) })
          if (res.ok) {
            return this.render({ object: 'daemon', running: true, ...info }, `spl daemon started (pid ${info.pid}) at ${info.url}`)
          }
        } catch {
          // not answering yet
        }
      }
      await sleep(100)
    }
    const log = existsSync(paths.log) ? readFileSync(paths.log, 'utf8').slice(logStart) : ''
    this.err(log.split('\n').slice(-20).join('\n'))
    if (exited === null && child.pid) process.kill(child.pid, 'SIGTERM')
    throw new SplError(
      'DAEMON_START_FAILED',
      `the daemon did not answer /health${exited !== null ? ` (it exited with ${exited})` : ' within 30 s'}; log above.`,
      {
        fix: `read ${paths.log}`,
      },
    )
  }

  private async doStop(): Promise<number> {
    const info = readDaemonInfo(homePaths(this.env.home).runDir)
    if (!info) {
      this.out('No daemon is running on this home.')
      return 0
    }
    process.kill(info.pid, 'SIGTERM')
    const deadline = Date.now() + 20_000
    while (isAlive(info.pid) && Date.now() < deadline) await sleep(50)
    if (isAlive(info.pid)) {
      process.kill(info.pid, 'SIGKILL')
      this.err(`the daemon (pid ${info.pid}) did not stop in 20 s and was killed`)
      return 1
    }
    this.out(`spl daemon stopped (pid ${info.pid})`)
    return 0
  }

  private async doStatus(): Promise<number> {
    const info = readDaemonInfo(homePaths(this.env.home).runDir)
    return this.render(
      { object: 'daemon', running: Boolean(info), ...(info ?? {}) },
      info
        ? `running (pid ${info.pid}) at ${info.url}, bound to ${info.host}, up ${Math.round((Date.now() - info.started_at) / 1000)} s`
        : 'not running',
      info ? 0 : 1,
    )
  }

  private async doLogs(file: string): Promise<number> {
    // Read the size first and print up to it, then follow from exactly there: no line is lost.
    let pos = existsSync(file) ? statSync(file).size : 0
    if (pos === 0) this.out('(no log yet)')
    else {
      const text = readFileSync(file).subarray(0, pos).toString('utf8')
      this.context.stdout.write(`${text.split('\n').slice(-101).join('\n')}`)
    }
    if (!this.follow) return 0
    const print = () => {
      if (!existsSync(file)) return
      const size = statSync(file).size
      if (size < pos) pos = 0 // truncated or replaced
      if (size === pos) return
      const fd = openSync(file, 'r')
      const buf = Buffer.alloc(size - pos)
      readSync(fd, buf, 0, buf.length, pos)
      closeSync(fd)
      pos = size
      this.context.stdout.write(buf.toString('utf8'))
    }
    // Polling works whether or not the file exists yet (like tail -F).
    watchFile(file, { interval: 200 }, print)
    await new Promise(() => {})
    return 0
  }
}
