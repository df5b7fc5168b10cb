import { readFileSync } from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ok, spl, TestDaemon } from '../../../test-utils/test-daemon.js'

// Issue 14's "small truths", through the real binary: what the CLI and the health door say is
// what happened.

interface PairView {
  pair_id: string
  state: string
  totals: { cursor_resets: number }
}
interface Health {
  pairs_total: number
  pairs_pulled: number
  pairs_served: number
  pairs_by_state: Record<string, number>
  subscribers: { peer_did: string; thread_id: string; live: boolean }[]
}
interface StatusJson {
  federation: { pairs: number; by_state: Record<string, number>; lines: { direction: string; thread: string; peer_did: string }[] }
}

let a: TestDaemon
let b: TestDaemon
let pairOnB: string

/** Waits until `cond` holds (20 s at most); for hooks, where expect.poll cannot run. */
async function until(cond: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + 20_000
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('timed out waiting in beforeAll')
    await new Promise((r) => setTimeout(r, 100))
  }
}

beforeAll(async () => {
  ;[a, b] = await Promise.all([TestDaemon.start(), TestDaemon.start()])
  await a.emit('th_truth', 'one')
  await b.emit('th_back', 'two')
  const p = await b.api.post<PairView>('/v1/sync/pairs', { peer_did: a.did, peer_url: a.url, thread_id: 'th_truth' })
  pairOnB = p.pair_id
  // A pulls th_back from B too: each side has one pair it pulls and one peer pulling from it.
  await a.api.post('/v1/sync/pairs', { peer_did: b.did, peer_url: b.url, thread_id: 'th_back' })
  await until(async () => (await b.threadRecordIds('th_truth')).length === 1)
  await until(async () => (await a.threadRecordIds('th_back')).length === 1)
})

afterAll(async () => {
  await Promise.all([a?.[Symbol.asyncDispose](), b?.[Symbol.asyncDispose]()])
})

const status = async (d: TestDaemon) => JSON.parse(ok(await d.spl('status', '--json'), 'spl status --json').stdout) as StatusJson
const health = (d: TestDaemon) => d.api.get<Health>('/v1/sync/health')

describe('small truths', () => {
  it('spl fleet sync reset counts in totals.cursor_resets', async () => {
    const before = (await b.api.get<PairView>(`/v1/sync/pairs/${pairOnB}`)).totals.cursor_resets
    ok(await b.spl('fleet', 'sync', 'reset', pairOnB), 'spl fleet sync reset')
    const after = await b.api.get<PairView>(`/v1/sync/pairs/${pairOnB}`)
    expect(after.totals.cursor_resets).toBe(before + 1)
    const stats = await b.api.get<{ totals: { cursor_resets: number } }>(`/v1/sync/pairs/${pairOnB}/stats`)
    expect(stats.totals.cursor_resets).toBe(before + 1)
  })

  it("spl status's pair count and /v1/sync/health's pairs_total count the same pairs, and say which", async () => {
    await expect.poll(async () => (await health(a)).pairs_served, { timeout: 20_000 }).toBe(1)
    for (const d of [a, b]) {
      const [s, h] = [await status(d), await health(d)]
      expect(s.federation.pairs).toBe(2)
      expect(h.pairs_total).toBe(s.federation.pairs)
      expect(h.pairs_pulled).toBe(s.federation.lines.filter((l) => l.direction === '←').length)
      expect(h.pairs_served).toBe(s.federation.lines.filter((l) => l.direction === '→').length)
      expect(h.pairs_by_state).toEqual({ starting: 0, paused: 0, failing: 0, stopped: 0, ...s.federation.by_state })
    }
    const help = ok(await a.spl('status', '--help'), 'spl status --help').stdout
    expect(help.replace(/\s+/g, ' ')).toContain('The count covers both directions, as `pairs_total` of GET /v1/sync/health does')
    // A removed pair is not part of the mesh on either side.
    const extra = await b.api.post<PairView>('/v1/sync/pairs', { peer_did: a.did, peer_url: a.url, thread_id: 'th_gone' })
    ok(await b.spl('fleet', 'sync', 'remove', extra.pair_id), 'spl fleet sync remove')
    expect((await health(b)).pairs_total).toBe((await status(b)).federation.pairs)
  })

  it('a subscriber whose pair was paused on its side no longer shows as live', async () => {
    const onA = async () => (await status(a)).federation.lines.filter((l) => l.direction === '→' && l.thread === 'th_truth')
    await expect.poll(onA, { timeout: 20_000 }).toHaveLength(1)
    ok(await b.spl('fleet', 'sync', 'pause', pairOnB), 'spl fleet sync pause')
    // At once, not two minutes later: B hung up its long poll.
    await expect.poll(onA, { timeout: 5_000 }).toEqual([])
    const sub = (await health(a)).subscribers.find((s) => s.thread_id === 'th_truth')
    expect(sub?.live).toBe(false)
    expect((await health(a)).pairs_served).toBe(0)
    ok(await b.spl('fleet', 'sync', 'resume', pairOnB), 'spl fleet sync resume')
    await expect.poll(onA, { timeout: 20_000 }).toHaveLength(1)
    // A kick also hangs up the long poll, but the pair asks again at once: it stays live.
    ok(await b.spl('fleet', 'sync', 'kick', pairOnB), 'spl fleet sync kick')
    await new Promise((r) => setTimeout(r, 500))
    expect(await onA()).toHaveLength(1)
  })

  it('the --peer-url help says what happens without it', async () => {
    const help = ok(await b.spl('fleet', 'sync', 'add', '--help'), 'spl fleet sync add --help').stdout.replace(/\s+/g, ' ')
    expect(help).toContain("Without it: an existing pair's URL with that peer, else its peer link's (and token), else a discovery sighting")
    expect(help).toContain('PEER_URL_REQUIRED')
    const none = await b.spl('fleet', 'sync', 'add', 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK', 'th_nowhere')
    expect(none.code).toBe(1)
    expect(none.stderr).toMatch(/^Error: PEER_URL_REQUIRED: /)
  })

  it('no MaxListenersExceededWarning in either daemon log or from the CLI', async () => {
    const r = await b.spl('status')
    expect(r.stderr).not.toContain('MaxListenersExceededWarning')
    for (const d of [a, b])
      expect(readFileSync(path.join(d.home, 'logs', 'daemon.log'), 'utf8')).not.toContain('MaxListenersExceededWarning')
  })
})

// spl itself: a run of every read-only command prints no process warning.
it('the CLI prints no process warning on its common commands', async () => {
  for (const args of [['version'], ['status'], ['thread', 'list'], ['fleet', 'sync', 'list'], ['--help']]) {
    const r = await spl(b.home, args)
    expect({ args, warning: /Warning:/.test(r.stderr) }).toEqual({ args, warning: false })
  }
})
