import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ok, type PairView, sh, spl, TestDaemon } from '../../../test-utils/test-daemon.js'

/** A pair as `GET /v1/sync/pairs/{id}` shows it (the fields these tests read). */

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer()
    srv.once('error', () => resolve(false))
    srv.listen(port, '0.0.0.0', () => srv.close(() => resolve(true)))
  })
}

function anyFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.once('error', reject)
    srv.listen(0, '0.0.0.0', () => {
      const { port } = srv.address() as net.AddressInfo
      srv.close(() => resolve(port))
    })
  })
}

/** The port the seed uses when it is free here, else any free one. */
async function pickPort(preferred: number, not: number[] = []): Promise<number> {
  if (!not.includes(preferred) && (await canListen(preferred))) return preferred
  for (;;) {
    const p = await anyFreePort()
    if (!not.includes(p)) return p
  }
}

/** Homes of daemons started by a shell script: stopped (and killed if need be) and removed on dispose. */
class ScriptHomes {
  readonly a = mkdtempSync(path.join(os.tmpdir(), 'spl-a-'))
  readonly b = mkdtempSync(path.join(os.tmpdir(), 'spl-b-'))

  async [Symbol.asyncDispose](): Promise<void> {
    for (const home of [this.a, this.b]) {
      const info = path.join(home, 'run', 'daemon.json')
      // run/daemon.json is removed when a daemon exits: only a running one needs stopping.
      const pid = existsSync(info) ? (JSON.parse(readFileSync(info, 'utf8')) as { pid: number }).pid : null
      if (pid !== null) {
        await spl(home, ['serve', '--stop'])
        try {
          process.kill(pid, 'SIGKILL')
        } catch {
          // already gone
        }
      }
      rmSync(home, { recursive: true, force: true })
    }
  }
}

const THREAD = 'th_federation_demo'

describe('the seed walk-through (federation-pairing.md), run literally with bash', () => {
  it('pairs two daemons both ways; pause, resume and remove behave as documented', async () => {
    await using homes = new ScriptHomes()
    const PA = await pickPort(9200)
    const PB = await pickPort(9250, [PA])
    const env = { HOME_A: homes.a, HOME_B: homes.b, PA: String(PA), PB: String(PB) }
    const run = async (script: string, extra: Record<string, string> = {}) =>
      ok(await sh(`unset SPL_DAEMON_URL\n${script}`, { ...env, ...extra }), script.trim().split('\n')[0]!)

    // 1. Start both daemons
    await run(`
# Terminal 1: instance A
export SYNCROPEL_HOME="$HOME_A"
spl init --force
spl serve --daemon --port "$PA" --host 0.0.0.0
`)
    await run(`
# Terminal 2: instance B
export SYNCROPEL_HOME="$HOME_B"
spl init --force
spl serve --daemon --port "$PB" --host 0.0.0.0
`)

    // 2. Capture each instance's DID
    const dids = await run(`
export DID_A=$(curl -s http://localhost:$PA/v1/identity | jq -r '.did')
export DID_B=$(curl -s http://localhost:$PB/v1/identity | jq -r '.did')
echo "$DID_A"
echo "$DID_B"
`)
    const [DID_A, DID_B] = dids.stdout.trim().split('\n')
    expect(DID_A).toMatch(/^did:key:z6Mk/)
    expect(DID_B).toMatch(/^did:key:z6Mk/)
    expect(DID_A).not.toBe(DID_B)
    const withDids = { DID_A: DID_A!, DID_B: DID_B! }

    // 3. Create a pair: propagate A → B (on B)
    const add = await run(
      `
export SYNCROPEL_HOME="$HOME_B"
spl fleet sync add \\
  --peer-url http://localhost:$PA \\
  "$DID_A" th_federation_demo
`,
      withDids,
    )
    const pairBA = add.stdout.trim().split(/\s+/)[0]!
    expect(pairBA).toMatch(/^[0-9a-f]{16}$/)
    expect(add.stdout).toContain(THREAD)

    // … or via HTTP: the pair exists already, so the same pair comes back with 200.
    const viaCurl = await run(
      `
curl -s -w '\\n%{http_code}\\n' -X POST http://localhost:$PB/v1/sync/pairs \\
  -H "content-type: application/json" \\
  -d "{\\"peer_did\\":\\"$DID_A\\",\\"peer_url\\":\\"http://localhost:$PA\\",\\"thread_id\\":\\"th_federation_demo\\"}"
`,
      withDids,
    )
    const [curlBody, curlStatus] = viaCurl.stdout.trim().split('\n')
    expect(curlStatus).toBe('200')
    expect(curlBody).toContain('"pair_id"')
    const curlPair = JSON.parse(curlBody!) as PairView & { warning?: string }
    expect(curlPair.pair_id).toBe(pairBA)
    // B listens on 0.0.0.0: no loopback-bind warning.
    expect(curlPair.warning).toBeUndefined()

    // 4. Emit on A, observe on B
    const emitted = await run(`SYNCROPEL_HOME="$HOME_A" spl intend --thread th_federation_demo "hello from A"`)
    const idA = emitted.stdout.trim()
    expect(idA).toMatch(/^[0-9a-f]{64}$/)
    const recordsOn = async (home: 'HOME_A' | 'HOME_B') =>
      (await run(`SYNCROPEL_HOME="$${home}" spl thread records th_federation_demo`)).stdout
    await expect.poll(() => recordsOn('HOME_B'), { timeout: 20_000 }).toMatch(new RegExp(`^${idA.slice(0, 12)} .*hello from A$`, 'm'))

    // 5. Go bidirectional
    const addOnA = await run(
      `
SYNCROPEL_HOME="$HOME_A" spl fleet sync add \\
  --peer-url http://localhost:$PB \\
  "$DID_B" th_federation_demo
`,
      withDids,
    )
    const pairAB = addOnA.stdout.trim().split(/\s+/)[0]!
    expect(pairAB).toMatch(/^[0-9a-f]{16}$/)
    expect(pairAB).not.toBe(pairBA)
    const idB = (await run(`SYNCROPEL_HOME="$HOME_B" spl intend --thread th_federation_demo "hello from B"`)).stdout.trim()
    // Polls read the HTTP API (one `spl` process costs seconds on a busy machine); the CLI is checked after.
    const idsOn = async (port: number) => {
      const res = await fetch(`http://127.0.0.1:${port}/v1/threads/${THREAD}/records?limit=10000`)
      return ((await res.json()) as { data: { id: string }[] }).data.map((e) => e.id)
    }
    await expect.poll(() => idsOn(PA), { timeout: 20_000 }).toContain(idB)
    expect(await recordsOn('HOME_A')).toContain('hello from B')
    // One more record on A: B pulls A's store in order, so once it has this one it has seen
    // everything A held before it — including A's copy of "hello from B", which must not echo back.
    const emitOnA = async (text: string) =>
      (
        (await (
          await fetch(`http://127.0.0.1:${PA}/v1/records`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ act: 'INTEND', thread: THREAD, body: { text } }),
          })
        ).json()) as { id: string }
      ).id
    const idA2 = await emitOnA('second from A')
    await expect.poll(() => idsOn(PB), { timeout: 20_000 }).toContain(idA2)

    const cliIdsOn = async (home: 'HOME_A' | 'HOME_B') => {
      const out = await run(`SYNCROPEL_HOME="$${home}" spl thread records th_federation_demo --json`)
      return (JSON.parse(out.stdout) as { id: string }[]).map((e) => e.id)
    }
    const expected = [idA, idB, idA2].sort()
    // Each side holds each record exactly once.
    expect([...(await cliIdsOn('HOME_A'))].sort()).toEqual(expected)
    expect([...(await cliIdsOn('HOME_B'))].sort()).toEqual(expected)
    // No echo: B received only A's two records from A, A received only B's one record from B.
    const pairJson = async (port: number, id: string) =>
      (await (await fetch(`http://127.0.0.1:${port}/v1/sync/pairs/${id}`)).json()) as PairView
    const onB = await pairJson(PB, pairBA)
    const onA = await pairJson(PA, pairAB)
    expect(onB.totals).toMatchObject({ records_received: 2, records_stored: 2, duplicates: 0 })
    expect(onA.totals).toMatchObject({ records_received: 1, records_stored: 1, duplicates: 0 })

    // 6. Inspect pair status
    const list = await run(`SYNCROPEL_HOME="$HOME_B" spl fleet sync list`)
    const line = list.stdout.split('\n').find((l) => l.startsWith(pairBA))
    expect(line).toBeDefined()
    expect(line).toMatch(/\brunning\b/)
    expect(line).toContain(THREAD)
    const statusOf = async (id: string) =>
      (await run(`SYNCROPEL_HOME="$HOME_B" spl fleet sync status ${id}`)).stdout.match(/^state\s+(\S+)/m)?.[1]
    expect(await statusOf(pairBA)).toBe('running')

    const pause = await run(`SYNCROPEL_HOME="$HOME_B" spl fleet sync pause ${pairBA}`)
    expect(pause.stdout).toContain('paused')
    expect(await statusOf(pairBA)).toBe('paused')
    // Paused really means not pulling: a record emitted on A does not arrive.
    const whilePaused = await emitOnA('while paused')
    await new Promise((r) => setTimeout(r, 1500))
    expect(await idsOn(PB)).not.toContain(whilePaused)

    const resume = await run(`SYNCROPEL_HOME="$HOME_B" spl fleet sync resume ${pairBA}`)
    expect(resume.stdout).toContain('running')
    expect(await statusOf(pairBA)).toBe('running')
    await expect.poll(() => idsOn(PB), { timeout: 20_000 }).toContain(whilePaused)

    const remove = await run(`SYNCROPEL_HOME="$HOME_B" spl fleet sync remove ${pairBA}`)
    expect(remove.stdout).toContain('stopped')
    const after = await run(`SYNCROPEL_HOME="$HOME_B" spl fleet sync list`)
    expect(after.stdout).not.toContain(pairBA)
    const all = await run(`SYNCROPEL_HOME="$HOME_B" spl fleet sync list --all`)
    const tomb = all.stdout.split('\n').find((l) => l.startsWith(pairBA))
    expect(tomb).toMatch(/\bstopped\b/)

    // Stop both daemons, as an operator would.
    await run(`SYNCROPEL_HOME="$HOME_A" spl serve --stop`)
    await run(`SYNCROPEL_HOME="$HOME_B" spl serve --stop`)
    const down = await sh(`curl -s -o /dev/null -w '%{http_code}' http://localhost:$PA/health || true`, env)
    expect(down.stdout).toBe('000')
  })
})

describe('two daemons started by the test helper', () => {
  // Shared by the tests below (each uses its own thread): starting a daemon costs seconds here.
  let a: TestDaemon
  let b: TestDaemon
  beforeAll(async () => {
    a = await TestDaemon.start()
    b = await TestDaemon.start()
  })
  afterAll(async () => {
    await b?.[Symbol.asyncDispose]()
    await a?.[Symbol.asyncDispose]()
  })

  it('spl sync <thread> from <url> pulls the thread once, prints the count; --json gives the result object', async () => {
    const thread = 'th_x'
    const ids = [await a.emit(thread, 'one'), await a.emit(thread, 'two'), await a.emit(thread, 'three')]
    const url = `http://127.0.0.1:${new URL(a.url).port}`

    const r = await b.spl('sync', thread, 'from', url)
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/pulled 3 record\(s\): 3 new, 0 duplicate\(s\), 0 rejected; cursor \S+/)
    expect(await b.threadRecordIds(thread)).toEqual(ids)
    // One-off: no pair is left behind.
    const pairs = await b.api.get<{ data: PairView[] }>('/v1/sync/pairs?all=true')
    expect(pairs.data.filter((p) => p.thread_id === thread)).toEqual([])

    const j = await b.spl('sync', thread, 'from', url, '--json')
    expect(j.code, j.stderr).toBe(0)
    const result = JSON.parse(j.stdout) as Record<string, unknown>
    expect(result).toMatchObject({
      object: 'sync_result',
      peer_did: a.did,
      thread,
      received: 3,
      stored: 0,
      duplicates: 3,
      rejected: 0,
    })
    expect(typeof result['cursor']).toBe('string')
    expect(await b.threadRecordIds(thread)).toEqual(ids)

    // Nobody listens there: an error with a code, not a hang or a crash.
    const down = await b.spl('sync', thread, 'from', `http://127.0.0.1:${await anyFreePort()}`)
    expect(down.code).not.toBe(0)
    expect(down.stderr).toMatch(/Error: [A-Z_]+/)
  })

  it('a source that goes away: the pair fails with CONNECT_REFUSED, backs off, recovers, and holds every record exactly once', async () => {
    const thread = 'th_outage'
    const before = [await a.emit(thread, 'before 1'), await a.emit(thread, 'before 2')]
    const { pair_id } = await b.api.post<PairView>('/v1/sync/pairs', {
      peer_did: a.did,
      peer_url: a.url,
      thread_id: thread,
    })
    const getPair = () => b.api.get<PairView>(`/v1/sync/pairs/${pair_id}`)
    await expect.poll(() => b.threadRecordIds(thread), { timeout: 15_000 }).toEqual(before)
    expect((await getPair()).state).toBe('running')

    await a.stop()
    await expect.poll(async () => (await getPair()).last_error?.code, { timeout: 15_000 }).toBe('CONNECT_REFUSED')
    const first = await getPair()
    expect(first.state).toBe('failing')
    // Exponential backoff: attempt and backoff_ms grow from one failure to the next.
    await expect.poll(async () => (await getPair()).attempt, { timeout: 15_000 }).toBeGreaterThan(first.attempt)
    const second = await getPair()
    expect(second.state).toBe('failing')
    expect(second.last_error?.code).toBe('CONNECT_REFUSED')
    expect(second.backoff_ms).toBeGreaterThan(first.backoff_ms)
    await expect.poll(async () => (await getPair()).attempt, { timeout: 15_000 }).toBeGreaterThan(second.attempt)
    const third = await getPair()
    expect(third.backoff_ms).toBeGreaterThan(second.backoff_ms)
    const status = await b.spl('fleet', 'sync', 'status', pair_id)
    expect(status.stdout).toMatch(/^state\s+failing/m)
    expect(status.stdout).toContain('CONNECT_REFUSED')

    // Same home, same port (afterAll disposes whichever daemon runs on A's home).
    const url = a.url
    a = await a.restart()
    expect(a.url).toBe(url)
    const afterIds = [await a.emit(thread, 'after 1'), await a.emit(thread, 'after 2'), await a.emit(thread, 'after 3')]
    await expect.poll(async () => (await getPair()).state, { timeout: 30_000 }).toBe('running')
    const all = await a.threadRecordIds(thread)
    expect(all).toEqual([...before, ...afterIds])
    await expect.poll(() => b.threadRecordIds(thread), { timeout: 15_000 }).toEqual(all)
    const final = await getPair()
    expect(final.last_error).toBeNull()
    expect(final.totals.records_stored).toBe(5)
  })
})
