// The one harness that starts real `spl` daemons for the end-to-end tests (apps/cli/test) and the
// benchmarks (bench/). Plain ESM JavaScript (types in test-daemon.d.ts) so that bench/, which is
// plain JS run by node, imports the same file as the vitest suites. It needs `pnpm build` first.
import { execFile, spawn } from 'node:child_process'
import { appendFileSync, closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { SplClient } from '../packages/transport/dist/admin-client.js'

// No mDNS from tests on this machine's network: every process a test starts inherits SPL_MDNS=off,
// also when the file runs without a vitest config that sets it (`pnpm vitest run <path>` from the
// root) or from bench/. Tests that want mDNS pass SPL_MDNS=on to daemons inside network namespaces.
process.env['SPL_MDNS'] ??= 'off'

/** The built CLI. */
export const SPL_BIN = fileURLToPath(new URL('../apps/cli/dist/bin.js', import.meta.url))

const sleep = (/** @type {number} */ ms) => new Promise((r) => setTimeout(r, ms))

/** Runs `spl …` as a real process with SYNCROPEL_HOME = `home`. */
export function spl(home, args, env = {}) {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [SPL_BIN, ...args],
      { env: { SPL_MDNS: 'off', ...process.env, SYNCROPEL_HOME: home, ...env }, timeout: 60_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0
        resolve({ code, stdout: String(stdout), stderr: String(stderr) })
      },
    )
  })
}

/** Runs a shell script with bash (for literal walk-throughs), `spl` on the PATH. */
export function sh(script, env = {}) {
  const binDir = mkdtempSync(path.join(os.tmpdir(), 'spl-bin-'))
  return new Promise((resolve) => {
    // A wrapper, not a symlink: it works whether or not dist/bin.js has its exec bit.
    writeFileSync(path.join(binDir, 'spl'), `#!/bin/sh\nexec "${process.execPath}" "${SPL_BIN}" "$@"\n`, { mode: 0o755 })
    // stdin from /dev/null: bash reads the system bashrc when stdin is a socket (node's pipes are)
    // and its level is 1, and that file does not survive -u.
    const child = spawn('bash', ['-euo', 'pipefail', '-c', script], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { SPL_MDNS: 'off', ...process.env, PATH: `${binDir}:${process.env['PATH']}`, ...env },
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    child.on('close', (code) => {
      rmSync(binDir, { recursive: true, force: true })
      resolve({ code: code ?? 1, stdout, stderr })
    })
  })
}

/** Throws with the output when `r` did not exit 0; returns `r` otherwise. */
export function ok(r, what) {
  if (r.code !== 0) throw new Error(`${what} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`)
  return r
}

/** A real `spl serve --daemon` process on a temporary home and a free port. */
export class TestDaemon {
  /** Every daemon started and not yet stopped: killed synchronously if the process exits first. */
  static live = new Set()

  constructor(home, info, token, did) {
    this.home = home
    this.url = info.url
    this.pid = info.pid
    this.token = token
    this.did = did
    this.api = new SplClient(info.url, token)
    this.stopped = false
  }

  /** `spl init` + `spl serve --daemon --port 0` on a fresh home (or on `home`, already initialised). */
  static async start(options = {}) {
    installExitHook()
    const home = options.home ?? mkdtempSync(path.join(os.tmpdir(), 'spl-test-'))
    if (!options.home) ok(await spl(home, ['init', ...(options.init ?? [])]), 'spl init')
    // On PostgreSQL: written into config.toml, so that a restart keeps it.
    if (options.database) appendFileSync(path.join(home, 'config.toml'), `\n[storage]\nurl = ${JSON.stringify(options.database)}\n`)
    const listen = ['--port', String(options.port ?? 0)]
    if (options.host) listen.push('--host', options.host)
    if (options.nodeFlags?.length) await startWithFlags(home, options.nodeFlags, listen)
    else {
      const r = await spl(home, ['serve', '--daemon', ...listen])
      if (r.code !== 0) throw new Error(`spl serve failed: ${r.stdout}${r.stderr}`)
    }
    const info = JSON.parse(readFileSync(path.join(home, 'run', 'daemon.json'), 'utf8'))
    const token = readFileSync(path.join(home, 'admin.token'), 'utf8').trim()
    const { did } = await new SplClient(info.url, token).get('/v1/identity')
    const d = new this(home, info, token, did)
    TestDaemon.live.add(d)
    return d
  }

  /** Runs `spl …` against this daemon's home. */
  spl(...args) {
    return spl(this.home, args)
  }

  /** `spl serve --stop` (the SIGTERM path); SIGKILL if the process is still there after it. */
  async stop() {
    if (this.stopped) return
    this.stopped = true
    await spl(this.home, ['serve', '--stop'])
    this.killSync()
  }

  /** SIGKILL now and wait until the process is gone (its lock and files stay as they were). */
  async kill9(timeoutMs = 15_000) {
    this.stopped = true
    this.killSync()
    const t0 = Date.now()
    while (exists(this.pid)) {
      if (Date.now() - t0 > timeoutMs) throw new Error(`pid ${this.pid} still exists ${timeoutMs} ms after SIGKILL`)
      await sleep(10)
    }
    return Date.now() - t0
  }

  /** SIGKILL without waiting (for exit handlers). */
  killSync() {
    TestDaemon.live.delete(this)
    try {
      process.kill(this.pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }

  /** Starts the daemon again on the same home (same port unless told otherwise). */
  restart(port = Number(new URL(this.url).port)) {
    return this.constructor.start({ home: this.home, port })
  }

  /** Ids of the records of `thread` on this daemon, in store order. */
  async threadRecordIds(thread) {
    const res = await this.api.get(`/v1/threads/${thread}/records?limit=10000`)
    return res.data.map((e) => e.id)
  }

  /** Emits an INTEND with body `{ text, ...extra }` on `thread`; returns its id. */
  async emit(thread, text, extra = {}) {
    const r = await this.api.post('/v1/records', { act: 'INTEND', thread, body: { text, ...extra } })
    return r.id
  }

  /** Stops the daemon and removes its home. */
  async [Symbol.asyncDispose]() {
    await this.stop()
    rmSync(this.home, { recursive: true, force: true })
  }
}

let exitHook = false
function installExitHook() {
  if (exitHook) return
  exitHook = true
  // Last resort when the runner exits without disposing: kill what we started.
  process.once('exit', () => {
    for (const d of TestDaemon.live) d.killSync()
  })
}

/** True while `pid` exists — a zombie too, so a restart never sees a lock of a not-yet-reaped process. */
function exists(pid) {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return err.code === 'EPERM'
  }
}

/**
 * Starts `node <flags> spl serve` detached on `home` (what `--daemon` does, plus V8 flags that
 * NODE_OPTIONS does not accept) and waits until it answers /health.
 */
async function startWithFlags(home, flags, listen) {
  const log = openSync(path.join(home, 'logs', 'daemon.log'), 'a')
  const child = spawn(process.execPath, [...flags, SPL_BIN, 'serve', ...listen], {
    detached: true,
    stdio: ['ignore', log, log],
    env: { SPL_MDNS: 'off', ...process.env, SYNCROPEL_HOME: home, SPL_DAEMONIZED: '1' },
  })
  closeSync(log)
  child.unref()
  const info = path.join(home, 'run', 'daemon.json')
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline) {
    if (existsSync(info)) {
      const { url, pid } = JSON.parse(readFileSync(info, 'utf8'))
      if (pid === child.pid) {
        try {
          if ((await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) })).ok) return
        } catch {
          // not answering yet
        }
      }
    }
    if (child.exitCode !== null) break
    await sleep(100)
  }
  try {
    if (child.pid) process.kill(child.pid, 'SIGKILL')
  } catch {
    // gone
  }
  throw new Error(`node ${flags.join(' ')} spl serve did not answer /health; see ${path.join(home, 'logs', 'daemon.log')}`)
}
