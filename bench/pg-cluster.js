// A throw-away PostgreSQL cluster for the benchmarks, as test-utils/pg-cluster.ts makes one for
// the tests (that file is TypeScript, which node cannot load from bench/): initdb in a temporary
// directory (as the `postgres` user when run as root), pg_ctl on a free loopback port, stopped
// and removed at cleanup, also after an error or Ctrl-C. pg_stat_statements is preloaded when
// the package ships it, so that the statements of each database can be counted.
import { execFileSync, spawnSync } from 'node:child_process'
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import pg from 'pg'
import { cpuSecondsOf, onCleanup } from './lib.js'

const BIN_DIRS = ['/usr/lib/postgresql/15/bin', '/usr/lib/postgresql/16/bin', '/usr/lib/postgresql/17/bin']
const PASSWORD = 'spl-bench'

/** The directory holding initdb and pg_ctl, or null when PostgreSQL is not installed. */
export function pgBinDir() {
  return BIN_DIRS.find((d) => existsSync(path.join(d, 'initdb')) && existsSync(path.join(d, 'pg_ctl'))) ?? null
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = /** @type {import('node:net').AddressInfo} */ (s.address())
      s.close(() => resolve(port))
    })
  })
}

/** Pids of the processes whose parent is `ppid` (PostgreSQL's backends and helpers). */
function childrenOf(ppid) {
  const out = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8')
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === ppid) out.push(Number(name))
    } catch {
      // gone
    }
  }
  return out
}

/**
 * Starts a cluster and returns its handle.
 * @returns {Promise<{ port: number, url(db?: string): string, createDatabase(name: string): Promise<string>,
 *   query(sql: string, params?: unknown[]): Promise<any[]>, queryIn(name: string, sql: string, params?: unknown[]): Promise<any[]>, sizeOf(name: string): Promise<number>, cpuSeconds(): number, statements: boolean }>}
 */
export async function startPgCluster() {
  const bin = pgBinDir()
  if (bin === null) throw new Error('PostgreSQL is not installed')
  const dir = mkdtempSync(path.join(os.tmpdir(), 'spl-bench-pg-'))
  const data = path.join(dir, 'data')
  const asRoot = process.getuid?.() === 0
  const run = (cmd, args) => {
    const [file, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args]
    const r = spawnSync(file, argv, { encoding: 'utf8', cwd: dir })
    if (r.status !== 0) throw new Error(`${path.basename(cmd)} failed (${r.status}): ${r.stderr || r.stdout}`)
  }
  writeFileSync(path.join(dir, 'pw'), `${PASSWORD}\n`)
  if (asRoot) {
    const id = (flag) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim())
    for (const p of [dir, path.join(dir, 'pw')]) chownSync(p, id('-u'), id('-g'))
  }
  let running = false
  const stop = () => {
    if (running) run(path.join(bin, 'pg_ctl'), ['-D', data, '-m', 'fast', '-w', 'stop'])
    running = false
  }
  onCleanup(() => {
    try {
      stop()
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
  const common = ['-U', 'postgres', '--pwfile', path.join(dir, 'pw'), '--auth-local=trust', '--auth-host=scram-sha-256']
  run(path.join(bin, 'initdb'), ['-D', data, ...common, '--locale=C', '-E', 'UTF8'])
  const statements = existsSync(path.join(bin, '..', 'lib', 'pg_stat_statements.so'))
  const port = await freePort()
  // Durability settings of a test cluster (fsync off): the figures are of spl's round trips, not of a disk.
  const settings = ['listen_addresses=127.0.0.1', 'fsync=off', 'synchronous_commit=off', 'full_page_writes=off', 'max_connections=200']
  if (statements) settings.push('shared_preload_libraries=pg_stat_statements')
  const opts = [`-p ${port}`, `-k ${dir}`, ...settings.map((s) => `-c ${s}`)].join(' ')
  run(path.join(bin, 'pg_ctl'), ['-D', data, '-o', opts, '-l', path.join(dir, 'log'), '-w', 'start'])
  running = true
  const postmaster = Number(readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0])
  const url = (db = 'postgres') => `postgres://postgres:${PASSWORD}@127.0.0.1:${port}/${db}`
  // One connection to the `postgres` database for the bench's own queries (they count there, not in spl's databases).
  const admin = new pg.Client({ connectionString: url() })
  await admin.connect()
  admin.on('error', () => {})
  onCleanup(() => admin.end().catch(() => {}))
  const query = async (sql, params) => (await admin.query(sql, params)).rows
  if (statements) await query('create extension pg_stat_statements')
  return {
    port,
    url,
    statements,
    query,
    /** A database with the C collation (text orders by bytes, as in SQLite); its URL. */
    async createDatabase(name) {
      await query(`create database "${name}" template template0 encoding 'UTF8' lc_collate 'C' lc_ctype 'C'`)
      return url(name)
    },
    /** One query on database `name` (a short-lived connection of its own). */
    async queryIn(name, sql, params) {
      const c = new pg.Client({ connectionString: url(name) })
      await c.connect()
      try {
        return (await c.query(sql, params)).rows
      } finally {
        await c.end()
      }
    },
    /** The size of database `name` on disk (pg_database_size), in bytes. */
    async sizeOf(name) {
      const [r] = await query('select pg_database_size($1) as n', [name])
      return Number(r.n)
    },
    /** CPU seconds used so far by the whole cluster: the postmaster, its live backends and the exited ones. */
    cpuSeconds() {
      let s = cpuSecondsOf(postmaster, true)
      for (const pid of childrenOf(postmaster)) {
        try {
          s += cpuSecondsOf(pid)
        } catch {
          // exited meanwhile (now in the postmaster's cutime)
        }
      }
      return s
    },
  }
}
