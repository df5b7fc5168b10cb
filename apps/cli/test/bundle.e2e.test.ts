// Issue 16, signed export/import: `spl export` of a running instance, `spl import` into fresh
// homes through the real binary — the same ids, pairs, cursors, grants and namespaces; a second
// import stores nothing; one changed byte refuses the bundle; kill -9 midway and a re-run.
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { initHome, keypairOfHome, openDb, seedHome, signedRecords } from '../../../bench/lib.js'
import { countOn } from '../../../test-utils/seeded-pair.js'
import { ok, type PairView, SPL_BIN, spl, TestDaemon } from '../../../test-utils/test-daemon.js'
import { until } from '../../../test-utils/until.js'

interface ImportOut {
  object: 'import'
  identity: 'adopted' | 'same' | 'kept'
  did: string
  source_did: string
  records: { received: number; stored: number; duplicates: number; skipped: number; rejected: Record<string, number> }
  pairs: { stored: number; duplicates: number; skipped: number }
  registry_resigned: number
}

const PEER_THREAD = 'th_bundle_peer'
const LOCAL_THREAD = 'th_bundle_local'
const THREADS = [PEER_THREAD, LOCAL_THREAD, 'th_consent', 'th_namespace_registry']

let dir: string
let a: TestDaemon // the peer B pulls from
let b: TestDaemon // the instance backed up
let bundle: string
let bPair: PairView
const homes: string[] = []

/** A path for a home that does not exist yet (a new machine). */
const newHome = () => {
  const h = path.join(dir, `home-${homes.length}`)
  homes.push(h)
  return h
}
const parse = <T>(r: { stdout: string }) => JSON.parse(r.stdout) as T
const view = async (d: TestDaemon) => ({
  did: d.did,
  ids: Object.fromEntries(await Promise.all(THREADS.map(async (t) => [t, await d.threadRecordIds(t)] as const))) as Record<
    string,
    string[]
  >,
  pairs: (await d.api.get<{ data: PairView[] }>('/v1/sync/pairs')).data.map((p) => ({
    pair_id: p.pair_id,
    thread_id: p.thread_id,
    peer_did: p.peer_did,
    cursor: p.cursor,
  })),
  namespaces: (await d.api.get<{ data: { namespace: string; status: string }[] }>('/v1/namespaces')).data.map((n) => [
    n.namespace,
    n.status,
  ]),
  grants: (await d.api.get<{ data: { grant_id: string; target_namespace: string; revoked?: boolean }[] }>('/v1/consent/grants')).data.map(
    (g) => [g.grant_id, g.target_namespace],
  ),
  bindings: (await d.api.get<{ data: unknown[] }>('/v1/consent/bindings')).data,
})

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'spl-bundle-'))
  a = await TestDaemon.start()
  for (let i = 0; i < 30; i++) await a.emit(PEER_THREAD, `from the peer ${i}`)
  b = await TestDaemon.start()
  ok(await b.spl('namespace', 'create', 'acme'), 'namespace create')
  ok(await b.spl('consent', 'grant', '--to-namespace', 'partner', '--from-namespace', 'acme', '--hash-levels', 'L0,L1'), 'grant')
  ok(await b.spl('consent', 'bind', a.did, '--namespace', 'partner'), 'bind')
  for (let i = 0; i < 20; i++) await b.emit(LOCAL_THREAD, `local ${i}`, i % 2 ? { namespace: 'acme' } : {})
  ok(await b.spl('fleet', 'sync', 'add', a.did, PEER_THREAD, '--peer-url', a.url), 'fleet sync add')
  await until('B pulled the peer thread', async () => ((await countOn(b, PEER_THREAD)) >= 30 ? true : undefined), 30_000, 100)
  await until(
    'the cursor is committed',
    async () => {
      const p = (await b.api.get<{ data: PairView[] }>('/v1/sync/pairs')).data[0]
      return p?.cursor && p.totals.records_stored >= 30 ? p : undefined
    },
    10_000,
    100,
  )
  bundle = path.join(dir, 'b.spl')
  // The daemon keeps running while it is exported.
  ok(await b.spl('export', '--out', bundle), 'spl export')
  bPair = (await b.api.get<{ data: PairView[] }>('/v1/sync/pairs')).data[0]!
}, 120_000)

afterAll(async () => {
  await a?.[Symbol.asyncDispose]()
  await b?.[Symbol.asyncDispose]()
  for (const h of homes) {
    await spl(h, ['serve', '--stop'])
    rmSync(h, { recursive: true, force: true })
  }
  rmSync(dir, { recursive: true, force: true })
})

describe('spl export / spl import', () => {
  it('into a fresh home: the same ids, pairs, cursors, grants and namespaces; it pulls on where it left off; a second import stores nothing', async () => {
    const before = await view(b)
    expect(before.ids[PEER_THREAD]).toHaveLength(30)
    expect(before.namespaces).toContainEqual(['acme', 'active'])
    expect(before.grants).toHaveLength(1)
    expect(statSync(bundle).mode & 0o777).toBe(0o600)
    await b.stop() // the instance moves: the old machine goes away

    const home = newHome()
    const r = parse<ImportOut>(ok(await spl(home, ['import', bundle, '--json']), 'spl import'))
    expect(r).toMatchObject({ identity: 'adopted', did: b.did, source_did: b.did })
    const total = Object.values(before.ids).reduce((s, ids) => s + ids.length, 0)
    expect(r.records).toEqual({ received: total, stored: total, duplicates: 0, skipped: 0, rejected: {} })
    expect(r.pairs).toMatchObject({ stored: 1, duplicates: 0 })

    const again = parse<ImportOut>(ok(await spl(home, ['import', bundle, '--json']), 'second spl import'))
    expect(again.records).toEqual({ received: total, stored: 0, duplicates: total, skipped: 0, rejected: {} })
    expect(again.pairs).toMatchObject({ stored: 0, duplicates: 1 })
    expect(again.identity).toBe('same')

    const c = await TestDaemon.start({ home })
    expect(await view(c)).toEqual(before)
    // It continues pulling where B left off: the next record of A is the only one it receives.
    const id = await a.emit(PEER_THREAD, 'after the move')
    await until(
      'C pulled the new record',
      async () => ((await c.threadRecordIds(PEER_THREAD)).includes(id) ? true : undefined),
      30_000,
      100,
    )
    const p = (await c.api.get<{ data: PairView[] }>('/v1/sync/pairs')).data[0]!
    expect(p.totals.cursor_resets).toBe(bPair.totals.cursor_resets)
    expect(p.totals.records_stored).toBe(bPair.totals.records_stored + 1)
    expect(await countOn(c, PEER_THREAD)).toBe(31)
    await c.stop()
    // Imported while the daemon ran: refused (the import takes the home's lock).
    const c2 = await TestDaemon.start({ home })
    const busy = await spl(home, ['import', bundle])
    expect(busy.code).toBe(1)
    expect(busy.stderr).toMatch(/^Error: DAEMON_RUNNING: .* Fix: /)
    await c2.stop()
  }, 120_000)

  it('a bundle with one changed byte is refused with the reason, and nothing is stored', async () => {
    const bytes = readFileSync(bundle)
    const manifestAt = 512 // the data of the first member
    const recordsAt = (() => {
      // The header of records.ndjson.gz, then the middle of its data.
      const at = bytes.indexOf(Buffer.from('records.ndjson.gz\0'))
      const size = Number.parseInt(bytes.toString('ascii', at + 124, at + 135), 8)
      return at + 512 + Math.floor(size / 2)
    })()
    const cases: [string, number][] = [
      ['the manifest', manifestAt + 40],
      ['a record', recordsAt],
      ['a header', bytes.indexOf(Buffer.from('pairs.ndjson.gz\0')) + 140],
      ['the padding', manifestAt + Number.parseInt(bytes.toString('ascii', 124, 135), 8) + 3],
      ['the end', bytes.length - 10],
    ]
    for (const [what, at] of cases) {
      const bad = Buffer.from(bytes)
      bad[at] = bad[at]! ^ 0x01
      const file = path.join(dir, 'bad.spl')
      writeFileSync(file, bad)
      const home = newHome()
      const r = await spl(home, ['import', file])
      expect(r.code, what).toBe(1)
      expect(r.stderr, what).toMatch(/^Error: BUNDLE_REJECTED: .* is refused: .+; nothing was stored\. Fix: /)
      expect(r.stderr.trim().split('\n'), what).toHaveLength(1)
      expect(existsSync(path.join(home, 'spl.db')), what).toBe(false)
      const json = await spl(home, ['import', file, '--json'])
      expect(JSON.parse(json.stderr)).toMatchObject({ code: 'BUNDLE_REJECTED' })
    }
    // A dry run of the intact bundle checks everything and stores nothing.
    const home = newHome()
    const dry = parse<ImportOut>(ok(await spl(home, ['import', bundle, '--dry-run', '--json']), 'dry run'))
    expect(dry.records.rejected).toEqual({})
    expect(dry.records.stored).toBe(dry.records.received)
    expect(existsSync(home)).toBe(false)
  }, 120_000)

  it('without the key into another instance: its namespaces and grants are signed anew, so its records pass', async () => {
    const only = path.join(dir, 'local.spl')
    const b2 = await TestDaemon.start({ home: b.home })
    ok(await b2.spl('export', '--out', only, '--no-identity', '--threads', LOCAL_THREAD), 'export --no-identity')
    await b2.stop()
    const manifest = JSON.parse(
      readFileSync(only)
        .subarray(512, 512 + 4096)
        .toString('utf8')
        .split('\0')[0]!,
    ) as {
      identity: boolean
      members: { name: string }[]
    }
    expect(manifest.identity).toBe(false)
    expect(manifest.members.map((m) => m.name)).not.toContain('identity.jwk')
    const other = await initHome('spl-bundle-other-')
    homes.push(other)
    const r = parse<ImportOut>(ok(await spl(other, ['import', only, '--json']), 'import into another instance'))
    expect(r.identity).toBe('kept')
    expect(r.did).not.toBe(b.did)
    expect(r.records.rejected).toEqual({})
    expect(r.registry_resigned).toBeGreaterThanOrEqual(3) // acme, the grant, the binding
    const d = await TestDaemon.start({ home: other })
    const v = await view(d)
    expect(v.ids[LOCAL_THREAD]).toHaveLength(20)
    expect(v.namespaces).toContainEqual(['acme', 'active'])
    expect(v.grants.map((g) => g[1])).toEqual(['partner'])
    expect(v.pairs).toEqual([]) // --threads left the peer thread's pair out
    await d.stop()
  }, 120_000)

  it('an import killed with kill -9 midway and run again ends with every record once', async () => {
    const N = 30_000
    const src = await initHome('spl-bundle-big-')
    homes.push(src)
    await seedHome(src, await signedRecords(await keypairOfHome(src), 'th_bundle_big', N))
    const big = path.join(dir, 'big.spl')
    ok(await spl(src, ['export', '--out', big]), 'export of the big home')
    const home = newHome()
    const child = spawn(process.execPath, [SPL_BIN, 'import', big], {
      env: { ...process.env, SPL_MDNS: 'off', SYNCROPEL_HOME: home },
      stdio: 'ignore',
    })
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)))
    // Midway: once some batches are committed, and well before the end.
    const stored = async () => {
      if (!existsSync(path.join(home, 'spl.db'))) return 0
      const { db, sqlite } = await openDb(path.join(home, 'spl.db'))
      try {
        return (sqlite.prepare('select count(*) as n from spl_records').get() as { n: number }).n
      } catch {
        return 0
      } finally {
        await db.destroy()
      }
    }
    const seen = await until('the import is under way', async () => ((await stored()) >= 3000 ? await stored() : undefined), 60_000, 20)
    child.kill('SIGKILL')
    expect(await exited).toBeNull()
    const partial = await stored()
    expect(seen).toBeLessThan(N)
    expect(partial).toBeLessThan(N)

    const r = parse<ImportOut>(ok(await spl(home, ['import', big, '--json']), 're-run after kill -9'))
    expect(r.records.stored + r.records.duplicates).toBe(N)
    expect(r.records.duplicates).toBe(partial)
    expect(r.records.rejected).toEqual({})
    const d = await TestDaemon.start({ home })
    const ids: string[] = []
    for (let after = '0'; ; ) {
      const page = await d.api.get<{ data: { id: string }[]; next: string | null }>(
        `/v1/threads/th_bundle_big/records?after=${after}&limit=10000`,
      )
      ids.push(...page.data.map((e) => e.id))
      if (page.next === null) break
      after = page.next
    }
    expect(ids).toHaveLength(N)
    expect(new Set(ids).size).toBe(N)
    await d.stop()
  }, 240_000)

  it('--help shows examples; a missing file is one line with a fix', async () => {
    const help = ok(await spl(dir, ['import', '--help']), 'help')
    expect(help.stdout).toContain('spl import spl-backup.spl --dry-run')
    expect(ok(await spl(dir, ['export', '--help']), 'help').stdout).toContain('--no-identity')
    const missing = await spl(dir, ['import', path.join(dir, 'nope.spl')])
    expect(missing.code).toBe(1)
    expect(missing.stderr).toMatch(/^Error: FILE_NOT_FOUND: .* Fix: /)
  })
})
