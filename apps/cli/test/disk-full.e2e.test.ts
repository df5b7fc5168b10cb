import { execFileSync } from 'node:child_process'
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, unlinkSync, writeSync } from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ok, type PairView, spl, TestDaemon } from '../../../test-utils/test-daemon.js'

// Issue 18, "A full disk is an error with a name": B's home (database and log alike) lives on a
// small tmpfs that this test mounts (CI runs as root) and fills. B is detached as `spl serve
// --daemon` starts it. B must not die, must name the error (DISK_FULL on the pair, 507 on emit,
// in status and doctor), and must resume within seconds once space is freed, with every record
// stored exactly once and the database intact.

/** better-sqlite3, borrowed from the daemon (the CLI does not depend on it); only what this test calls. */
interface Sqlite {
  pragma(s: string, o: { simple: true }): unknown
  prepare(sql: string): { all(...args: unknown[]): unknown[] }
  close(): void
}
const Database = createRequire(new URL('../../daemon/package.json', import.meta.url))('better-sqlite3') as new (
  file: string,
  options: { readonly: boolean },
) => Sqlite

const THREAD = 'th_disk_full'
const POLL = { timeout: 20_000, interval: 100 }
const isRoot = process.getuid?.() === 0

let mnt: string
let mounted = false
let a: TestDaemon
let b: TestDaemon
let filler: string

/** Fills the filesystem of `dir` with one file until the OS says ENOSPC; returns its path. */
function fill(dir: string): string {
  const file = path.join(dir, 'filler.bin')
  const fd = openSync(file, 'w')
  const chunk = Buffer.alloc(256 * 1024, 0x61)
  try {
    for (;;) {
      try {
        writeSync(fd, chunk)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err
        // The last partial chunk: fill byte by byte-ish until nothing fits.
        for (const size of [65536, 4096, 512, 1]) {
          try {
            for (;;) writeSync(fd, chunk.subarray(0, size))
          } catch {
            // next smaller size
          }
        }
        return file
      }
    }
  } finally {
    closeSync(fd)
  }
}

const bigBody = (n: number) => ({ text: `record ${n} `.padEnd(60_000, 'x'), n })

describe.skipIf(!isRoot)('a full disk is an error with a name (issue 18)', { timeout: 180_000 }, () => {
  beforeAll(async () => {
    mnt = mkdtempSync(path.join(os.tmpdir(), 'spl-tmpfs-'))
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', mnt])
    mounted = true
    const home = path.join(mnt, 'home')
    ok(await spl(home, ['init']), 'spl init on the tmpfs')
    ;[a, b] = await Promise.all([TestDaemon.start(), TestDaemon.start({ home })])
  })

  afterAll(async () => {
    await a?.[Symbol.asyncDispose]()
    await b?.stop()
    if (mounted) execFileSync('umount', ['-l', mnt])
    rmSync(mnt, { recursive: true, force: true })
  })

  it('B survives, names DISK_FULL everywhere, resumes within seconds of space returning, and loses nothing', async () => {
    // Before: a pair that works.
    const sent: string[] = []
    for (let i = 0; i < 5; i++)
      sent.push((await a.api.post<{ id: string }>('/v1/records', { act: 'KNOW', thread: THREAD, body: bigBody(i) })).id)
    const pair = await b.api.post<PairView>('/v1/sync/pairs', { peer_did: a.did, peer_url: a.url, thread_id: THREAD })
    await expect.poll(() => b.threadRecordIds(THREAD), POLL).toHaveLength(5)

    filler = fill(mnt)
    for (let i = 5; i < 60; i++)
      sent.push((await a.api.post<{ id: string }>('/v1/records', { act: 'KNOW', thread: THREAD, body: bigBody(i) })).id)

    // The pair fails with a name, and keeps retrying (a few seconds: the old daemon died by then).
    const getPair = () => b.api.get<PairView>(`/v1/sync/pairs/${pair.pair_id}`)
    await expect.poll(async () => (await getPair()).last_error?.code, POLL).toBe('DISK_FULL')
    const failing = await getPair()
    expect(failing.state).toBe('failing')
    expect(failing.last_error?.message).toMatch(/full/)
    expect(failing.backoff_ms).toBeLessThanOrEqual(2000)
    await expect.poll(async () => (await getPair()).attempt, POLL).toBeGreaterThanOrEqual(failing.attempt + 3)
    expect((await getPair()).state).toBe('failing')
    expect((await fetch(`${b.url}/health`)).status).toBe(200)
    expect(() => process.kill(b.pid, 0)).not.toThrow()

    // An emit on B: 507 DISK_FULL with a fix, not 500.
    const emit = await fetch(`${b.url}/v1/records`, {
      method: 'POST',
      headers: { authorization: `Bearer ${b.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ act: 'KNOW', thread: 'th_local', body: bigBody(1000) }),
    })
    const envelope = (await emit.json()) as { code: string; fix?: string }
    expect(emit.status, JSON.stringify(envelope)).toBe(507)
    expect(envelope.code).toBe('DISK_FULL')
    expect(envelope.fix).toMatch(/free space/)

    // status and doctor name it.
    const status = await b.spl('status')
    expect(status.stdout).toContain('FAILING: DISK_FULL')
    const doctor = JSON.parse((await b.spl('doctor', '--json')).stdout) as { checks: { name: string; status: string; message: string }[] }
    expect(doctor.checks.find((c) => c.name === 'disk space')).toMatchObject({
      status: 'fail',
      message: expect.stringContaining('DISK_FULL'),
    })
    expect(doctor.checks.find((c) => c.name === 'failing pairs')?.message).toContain('DISK_FULL')

    // Space returns: the pair resumes by itself (backoff capped at 2 s), every record once.
    unlinkSync(filler)
    await expect.poll(() => b.threadRecordIds(THREAD), POLL).toHaveLength(sent.length)
    await expect.poll(async () => (await getPair()).state, POLL).toBe('running')
    expect(await b.threadRecordIds(THREAD)).toEqual(sent)
    const again = await b.api.post<{ id: string }>('/v1/records', { act: 'KNOW', thread: 'th_local', body: bigBody(1000) })
    expect(again.id).toMatch(/^[0-9a-f]{64}$/)
    const after = JSON.parse((await b.spl('doctor', '--json')).stdout) as { checks: { name: string; status: string }[] }
    expect(after.checks.find((c) => c.name === 'disk space')?.status).not.toBe('fail')

    // The log: the failure said once, not once per retry; the lines lost while full are counted.
    const log = readFileSync(path.join(b.home, 'logs', 'daemon.log'), 'utf8')
    const diskFullLines = log.split('\n').filter((l) => l.includes('"code":"DISK_FULL"'))
    expect(diskFullLines.length, diskFullLines.join('\n')).toBeLessThanOrEqual(1)
    expect(log).toMatch(/line\(s\) lost|pulls work again/)

    // Stopped cleanly; the database is intact and holds each record once.
    await b.stop()
    const db = new Database(path.join(b.home, 'spl.db'), { readonly: true })
    try {
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok')
      const rows = db.prepare('SELECT id FROM spl_records WHERE thread = ? ORDER BY seq').all(THREAD) as { id: string }[]
      expect(rows.map((r) => r.id)).toEqual(sent)
    } finally {
      db.close()
    }
  })
})
