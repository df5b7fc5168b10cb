import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { SplError } from '@spl/identity'

/** Another daemon already runs on this home. */
export class DaemonRunningError extends SplError {
  override readonly name = 'DaemonRunningError'
  constructor(
    readonly pid: number,
    readonly home: string,
  ) {
    super('DAEMON_RUNNING', `a daemon is already running on ${home} (pid ${pid}).`, {
      status: 409,
      fix: 'spl serve --stop (or use another SYNCROPEL_HOME)',
    })
  }
}

/** What `run/daemon.json` holds while a daemon runs. */
export interface DaemonInfo {
  pid: number
  url: string
  host: string
  port: number
  started_at: number
  version: string
}

/** True when a process with `pid` runs (a zombie — killed, not yet reaped — counts as dead). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
  try {
    // /proc/<pid>/stat: "pid (comm) S …"; the state letter follows the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
  } catch {
    return true // no /proc (not Linux): trust kill(0)
  }
}

/** Reads run/daemon.json when it names a live process. */
export function readDaemonInfo(runDir: string): DaemonInfo | undefined {
  const file = path.join(runDir, 'daemon.json')
  if (!existsSync(file)) return undefined
  try {
    const info = JSON.parse(readFileSync(file, 'utf8')) as DaemonInfo
    return typeof info.pid === 'number' && isAlive(info.pid) ? info : undefined
  } catch {
    return undefined
  }
}

/**
 * Takes the per-home lock (run/daemon.pid, created exclusively). A stale lock of a dead
 * process is taken over; a live one refuses with its pid.
 */
export function acquireLock(runDir: string, home: string): () => void {
  mkdirSync(runDir, { recursive: true, mode: 0o700 })
  const file = path.join(runDir, 'daemon.pid')
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx' })
      return () => {
        try {
          if (readFileSync(file, 'utf8').trim() === String(process.pid)) rmSync(file)
          rmSync(path.join(runDir, 'daemon.json'), { force: true })
        } catch {
          // already gone
        }
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      let text = readFileSync(file, 'utf8').trim()
      if (text === '') {
        // Another starter created the file and has not written its pid yet: give it a moment.
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200)
        text = readFileSync(file, 'utf8').trim()
      }
      const pid = Number(text)
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) throw new DaemonRunningError(pid, home)
      rmSync(file, { force: true })
    }
  }
  throw new SplError('LOCK_FAILED', `could not take the lock ${file}.`, {
    status: 500,
    fix: `remove ${file} if no daemon runs`,
  })
}

/** Writes run/daemon.json. */
export function writeDaemonInfo(runDir: string, info: DaemonInfo): void {
  writeFileSync(path.join(runDir, 'daemon.json'), `${JSON.stringify(info, null, 2)}\n`, { mode: 0o600 })
}
