// Types of test-daemon.js (plain JS so that bench/ imports the same file).
import type { SplClient } from '../packages/transport/dist/admin-client.js'

export interface RunResult {
  code: number
  stdout: string
  stderr: string
}

/** A sync pair as GET /v1/sync/pairs/:id shows it (the fields the tests read). */
export interface PairView {
  pair_id: string
  thread_id: string
  peer_did: string
  state: string
  mode: string
  cursor: string | null
  caught_up_at: number | null
  last_error: { code: string; message: string; at: number } | null
  attempt: number
  backoff_ms: number
  poll_only: boolean
  /** Why a longpoll pair polls instead (LONGPOLL_RETURNS_AT_ONCE, LONGPOLL_REFUSED). */
  notice?: { code: string; message: string; at: number } | null
  totals: {
    pulls: number
    records_received: number
    records_stored: number
    duplicates: number
    cursor_resets: number
    rejected: Record<string, number>
  }
}

export interface StartOptions {
  /** An initialised home to start on (no `spl init`); a fresh temporary home otherwise. */
  home?: string
  host?: string
  port?: number
  /** Extra `spl init` arguments for a fresh home. */
  init?: string[]
  /** Start `node <nodeFlags> spl serve` detached instead of `spl serve --daemon`. */
  nodeFlags?: string[]
  /** A postgres:// URL written to the home's `[storage] url` (test-utils/pg-cluster.ts makes one). */
  database?: string
}

/** The built CLI. */
export declare const SPL_BIN: string
/** Runs `spl …` as a real process with SYNCROPEL_HOME = `home`. */
export declare function spl(home: string, args: string[], env?: Record<string, string>): Promise<RunResult>
/** Runs a shell script with bash (for literal walk-throughs), `spl` on the PATH. */
export declare function sh(script: string, env?: Record<string, string>): Promise<RunResult>
/** Throws with the output when `r` did not exit 0; returns `r` otherwise. */
export declare function ok(r: RunResult, what: string): RunResult

/** A real `spl serve --daemon` process on a temporary home and a free port. */
export declare class TestDaemon {
  static live: Set<TestDaemon>
  constructor(home: string, info: { url: string; pid: number }, token: string, did: string)
  readonly home: string
  readonly url: string
  readonly pid: number
  readonly token: string
  readonly did: string
  readonly api: SplClient
  stopped: boolean
  /** `spl init` + `spl serve --daemon --port 0` on a fresh home (or on `home`, already initialised). */
  static start<T extends TestDaemon>(this: new (...a: never[]) => T, options?: StartOptions): Promise<T>
  /** Runs `spl …` against this daemon's home. */
  spl(...args: string[]): Promise<RunResult>
  /** `spl serve --stop` (the SIGTERM path); SIGKILL if the process is still there after it. */
  stop(): Promise<void>
  /** SIGKILL now and wait until the process is gone; resolves to the milliseconds it took. */
  kill9(timeoutMs?: number): Promise<number>
  /** SIGKILL without waiting (for exit handlers). */
  killSync(): void
  /** Starts the daemon again on the same home (same port unless told otherwise). */
  restart(port?: number): Promise<this>
  /** Ids of the records of `thread` on this daemon, in store order. */
  threadRecordIds(thread: string): Promise<string[]>
  /** Emits an INTEND with body `{ text, ...extra }` on `thread`; returns its id. */
  emit(thread: string, text: string, extra?: Record<string, unknown>): Promise<string>
  [Symbol.asyncDispose](): Promise<void>
}
