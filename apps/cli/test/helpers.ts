import { execFile, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { SplClient } from '@spl/transport'

/** The built CLI (tests run after `pnpm build`). */
export const SPL_BIN = fileURLToPath(new URL('../dist/bin.js', import.meta.url))

export interface RunResult {
  code: number
  stdout: string
  stderr: string
}

/** Runs `spl …` as a real process with SYNCROPEL_HOME = `home`. */
export function spl(home: string, args: string[], env: Record<string, string> = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [SPL_BIN, ...args],
      { env: { ...process.env, SYNCROPEL_HOME: home, ...env }, timeout: 60_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0
        resolve({ code, stdout: String(stdout), stderr: String(stderr) })
      },
    )
  })
}

/** Runs a shell script with bash (for literal walk-throughs), `spl` on the PATH. */
export function sh(script: string, env: Record<string, string> = {}): Promise<RunResult> {
  const binDir = mkdtempSync(path.join(os.tmpdir(), 'spl-bin-'))
  return new Promise((resolve) => {
    // A wrapper, not a symlink: it works whether or not dist/bin.js has its exec bit.
    writeFileSync(path.join(binDir, 'spl'), `#!/bin/sh\nexec "${process.execPath}" "${SPL_BIN}" "$@"\n`, { mode: 0o755 })
    const child = spawn('bash', ['-euo', 'pipefail', '-c', script], {
      env: { ...process.env, PATH: `${binDir}:${process.env['PATH']}`, ...env },
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

/** A real `spl serve --daemon` process on a temporary home and a free port. */
export class TestDaemon {
  private constructor(
    readonly home: string,
    readonly url: string,
    readonly did: string,
    readonly pid: number,
    readonly api: SplClient,
  ) {}

  /** `spl init` + `spl serve --daemon --port 0` on a fresh home (or `home` if given). */
  static async start(options: { home?: string; host?: string; port?: number; init?: string[] } = {}): Promise<TestDaemon> {
    const home = options.home ?? mkdtempSync(path.join(os.tmpdir(), 'spl-test-'))
    if (!options.home) {
      const init = await spl(home, ['init', ...(options.init ?? [])])
      if (init.code !== 0) throw new Error(`spl init failed: ${init.stderr}`)
    }
    const args = ['serve', '--daemon', '--port', String(options.port ?? 0)]
    if (options.host) args.push('--host', options.host)
    const r = await spl(home, args)
    if (r.code !== 0) throw new Error(`spl serve failed: ${r.stdout}${r.stderr}`)
    const info = JSON.parse(readFileSync(path.join(home, 'run', 'daemon.json'), 'utf8')) as {
      url: string
      pid: number
    }
    const token = readFileSync(path.join(home, 'admin.token'), 'utf8').trim()
    const api = new SplClient(info.url, token)
    const { did } = await api.get<{ did: string }>('/v1/identity')
    return new TestDaemon(home, info.url, did, info.pid, api)
  }

  /** Runs `spl …` against this daemon's home. */
  spl(...args: string[]): Promise<RunResult> {
    return spl(this.home, args)
  }

  /** `spl serve --stop` (SIGTERM path). */
  async stop(): Promise<void> {
    await spl(this.home, ['serve', '--stop'])
  }

  /** Starts the daemon again on the same home (same port unless told otherwise). */
  async restart(port = Number(new URL(this.url).port)): Promise<TestDaemon> {
    return TestDaemon.start({ home: this.home, port })
  }

  /** Ids of the records of `thread` on this daemon, in store order. */
  async threadRecordIds(thread: string): Promise<string[]> {
    const res = await this.api.get<{ data: { id: string }[] }>(`/v1/threads/${thread}/records?limit=10000`)
    return res.data.map((e) => e.id)
  }

  async emit(thread: string, text: string, extra: Record<string, unknown> = {}): Promise<string> {
    const r = await this.api.post<{ id: string }>('/v1/records', {
      act: 'INTEND',
      thread,
      body: { text, ...extra },
    })
    return r.id
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop()
    try {
      process.kill(this.pid, 'SIGKILL')
    } catch {
      // already gone
    }
    rmSync(this.home, { recursive: true, force: true })
  }
}
