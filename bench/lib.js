// Shared helpers for the benchmarks: real `spl` daemons on temporary homes, a keep-alive HTTP
// client for 127.0.0.1, /proc readers, record generation and printing. Benchmarks print figures;
// none of them asserts a timing.
import { execFileSync } from 'node:child_process'
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { spl, TestDaemon } from '../test-utils/test-daemon.js'

/** Repository root. */
export const ROOT = fileURLToPath(new URL('..', import.meta.url))

/** @param {string} rel a path under the repository root */
export const dist = (rel) => import(pathToFileURL(path.join(ROOT, rel)).href)

// ---------------------------------------------------------------------------------------------
// Cleanup: every daemon and temporary home is registered here and removed on exit, error or signal.

/** @type {Set<() => Promise<void> | void>} */
const cleanups = new Set()
let cleaning = null

/** Registers `fn` to run at cleanup; returns a function that unregisters it. */
export function onCleanup(fn) {
  cleanups.add(fn)
  return () => cleanups.delete(fn)
}

/** Runs every registered cleanup once (newest first). */
export function cleanupAll() {
  cleaning ??= (async () => {
    for (const fn of [...cleanups].reverse()) {
      cleanups.delete(fn)
      try {
        await fn()
      } catch (err) {
        console.error(`cleanup: ${err instanceof Error ? err.message : String(err)}`)
      }
    }
    cleaning = null
  })()
  return cleaning
}

let handlersInstalled = false
function installHandlers() {
  if (handlersInstalled) return
  handlersInstalled = true
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(sig, () => {
      console.error(`\n${sig}: stopping daemons and removing temporary homes…`)
      cleanupAll().finally(() => process.exit(130))
    })
  }
}

/**
 * Runs `main` with cleanup guaranteed; prints an error and sets exit code 1 when it throws.
 * @template T
 * @param {() => Promise<T>} main
 * @returns {Promise<T | undefined>}
 */
export async function withCleanup(main) {
  installHandlers()
  try {
    return await main()
  } catch (err) {
    console.error(err instanceof Error ? (err.stack ?? err.message) : String(err))
    process.exitCode = 1
    return undefined
  } finally {
    await cleanupAll()
  }
}

/** True when `import.meta.url` is the script node was started with. */
export function isMain(metaUrl) {
  return process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(metaUrl)
}

// ---------------------------------------------------------------------------------------------
// Processes

/** A fresh temporary home made by `spl init`, removed at cleanup. */
export async function initHome(prefix = 'spl-bench-') {
  const home = mkdtempSync(path.join(os.tmpdir(), prefix))
  onCleanup(() => rmSync(home, { recursive: true, force: true }))
  const r = await spl(home, ['init'])
  if (r.code !== 0) throw new Error(`spl init failed: ${r.stdout}${r.stderr}`)
  return home
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 })

/**
 * One HTTP request to 127.0.0.1 with a keep-alive agent (cheaper than fetch per call).
 * @param {string} method
 * @param {string} url
 * @param {{ token?: string, body?: unknown, timeoutMs?: number }} [opts]
 * @returns {Promise<{ status: number, json: any }>}
 */
export function request(method, url, opts = {}) {
  const u = new URL(url)
  if (u.hostname !== '127.0.0.1' && u.hostname !== 'localhost') throw new Error(`benchmarks only talk to 127.0.0.1, not ${u.host}`)
  const payload = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body))
  /** @type {Record<string, string | number>} */
  const headers = { accept: 'application/json' }
  if (opts.token) headers['authorization'] = `Bearer ${opts.token}`
  if (payload) {
    headers['content-type'] = 'application/json'
    headers['content-length'] = payload.length
  }
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        agent,
        method,
        hostname: u.hostname,
        port: u.port,
        path: u.pathname + u.search,
        headers,
        timeout: opts.timeoutMs ?? 30_000,
      },
      (res) => {
        const chunks = []
        res.on('data', (c) => chunks.push(c))
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8')
          let json = text
          try {
            json = text ? JSON.parse(text) : null
          } catch {
            // keep the text
          }
          if ((res.statusCode ?? 500) >= 400) {
            reject(new Error(`${method} ${u.pathname} → ${res.statusCode}: ${text.slice(0, 300)}`))
            return
          }
          resolve({ status: res.statusCode ?? 0, json })
        })
        res.on('error', reject)
      },
    )
    req.on('timeout', () => req.destroy(new Error(`${method} ${u.pathname}: timeout`)))
    req.on('error', reject)
    if (payload) req.write(payload)
    req.end()
  })
}

/**
 * The test harness's daemon on an initialised home, stopped at cleanup, with admin GET/POST over
 * the keep-alive agent above. With BENCH_DAEMON_NODE_FLAGS set (e.g. "--optimize-for-size"), the
 * daemon process is started as `node <flags> spl serve`, to measure the effect of V8 flags that
 * NODE_OPTIONS does not accept.
 */
export class Daemon extends TestDaemon {
  /**
   * `spl serve --daemon --port 0 --host 127.0.0.1` on `home`; with `database` (a postgres:// URL,
   * written into the home's config.toml), on PostgreSQL.
   * @param {string} home
   * @param {{ database?: string }} [opts]
   */
  static async start(home, opts = {}) {
    installHandlers()
    const nodeFlags = (process.env.BENCH_DAEMON_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean)
    // `.call(Daemon)`: the harness builds `new this(…)`, so the daemon gets get/post below.
    const d = await TestDaemon.start.call(Daemon, { home, host: '127.0.0.1', nodeFlags, database: opts.database })
    onCleanup(() => d.stop())
    return d
  }

  /** Admin GET/POST on this daemon. */
  async get(p) {
    return (await request('GET', this.url + p, { token: this.token })).json
  }
  async post(p, body = {}) {
    return (await request('POST', this.url + p, { token: this.token, body })).json
  }
}

/**
 * A second home of the same instance, for another replica on the same PostgreSQL database: a new
 * temporary directory with `home`'s config.toml (identity, [storage] url), key and admin token.
 * Removed at cleanup.
 */
export function replicaHome(home) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'spl-bench-replica-'))
  onCleanup(() => rmSync(dir, { recursive: true, force: true }))
  for (const sub of ['keys', 'logs', 'run']) mkdirSync(path.join(dir, sub), { mode: 0o700 })
  for (const file of ['config.toml', 'admin.token', path.join('keys', 'primary.key')]) {
    copyFileSync(path.join(home, file), path.join(dir, file))
    chmodSync(path.join(dir, file), 0o600)
  }
  return dir
}

/** Two fresh homes, initialised in parallel. */
export function initHomes(n) {
  return Promise.all(Array.from({ length: n }, () => initHome()))
}

// ---------------------------------------------------------------------------------------------
// /proc readers (Linux)

/** VmRSS and VmHWM of `pid`, in MB (10^6 bytes; /proc reports KiB). */
export function memOf(pid) {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? Number.NaN)
  return { rssMB: (kb('VmRSS') * 1024) / 1e6, hwmMB: (kb('VmHWM') * 1024) / 1e6 }
}

let clkTck = 0
/**
 * CPU seconds (user + system) used so far by `pid`, from /proc/<pid>/stat; with `reaped`, plus
 * those of its children that have exited and been waited for (cutime + cstime).
 */
export function cpuSecondsOf(pid, reaped = false) {
  if (!clkTck) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
    } catch {
      clkTck = 100
    }
  }
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // Fields after the command name (which may contain spaces) start after the last ')'.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // f[0] is field 3 (state): utime is field 14, stime field 15, cutime 16, cstime 17.
  return (Number(f[11]) + Number(f[12]) + (reaped ? Number(f[13]) + Number(f[14]) : 0)) / clkTck
}

/**
 * CPU seconds (user + system) used so far by each kind of thread of `pid` (from
 * /proc/<pid>/task/<tid>/stat): the main thread (the process's own name), libuv's threadpool
 * (`libuv-worker`), V8's helpers (`V8Worker`: concurrent GC and compilation), and the others.
 * @returns {Record<string, number>}
 */
export function threadCpuOf(pid) {
  cpuSecondsOf(pid) // initialises CLK_TCK
  /** @type {Record<string, number>} */
  const out = {}
  let tasks = []
  try {
    tasks = readdirSync(`/proc/${pid}/task`)
  } catch {
    return out
  }
  for (const tid of tasks) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      const comm = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim()
      const kind =
        tid === String(pid) ? 'main' : comm.startsWith('libuv-worker') ? 'threadpool' : comm.startsWith('V8Worker') ? 'V8 helpers' : 'other'
      out[kind] = (out[kind] ?? 0) + (Number(f[11]) + Number(f[12])) / (clkTck || 100)
    } catch {
      // thread gone
    }
  }
  return out
}

/** `b` − `a` for two threadCpuOf readings, formatted "main 3.1 s, threadpool 2.0 s, …". */
export function threadCpuLine(a, b) {
  return Object.keys(b)
    .map((k) => `${k} ${fmt1(b[k] - (a[k] ?? 0))} s`)
    .join(', ')
}

/** Samples VmRSS of `pid` every `everyMs` until stopped; returns the peak seen. */
export function rssSampler(pid, everyMs = 100) {
  let peak = 0
  const samples = []
  const tick = () => {
    try {
      const { rssMB } = memOf(pid)
      samples.push(rssMB)
      if (rssMB > peak) peak = rssMB
    } catch {
      // process gone
    }
  }
  tick()
  const t = setInterval(tick, everyMs)
  return {
    stop() {
      clearInterval(t)
      tick()
      return { peakMB: peak, samples: samples.length }
    },
  }
}

// ---------------------------------------------------------------------------------------------
// Records

const FILLER = 'lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore '

/**
 * The fields of record `i` of a benchmark thread: about 500 bytes in canonical form with a
 * did:key actor (`actor` is the signer's DID).
 */
export function benchRecord(actor, thread, i) {
  return {
    parents: [],
    thread,
    actor,
    act: 'KNOW',
    body: {
      n: i,
      kind: 'bench',
      text: `record ${i}: ${FILLER.repeat(4).slice(0, 262)}`,
      tags: ['bench', 'catchup'],
    },
    clock: i,
    data_type: 'SCALAR',
  }
}

/**
 * Signs `n` benchmark records with `keypair`.
 * @returns {Promise<Array<{ id: string, record: any, sig: string, canonical: string }>>}
 */
export async function signedRecords(keypair, thread, n) {
  const { signRecord } = await dist('packages/records/dist/index.js')
  const out = new Array(n)
  for (let i = 0; i < n; i++) out[i] = signRecord(keypair, benchRecord(keypair.did, thread, i))
  return out
}

/** Reads the instance key of an initialised home (keys/primary.key, a JWK with the seed in `d`). */
export async function keypairOfHome(home) {
  const { Keypair } = await dist('packages/identity/dist/index.js')
  const jwk = JSON.parse(readFileSync(path.join(home, 'keys', 'primary.key'), 'utf8'))
  return Keypair.fromSeed(Buffer.from(jwk.d, 'base64url'))
}

/** Opens a SQLite file the way the daemon does (WAL, synchronous=NORMAL, 4 MiB cache). */
export async function openDb(file) {
  const { openDatabase } = await dist('apps/daemon/dist/db.js')
  return openDatabase(file)
}

/**
 * Writes `records` into the store of `home` (daemon not running), 1000 per transaction: its
 * spl.db, or the PostgreSQL database at `database` (a postgres:// URL) the home will run on.
 * @returns {Promise<number>} records per second of the seeding
 */
export async function seedHome(home, records, namespace = 'default', database = '') {
  const { RecordStore } = await dist('packages/records/dist/index.js')
  const { openStorage } = await dist('apps/daemon/dist/db.js')
  const opened = await openStorage(database, path.join(home, 'spl.db'))
  const { db } = opened
  try {
    const store = await RecordStore.open(db)
    const t0 = performance.now()
    const now = Date.now()
    for (let i = 0; i < records.length; i += 1000) {
      const batch = records.slice(i, i + 1000).map((s) => ({
        ok: true,
        id: s.id,
        record: s.record,
        canonical: s.canonical,
        sig: s.sig,
        namespace,
        redacted: false,
        storedAt: null,
      }))
      await store.transaction((trx) => store.ingest(batch, { origin: null, now }, trx))
    }
    const n = await store.count()
    if (n !== records.length) throw new Error(`seeded ${n} records, expected ${records.length}`)
    return records.length / ((performance.now() - t0) / 1000)
  } finally {
    if (opened.kind === 'sqlite') opened.sqlite.pragma('wal_checkpoint(TRUNCATE)')
    await db.destroy()
  }
}

/**
 * Signs `n` benchmark records of `thread` with `keypair` and writes them into the store of
 * `home` (daemon not running), 1000 at a time, keeping none of them: for threads too large to
 * hold in memory (1,000,000 records).
 * @returns {Promise<{ signPerSec: number, bytes: number }>} records signed and stored per second, mean canonical bytes
 */
export async function seedHomeSigned(home, keypair, thread, n, namespace = 'default') {
  const { RecordStore, signRecord } = await dist('packages/records/dist/index.js')
  const { db, sqlite } = await openDb(path.join(home, 'spl.db'))
  let bytes = 0
  try {
    const store = await RecordStore.open(db)
    const t0 = performance.now()
    const now = Date.now()
    for (let i = 0; i < n; i += 1000) {
      const batch = []
      for (let j = i; j < Math.min(n, i + 1000); j++) {
        const s = signRecord(keypair, benchRecord(keypair.did, thread, j))
        bytes += s.canonical.length
        batch.push({ ok: true, id: s.id, record: s.record, canonical: s.canonical, sig: s.sig, namespace, redacted: false, storedAt: null })
      }
      await store.transaction((trx) => store.ingest(batch, { origin: null, now }, trx))
    }
    const stored = await store.count()
    if (stored !== n) throw new Error(`seeded ${stored} records, expected ${n}`)
    return { signPerSec: n / ((performance.now() - t0) / 1000), bytes: bytes / n }
  } finally {
    sqlite.pragma('wal_checkpoint(TRUNCATE)')
    await db.destroy()
  }
}

// ---------------------------------------------------------------------------------------------
// Numbers and printing

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/**
 * The items of a comma-separated list (a matrix knob such as `1000x2,5000x4`), each matched
 * against `re`; throws with `what` and the form when one does not match.
 * @returns {RegExpExecArray[]}
 */
export function parseList(text, re, what, form) {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => {
      const m = re.exec(s)
      if (!m) throw new Error(`${what}: '${s}' is not ${form}`)
      return m
    })
}

/** The median of `xs` (NaN when empty). */
export function median(xs) {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? Number.NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

/** The q-quantile (0..1) of `values`, nearest-rank. */
export function quantile(values, q) {
  if (values.length === 0) return Number.NaN
  const s = [...values].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]
}

export const fmtInt = (n) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a')
export const fmt1 = (n) => (Number.isFinite(n) ? n.toFixed(1) : 'n/a')
export const fmt2 = (n) => (Number.isFinite(n) ? n.toFixed(2) : 'n/a')

/** ✓ / ✗ against a target, for display only (nothing fails on it). */
export function mark(ok) {
  return ok ? 'meets' : 'MISSES'
}

/** Prints rows as an aligned table. */
export function table(rows) {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => String(r[c]).length)))
  const line = (r) =>
    r
      .map((v, c) => String(v).padEnd(widths[c]))
      .join('  ')
      .trimEnd()
  const out = [line(rows[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)]
  return out.join('\n')
}

/** The commit the benchmarks ran on (and whether source files outside bench/ had local changes). */
export function revision() {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim()
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'packages', 'apps'], { cwd: ROOT, encoding: 'utf8' }).trim()
    return dirty ? `${head} + local changes in packages/ or apps/` : head
  } catch {
    return 'unknown revision'
  }
}

/** One-line description of the machine, for the printed report. */
export function machine() {
  const cpu = os.cpus()[0]?.model ?? 'unknown cpu'
  return `${os.availableParallelism()} cores (${cpu.trim()}), ${fmt1(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${os.platform()} ${os.release()}`
}

/** What the calibration figure is on this machine when nothing else runs. */
export const CALIBRATION_NOTE = 'quiet 2-core machine: 6,100-7,200/s'
/** Below this calibration figure, the machine is shared with other work. */
export const BUSY_BELOW = 5000
/** Above this many cores used by other processes, the machine is shared with other work. */
export const BUSY_CORES = 0.25

/**
 * A quick measure of how fast this machine is right now: Ed25519 verifications per second on
 * one core (DESIGN.md measured ~8,700 on an idle 2-core machine). A low figure means other
 * processes compete for the CPU and every benchmark figure will be low too.
 */
export async function calibrate(ms = 400) {
  const { Keypair, verifySignature } = await dist('packages/identity/dist/index.js')
  const kp = Keypair.generate()
  const msg = Buffer.alloc(500, 7)
  const sig = kp.sign(msg)
  for (let i = 0; i < 200; i++) verifySignature(kp.did, msg, sig)
  let n = 0
  const t0 = performance.now()
  while (performance.now() - t0 < ms) {
    for (let i = 0; i < 50; i++) verifySignature(kp.did, msg, sig)
    n += 50
  }
  return n / ((performance.now() - t0) / 1000)
}

/**
 * How busy the machine is right now: Ed25519 verifications per second on one core, and the
 * cores other processes used over one second.
 */
export async function machineState() {
  const v = await calibrate()
  const f = foreignCpu()
  await sleep(1000)
  const { otherCores, stealCores } = f.stop(0)
  return { verifyPerSec: v, otherCores, stealCores }
}

/** One line about the machine's state, and a warning when other work competes for the cores. */
export function stateLines(st) {
  const lines = [
    `Ed25519 verify ${fmtInt(st.verifyPerSec)}/s on one core (${CALIBRATION_NOTE}); other processes use ${fmt2(st.otherCores)} cores; load average ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  ]
  if (st.otherCores > BUSY_CORES || st.verifyPerSec < BUSY_BELOW) {
    lines.push('WARNING: the machine is busy (other processes compete for the cores): figures will be low.')
  }
  return lines
}

/** Prints the title, the machine and how busy it is. */
export async function header(title, log = console.log) {
  log(title)
  log(`  ${new Date().toISOString()} — ${machine()} — spl ${revision()}`)
  for (const l of stateLines(await machineState())) log(`  ${l}`)
}

/** Busy and steal CPU seconds of the whole machine so far (all cores), from /proc/stat. */
export function machineCpuSeconds() {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? ''
  // cpu user nice system idle iowait irq softirq steal guest guest_nice (ticks)
  const f = line.trim().split(/\s+/).slice(1).map(Number)
  const tck = clkTck || 100
  const busy = f[0] + f[1] + f[2] + f[5] + f[6]
  return { busy: busy / tck, steal: (f[7] ?? 0) / tck }
}

/**
 * Measures what the rest of the machine does while a benchmark runs: call `stop()` at the end
 * with the CPU seconds the benchmark's own processes used; returns the CPU (in cores) used by
 * other processes on average and the steal time (a virtual machine's host taking the cores).
 */
export function foreignCpu() {
  cpuSecondsOf(process.pid) // initialises CLK_TCK
  const m0 = machineCpuSeconds()
  const own0 = cpuSecondsOf(process.pid)
  const t0 = performance.now()
  return {
    /** @param {number} ownOtherCpu CPU seconds of the benchmark's daemons over the same window */
    stop(ownOtherCpu) {
      const wall = (performance.now() - t0) / 1000
      const m1 = machineCpuSeconds()
      const own = cpuSecondsOf(process.pid) - own0 + ownOtherCpu
      return { otherCores: Math.max(0, m1.busy - m0.busy - own) / wall, stealCores: (m1.steal - m0.steal) / wall }
    },
  }
}
