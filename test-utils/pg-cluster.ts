import { execFileSync, spawnSync } from 'node:child_process'
import { chownSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'
import { PostgresSchemaPlugin } from '../packages/records/src/dialect.js'

/** Where Debian's PostgreSQL 15 keeps its programs (apt-get install postgresql). */
const BIN_DIRS = ['/usr/lib/postgresql/15/bin', '/usr/lib/postgresql/16/bin', '/usr/lib/postgresql/17/bin']

/** The directory holding initdb/pg_ctl, or null when PostgreSQL is not installed. */
export function pgBinDir(): string | null {
  return BIN_DIRS.find((d) => existsSync(join(d, 'initdb')) && existsSync(join(d, 'pg_ctl'))) ?? null
}

/** Why the PostgreSQL tests skip here, or null when they can run. */
export const PG_SKIP = pgBinDir() === null ? 'PostgreSQL is not installed (apt-get install postgresql; .ci/run does)' : null

/** The password of the cluster's superuser `postgres` (host connections use scram-sha-256). */
export const PG_PASSWORD = 'spl-test'

/** A free TCP port on loopback (closed again before it is handed back). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number }
      s.close(() => resolve(port))
    })
  })
}

/** A throw-away PostgreSQL cluster in a temporary directory, on loopback only. */
export interface PgCluster {
  readonly dir: string
  readonly port: number
  /** postgres://postgres:…@127.0.0.1:port/<db> */
  url(database?: string): string
  /** Creates a database (C collation: text orders by bytes, as in SQLite) and returns its URL. */
  createDatabase(name?: string): Promise<string>
  /** A Kysely on `url` as the daemon makes one (int8 read as numbers, the schema plugin). */
  kysely(url: string, max?: number): Kysely<unknown>
  stop(): void
  start(): void
  remove(): void
  [Symbol.asyncDispose](): Promise<void>
}

let dbCounter = 0

/**
 * initdb + pg_ctl start, as an operator would: as the `postgres` user when this runs as root
 * (PostgreSQL refuses to run as root), the socket in the cluster's own directory, listening on
 * 127.0.0.1 on a free port. `remove()` stops it and deletes the directory.
 */
export async function startPgCluster(): Promise<PgCluster> {
  const bin = pgBinDir()
  if (bin === null) throw new Error(PG_SKIP ?? 'no PostgreSQL')
  const dir = mkdtempSync(join(tmpdir(), 'spl-pg-'))
  const data = join(dir, 'data')
  const asRoot = process.getuid?.() === 0
  const run = (cmd: string, args: string[]): void => {
    const [file, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args]
    const r = spawnSync(file, argv, { encoding: 'utf8', cwd: dir })
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr || r.stdout}`)
  }
  const pwfile = join(dir, 'pw')
  writeFileSync(pwfile, `${PG_PASSWORD}\n`)
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim())
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim())
    chownSync(dir, uid, gid)
    chownSync(pwfile, uid, gid)
  }
  run(join(bin, 'initdb'), [
    '-D',
    data,
    '-U',
    'postgres',
    '--pwfile',
    pwfile,
    '--auth-local=trust',
    '--auth-host=scram-sha-256',
    '--locale=C',
    '-E',
    'UTF8',
  ])
  const port = await freePort()
  const opts = [
    `-p ${port}`,
    `-k ${dir}`,
    '-c listen_addresses=127.0.0.1',
    // A test cluster: durability across a power cut is not what is tested.
    '-c fsync=off',
    '-c synchronous_commit=off',
    '-c full_page_writes=off',
    '-c max_connections=200',
  ].join(' ')
  const start = () => run(join(bin, 'pg_ctl'), ['-D', data, '-o', opts, '-l', join(dir, 'log'), '-w', 'start'])
  const stop = () => run(join(bin, 'pg_ctl'), ['-D', data, '-m', 'fast', '-w', 'stop'])
  start()
  let running = true
  const url = (database = 'postgres') => `postgres://postgres:${PG_PASSWORD}@127.0.0.1:${port}/${database}`
  const cluster: PgCluster = {
    dir,
    port,
    url,
    async createDatabase(name = `spl_${process.pid}_${++dbCounter}`) {
      const client = new pg.Client({ connectionString: url() })
      await client.connect()
      try {
        await client.query(`create database "${name}" template template0 encoding 'UTF8' lc_collate 'C' lc_ctype 'C'`)
      } finally {
        await client.end()
      }
      return url(name)
    },
    kysely: (u, max = 4) => openPgKysely(u, max),
    stop() {
      if (running) stop()
      running = false
    },
    start() {
      if (!running) start()
      running = true
    },
    remove() {
      try {
        cluster.stop()
      } catch {
        // already gone: remove the directory anyway
      }
      rmSync(dir, { recursive: true, force: true })
    },
    async [Symbol.asyncDispose]() {
      cluster.remove()
    },
  }
  process.once('exit', () => {
    if (running) cluster.remove()
  })
  return cluster
}

/** A Kysely on a PostgreSQL URL with int8 read as numbers and the packages' schema plugin. */
export function openPgKysely(url: string, max = 4): Kysely<unknown> {
  const pool = new pg.Pool({
    connectionString: url,
    max,
    types: {
      getTypeParser: (oid: number, format?: string) =>
        oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text'),
    },
  })
  // An idle client that the cluster's shutdown ends (57P01) is not a test failure: the pool drops it.
  pool.on('error', () => {})
  return new Kysely<unknown>({ dialect: new PostgresDialect({ pool }), plugins: [new PostgresSchemaPlugin()] })
}
