import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import net, { type AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { isAlive } from '@spl/daemon/home'
import { canonicalRecord, type RecordFields, sha256Hex, verifyRecordSignature } from '@spl/records'
import { afterAll, describe, expect, it } from 'vitest'
import { createNetNs, nsFetch } from '../../../test-utils/netns.js'
import { type RunResult, SPL_BIN, sh, spl } from '../../../test-utils/test-daemon.js'

// Issue 2 "Foundation": the operator's first walk-through with real `spl` processes on a temp
// SYNCROPEL_HOME, following SPEC 1, 2, 6.1, 7.1, 11 and 12.

const DID_RE = /did:key:z6Mk[1-9A-HJ-NP-Za-km-z]+/
const ID_RE = /^[0-9a-f]{64}$/
const REJECTED = "NAMESPACE_REJECTED: ancestor 'acme' is not Active in the registry."
const EMIT_ACME_OPS = ['emit', '--act', 'KNOW', '--thread', 'th_demo', '--body', '{"namespace":"acme/ops","text":"x"}']

/** better-sqlite3 is a dependency of @spl/daemon only: load it from there, typed as much as we use. */
interface SqliteDb {
  pragma(source: string, options?: { simple?: boolean }): unknown
  prepare(source: string): { get(...params: unknown[]): unknown }
  close(): void
}
type SqliteCtor = new (file: string, options?: { fileMustExist?: boolean }) => SqliteDb
const Database = createRequire(new URL('../../daemon/package.json', import.meta.url))('better-sqlite3') as SqliteCtor

const homes: string[] = []

/** A fresh, not yet existing home under a temporary directory (so `spl init` creates it). */
function newHome(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'spl-foundation-'))
  const home = path.join(dir, 'syncro')
  homes.push(home)
  return home
}

function pidOf(home: string): number | undefined {
  for (const f of ['daemon.json', 'daemon.pid']) {
    const file = path.join(home, 'run', f)
    if (!existsSync(file)) continue
    try {
      const text = readFileSync(file, 'utf8')
      const pid = f === 'daemon.json' ? (JSON.parse(text) as { pid: number }).pid : Number(text.trim())
      if (Number.isInteger(pid) && pid > 0) return pid
    } catch {
      // half-written: try the other file
    }
  }
  return undefined
}

/** A process that has exited counts as gone even before its parent reaps it (isAlive reads /proc). */
const alive = isAlive

// Every daemon started here is stopped, even when a test failed half way.
afterAll(async () => {
  for (const home of homes) {
    const pid = pidOf(home)
    if (pid !== undefined && alive(pid)) {
      await spl(home, ['serve', '--stop'])
      if (alive(pid)) process.kill(pid, 'SIGKILL')
    }
    rmSync(path.dirname(home), { recursive: true, force: true })
  }
})

/** A port that was free a moment ago (for the literal `--port P` form of the walk-through). */
async function freePort(): Promise<number> {
  const srv = net.createServer()
  await new Promise<void>((resolve) => srv.listen(0, '0.0.0.0', resolve))
  const { port } = srv.address() as AddressInfo
  await new Promise<void>((resolve) => srv.close(() => resolve()))
  return port
}

const mode = (file: string) => statSync(file).mode & 0o777
const show = (r: RunResult) => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`

interface EnvelopeOut {
  id: string
  record: RecordFields
  sig: string
  stored_at: number
  redacted?: boolean
}

async function threadJson(home: string, thread: string): Promise<EnvelopeOut[]> {
  const r = await spl(home, ['thread', 'records', thread, '--json'])
  expect(r.code, show(r)).toBe(0)
  return JSON.parse(r.stdout) as EnvelopeOut[]
}

describe('issue 2: the foundation walk-through', () => {
  const home = newHome()
  let did = ''
  let port = 0
  let pid = 0
  let helloId = ''
  let opsId = ''

  it('spl init --force on a fresh home prints a did:key:z6Mk… and creates the home with safe modes', async () => {
    const r = await spl(home, ['init', '--force'])
    expect(r.code, show(r)).toBe(0)
    const m = DID_RE.exec(r.stdout)
    expect(m, show(r)).not.toBeNull()
    did = m![0]
    expect(mode(home)).toBe(0o700)
    expect(mode(path.join(home, 'keys', 'primary.key'))).toBe(0o600)
    expect(mode(path.join(home, 'admin.token'))).toBe(0o600)
    expect(readFileSync(path.join(home, 'admin.token'), 'utf8').trim()).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(existsSync(path.join(home, 'config.toml'))).toBe(true)
    expect(existsSync(path.join(home, 'logs'))).toBe(true)
    expect(existsSync(path.join(home, 'run'))).toBe(true)
    expect(readFileSync(path.join(home, 'config.toml'), 'utf8')).toContain(did)
  })

  it('a second spl init changes nothing, says it is already initialised and prints the same DID', async () => {
    const files = ['keys/primary.key', 'admin.token', 'config.toml'].map((f) => path.join(home, f))
    const before = files.map((f) => readFileSync(f))
    const r = await spl(home, ['init'])
    expect(r.code, show(r)).toBe(0)
    expect(r.stdout + r.stderr).toMatch(/already initiali[sz]ed/i)
    expect(DID_RE.exec(r.stdout)?.[0]).toBe(did)
    for (const [i, f] of files.entries()) expect(readFileSync(f).equals(before[i]!), `${f} changed`).toBe(true)
    expect(mode(path.join(home, 'keys', 'primary.key'))).toBe(0o600)
  })

  it('spl serve --daemon --port P --host 0.0.0.0 starts, writes run/daemon.json and logs to logs/daemon.log', async () => {
    port = await freePort()
    const r = await spl(home, ['serve', '--daemon', '--port', String(port), '--host', '0.0.0.0'])
    expect(r.code, show(r)).toBe(0)
    const info = JSON.parse(readFileSync(path.join(home, 'run', 'daemon.json'), 'utf8')) as Record<string, unknown>
    expect(info).toMatchObject({ port, host: '0.0.0.0', pid: expect.any(Number), url: expect.stringContaining(`:${port}`) })
    pid = info['pid'] as number
    expect(alive(pid)).toBe(true)
    expect(r.stdout).toContain(String(pid))
    expect(existsSync(path.join(home, 'logs', 'daemon.log'))).toBe(true)
    if (process.platform === 'linux') {
      // The detached process starts with the memory settings of docs/configuration.md.
      expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')).toContain('--max-semi-space-size=2')
      const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')
      for (const name of ['UV_THREADPOOL_SIZE', 'MALLOC_ARENA_MAX', 'MALLOC_MMAP_THRESHOLD_', 'MALLOC_TRIM_THRESHOLD_']) {
        expect(environ.some((e) => e.startsWith(`${name}=`))).toBe(true)
      }
    }
  })

  it('curl -s http://localhost:P/v1/identity | jq -r .did prints the DID', async () => {
    const r = await sh(`curl -s http://localhost:${port}/v1/identity | jq -r '.did'`, { SYNCROPEL_HOME: home })
    expect(r.code, show(r)).toBe(0)
    expect(r.stdout.trim()).toBe(did)
  })

  it('spl intend --thread th_demo "hello from A" prints a 64-hex id', async () => {
    const r = await spl(home, ['intend', '--thread', 'th_demo', 'hello from A'])
    expect(r.code, show(r)).toBe(0)
    helloId = r.stdout.trim()
    expect(helloId).toMatch(ID_RE)
  })

  it('spl thread records th_demo shows it: short id, act, clock and text', async () => {
    const r = await spl(home, ['thread', 'records', 'th_demo'])
    expect(r.code, show(r)).toBe(0)
    const lines = r.stdout.split('\n').filter((l) => l.trim())
    expect(lines, show(r)).toHaveLength(1)
    const line = lines[0]!
    const shortId = line.trim().split(/\s+/)[0]!
    expect(shortId.length).toBeGreaterThanOrEqual(8)
    expect(shortId.length).toBeLessThan(64)
    expect(helloId.startsWith(shortId), `${shortId} is not a prefix of ${helloId}`).toBe(true)
    expect(line).toContain('hello from A')
    expect(line).toContain('INTEND')
    expect(line).toMatch(/\s0\s/)
  })

  it('spl thread records th_demo --json prints the envelope; id and 86-char sig verify', async () => {
    const envs = await threadJson(home, 'th_demo')
    expect(envs).toHaveLength(1)
    const e = envs[0]!
    expect(e.id).toBe(helloId)
    expect(e.sig).toMatch(/^[A-Za-z0-9_-]{86}$/)
    expect(e.stored_at).toEqual(expect.any(Number))
    expect(e.record).toMatchObject({
      parents: [],
      thread: 'th_demo',
      actor: did,
      act: 'INTEND',
      body: { text: 'hello from A' },
      clock: 0,
      data_type: 'SCALAR',
    })
    const canonical = canonicalRecord(e.record)
    expect(sha256Hex(canonical)).toBe(e.id)
    expect(verifyRecordSignature(did, canonical, e.sig)).toBe(true)
  })

  it('an emit into acme/ops before acme exists is refused with NAMESPACE_REJECTED and the fix', async () => {
    const r = await spl(home, EMIT_ACME_OPS)
    expect(r.code, show(r)).not.toBe(0)
    expect(r.stderr).toContain(REJECTED)
    expect(r.stderr).toContain('spl namespace create acme')
    expect(r.stderr).not.toContain('NAMESPACE_REJECTED: NAMESPACE_REJECTED')
    expect(r.stderr.trim().split('\n'), 'errors print one line').toHaveLength(1)
    expect(r.stdout).not.toMatch(/[0-9a-f]{64}/)
    expect((await threadJson(home, 'th_demo')).map((e) => e.id)).toEqual([helloId])
  })

  it('spl namespace create acme --description "Acme" && spl namespace create acme/ops', async () => {
    const r = await sh('spl namespace create acme --description "Acme" && spl namespace create acme/ops', { SYNCROPEL_HOME: home })
    expect(r.code, show(r)).toBe(0)
  })

  it('the same emit now succeeds', async () => {
    const r = await spl(home, EMIT_ACME_OPS)
    expect(r.code, show(r)).toBe(0)
    opsId = r.stdout.trim()
    expect(opsId).toMatch(ID_RE)
    const envs = await threadJson(home, 'th_demo')
    expect(envs.map((e) => e.id)).toEqual([helloId, opsId])
    expect(envs[1]!.record).toMatchObject({ act: 'KNOW', clock: 1, body: { namespace: 'acme/ops', text: 'x' } })
  })

  it('spl namespace show acme/ops shows ✓ for acme and acme/ops', async () => {
    const r = await spl(home, ['namespace', 'show', 'acme/ops'])
    expect(r.code, show(r)).toBe(0)
    expect(r.stdout).toMatch(/✓\s+acme(\s|$)/m)
    expect(r.stdout).toMatch(/✓\s+acme\/ops(\s|$)/m)
    expect(r.stdout).not.toContain('✗')
  })

  it('admin doors: from a non-loopback address POST /v1/records needs the admin token (SPEC 7.1)', async () => {
    // The caller is another host: a network namespace reaching the daemon (on 0.0.0.0) over a veth.
    await using ns = createNetNs()
    const url = `http://${ns.hostAddr}:${port}`
    const rec = JSON.stringify({ act: 'INTEND', thread: 'th_remote', body: { text: 'from afar' } })
    const json = { 'content-type': 'application/json' }
    const denied = await nsFetch(ns, `${url}/v1/records`, { method: 'POST', headers: json, body: rec })
    expect(denied.status).toBe(401)
    expect(JSON.parse(denied.body)).toMatchObject({ object: 'error', code: 'AUTH_REQUIRED', message: expect.any(String) })
    const token = readFileSync(path.join(home, 'admin.token'), 'utf8').trim()
    const allowed = await nsFetch(ns, `${url}/v1/records`, {
      method: 'POST',
      headers: { ...json, authorization: `Bearer ${token}` },
      body: rec,
    })
    expect(allowed.status).toBe(201)
    for (const open of ['/health', '/v1/identity', '/openapi.json']) {
      expect((await nsFetch(ns, `${url}${open}`)).status, open).toBe(200)
    }
    // A loopback request that came through a proxy is not trusted either.
    const proxied = await fetch(`http://127.0.0.1:${port}/v1/threads`, { headers: { 'x-forwarded-for': '203.0.113.9' } })
    expect(proxied.status).toBe(401)
    expect((await threadJson(home, 'th_remote')).map((e) => e.record.body['text'])).toEqual(['from afar'])
  })

  it('spl serve --status exits 0 while it runs', async () => {
    const r = await spl(home, ['serve', '--status'])
    expect(r.code, show(r)).toBe(0)
    expect(r.stdout).toContain(String(pid))
  })

  it('a second spl serve --daemon on the same home is refused with the running pid', async () => {
    const r = await spl(home, ['serve', '--daemon', '--port', '0'])
    expect(r.code, show(r)).not.toBe(0)
    expect(r.stdout + r.stderr).toContain(String(pid))
    expect(pidOf(home)).toBe(pid)
    expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200)
  })

  it('a second daemon in the foreground (spl serve) on the same home is refused with the running pid', async () => {
    const r = await spl(home, ['serve', '--port', '0'])
    expect(r.code, show(r)).not.toBe(0)
    expect(r.stdout + r.stderr).toContain(String(pid))
    expect(pidOf(home)).toBe(pid)
    expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200)
  })

  it('spl serve --stop ends it: process gone, run/daemon.json removed, database closed cleanly', async () => {
    const r = await spl(home, ['serve', '--stop'])
    expect(r.code, show(r)).toBe(0)
    expect(alive(pid)).toBe(false)
    expect(existsSync(path.join(home, 'run', 'daemon.json'))).toBe(false)
    expect(existsSync(path.join(home, 'run', 'daemon.pid'))).toBe(false)
    // A clean close checkpoints the WAL into spl.db and removes it.
    const db = path.join(home, 'spl.db')
    expect(existsSync(db)).toBe(true)
    expect(existsSync(`${db}-wal`) && statSync(`${db}-wal`).size > 0, 'spl.db-wal left behind').toBe(false)
    const sqlite = new Database(db, { fileMustExist: true })
    try {
      expect(sqlite.pragma('quick_check', { simple: true })).toBe('ok')
      const row = sqlite.prepare('select count(*) as n from spl_records where thread = ?').get('th_demo') as { n: number }
      expect(row.n).toBe(2)
    } finally {
      sqlite.close()
    }
  })

  it('spl serve --status then exits 1', async () => {
    const r = await spl(home, ['serve', '--status'])
    expect(r.code, show(r)).toBe(1)
  })

  it('after a restart the records and namespaces are still there', async () => {
    const r = await spl(home, ['serve', '--daemon', '--port', '0'])
    expect(r.code, show(r)).toBe(0)
    const envs = await threadJson(home, 'th_demo')
    expect(envs.map((e) => e.id)).toEqual([helloId, opsId])
    const ns = await spl(home, ['namespace', 'show', 'acme/ops'])
    expect(ns.code, show(ns)).toBe(0)
    const next = await spl(home, ['intend', '--thread', 'th_demo', 'after restart'])
    expect(next.code, show(next)).toBe(0)
    expect((await threadJson(home, 'th_demo')).map((e) => e.record.clock)).toEqual([0, 1, 2])
    const stop = await spl(home, ['serve', '--stop'])
    expect(stop.code, show(stop)).toBe(0)
  })

  it('spl version prints a version', async () => {
    const r = await spl(home, ['version'])
    expect(r.code, show(r)).toBe(0)
    expect(r.stdout).toMatch(/\d+\.\d+\.\d+/)
  })
})

describe('issue 2: one daemon per home, and errors without a daemon', () => {
  it('two spl serve --daemon started at once on one home: exactly one runs, the other names its pid', async () => {
    const home = newHome()
    const init = await spl(home, ['init'])
    expect(init.code, show(init)).toBe(0)
    const [a, b] = await Promise.all([spl(home, ['serve', '--daemon', '--port', '0']), spl(home, ['serve', '--daemon', '--port', '0'])])
    const codes = [a.code, b.code].sort()
    expect(codes[0], `${show(a)}\n${show(b)}`).toBe(0)
    expect(codes[1], `${show(a)}\n${show(b)}`).not.toBe(0)
    const pid = pidOf(home)!
    expect(alive(pid)).toBe(true)
    const loser = a.code === 0 ? b : a
    expect(loser.stdout + loser.stderr).toContain(String(pid))
    const stop = await spl(home, ['serve', '--stop'])
    expect(stop.code, show(stop)).toBe(0)
    expect(alive(pid)).toBe(false)
  })

  it('a command that needs the daemon, with no daemon running, fails with one line and the fix', async () => {
    const home = newHome()
    expect((await spl(home, ['init'])).code).toBe(0)
    const r = await spl(home, ['intend', '--thread', 'th_demo', 'nobody listens'], {
      SPL_DAEMON_URL: `http://127.0.0.1:${await freePort()}`,
    })
    expect(r.code, show(r)).not.toBe(0)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
    expect(r.stderr).toContain('DAEMON_UNREACHABLE')
    expect(r.stderr).toContain('spl serve --daemon')
  })

  it('spl init --force makes a new DID (with a warning), keeps the admin token and the records', async () => {
    const home = newHome()
    const first = await spl(home, ['init'])
    expect(first.code, show(first)).toBe(0)
    const oldDid = DID_RE.exec(first.stdout)![0]
    const token = readFileSync(path.join(home, 'admin.token'), 'utf8')
    expect((await spl(home, ['serve', '--daemon', '--port', '0'])).code).toBe(0)
    const id = (await spl(home, ['intend', '--thread', 'th_keep', 'before the new key'])).stdout.trim()
    expect(id).toMatch(ID_RE)
    expect((await spl(home, ['serve', '--stop'])).code).toBe(0)

    const forced = await spl(home, ['init', '--force'])
    expect(forced.code, show(forced)).toBe(0)
    const newDid = DID_RE.exec(forced.stdout)?.[0]
    expect(newDid).toBeDefined()
    expect(newDid).not.toBe(oldDid)
    expect(forced.stderr).toContain(oldDid)
    expect(forced.stderr).toMatch(/re-pair/)
    expect(readFileSync(path.join(home, 'admin.token'), 'utf8')).toBe(token)
    expect(mode(path.join(home, 'keys', 'primary.key'))).toBe(0o600)

    expect((await spl(home, ['serve', '--daemon', '--port', '0'])).code).toBe(0)
    const ident = await sh(`curl -s "$(jq -r .url "$SYNCROPEL_HOME/run/daemon.json")/v1/identity" | jq -r .did`, { SYNCROPEL_HOME: home })
    expect(ident.stdout.trim()).toBe(newDid)
    const envs = await threadJson(home, 'th_keep')
    expect(envs.map((e) => e.id)).toEqual([id])
    expect(envs[0]!.record.actor).toBe(oldDid)
    expect((await spl(home, ['serve', '--stop'])).code).toBe(0)
  })

  it('after kill -9 the next spl serve --daemon takes over the stale lock and the committed records are there', async () => {
    const home = newHome()
    expect((await spl(home, ['init'])).code).toBe(0)
    expect((await spl(home, ['serve', '--daemon', '--port', '0'])).code).toBe(0)
    const id = (await spl(home, ['intend', '--thread', 'th_crash', 'committed'])).stdout.trim()
    expect(id).toMatch(ID_RE)
    const pid = pidOf(home)!
    process.kill(pid, 'SIGKILL')
    // A killed detached daemon is reaped by the machine's init, which may take a moment.
    await expect.poll(() => alive(pid), { timeout: 30_000, interval: 100 }).toBe(false)
    const status = await spl(home, ['serve', '--status'])
    expect(status.code, show(status)).toBe(1)
    const again = await spl(home, ['serve', '--daemon', '--port', '0'])
    expect(again.code, show(again)).toBe(0)
    expect(pidOf(home)).not.toBe(pid)
    expect((await threadJson(home, 'th_crash')).map((e) => e.id)).toEqual([id])
    expect((await spl(home, ['serve', '--stop'])).code).toBe(0)
  })

  it('spl serve (foreground) on a port already in use prints the error and exits non-zero by itself', async () => {
    const home = newHome()
    expect((await spl(home, ['init'])).code).toBe(0)
    const blocker = net.createServer()
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
    const port = (blocker.address() as AddressInfo).port
    const child = spawn(process.execPath, [SPL_BIN, 'serve', '--port', String(port)], {
      env: { ...process.env, SYNCROPEL_HOME: home },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let output = ''
    child.stdout.on('data', (d) => (output += d))
    child.stderr.on('data', (d) => (output += d))
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
    try {
      // Bounded only so that a daemon that never exits fails the test instead of hanging it.
      const code = await Promise.race([exited, sleep(45_000).then(() => 'still running' as const)])
      expect(code, `spl serve did not exit after failing to listen:\n${output}`).not.toBe('still running')
      expect(code).not.toBe(0)
      expect(output).toContain(String(port))
      expect(output.trim().split('\n'), 'errors print one line').toHaveLength(1)
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      await new Promise<void>((resolve) => blocker.close(() => resolve()))
    }
  })

  it('spl serve --daemon on a port already in use exits non-zero with the log tail; the home stays usable', async () => {
    const home = newHome()
    expect((await spl(home, ['init'])).code).toBe(0)
    const blocker = net.createServer()
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
    const port = (blocker.address() as AddressInfo).port
    try {
      const r = await spl(home, ['serve', '--daemon', '--port', String(port)])
      expect(r.code, show(r)).not.toBe(0)
      expect(r.stdout + r.stderr).toContain(String(port))
      expect((await spl(home, ['serve', '--status'])).code).toBe(1)
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()))
    }
    const again = await spl(home, ['serve', '--daemon', '--port', '0'])
    expect(again.code, show(again)).toBe(0)
    expect((await spl(home, ['serve', '--stop'])).code).toBe(0)
  })

  it('spl serve --status on a home that never ran a daemon exits 1', async () => {
    const home = newHome()
    expect((await spl(home, ['init'])).code).toBe(0)
    expect((await spl(home, ['serve', '--status'])).code).toBe(1)
  })
})
