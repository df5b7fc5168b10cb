// Issue 13, convergence without operator chores, with real `spl` processes. A holds 100,000
// records of th_conv (seeded into its store before it starts) and 100 in namespace `partner`
// that B, reading as `default`, may not see. B pulls. Then, on A only:
//   a grant partner → default without L0 → B gets the 100 as stubs within a long-poll cycle,
//   no reset, and only about the bytes of those 100 (no replay of the 100,000);
//   a grant with L0 → the stubs become full records;
//   revoking both → a partner record emitted after is not served.
// And a NAMESPACE_REJECTED on B is fixed by `spl namespace create` on B alone.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { countOn as countIn, seededPair } from '../../../test-utils/seeded-pair.js'
import { ok, type TestDaemon } from '../../../test-utils/test-daemon.js'
import { until } from '../../../test-utils/until.js'

const THREAD = 'th_conv'
const N = 100_000

interface PairOut {
  pair_id: string
  cursor: string | null
  totals: { records_stored: number; duplicates: number; bytes_received: number; cursor_resets: number; rejected: Record<string, number> }
}
interface Envelope {
  id: string
  redacted?: boolean
  record: { body: Record<string, unknown> }
}

let a: TestDaemon
let b: TestDaemon
let pairId: string
const partner: string[] = []

const pair = async () => (await b.api.get<{ data: PairOut[] }>('/v1/sync/pairs')).data.find((p) => p.pair_id === pairId)!
const countOn = (d: TestDaemon, thread = THREAD) => countIn(d, thread)
/** B's copies of the partner records (absent ones left out). */
async function partnerOnB(): Promise<Envelope[]> {
  const got = await Promise.all(
    partner.map((id) =>
      b.api.get<Envelope>(`/v1/records/${id}`).then(
        (e) => e,
        () => null,
      ),
    ),
  )
  return got.filter((e): e is Envelope => e !== null)
}

beforeAll(async () => {
  ;({ a, b, pairId } = await seededPair({
    prefix: 'spl-conv',
    thread: THREAD,
    n: N,
    beforeB: async (a) => {
      ok(await a.spl('namespace', 'create', 'partner'), 'namespace create')
      for (let i = 0; i < 100; i++) partner.push(await a.emit(THREAD, `partner record ${i}`, { namespace: 'partner' }))
    },
  }))
}, 240_000)

afterAll(async () => {
  await a?.[Symbol.asyncDispose]()
  await b?.[Symbol.asyncDispose]()
})

describe('a grant reaches back', () => {
  it('hidden → a grant without L0 → B holds the 100 as stubs within a long-poll cycle, no reset, no replay', async () => {
    expect(await partnerOnB()).toEqual([])
    const before = await pair()
    ok(await a.spl('consent', 'grant', '--from-namespace', 'partner', '--to-namespace', 'default', '--hash-levels', 'L1'), 'grant')
    const t0 = Date.now()
    const stubs = await until('100 stubs on B', async () => {
      const got = await partnerOnB()
      return got.length === 100 ? got : undefined
    })
    const ms = Date.now() - t0
    expect(stubs.every((e) => e.redacted === true && e.record.body['redacted'] === true)).toBe(true)
    expect(ms).toBeLessThan(10_000) // a long poll is woken at once by the grant
    const after = await pair()
    expect(after.totals.cursor_resets).toBe(before.totals.cursor_resets)
    const bytes = after.totals.bytes_received - before.totals.bytes_received
    console.log(`[grant] 100 revealed as stubs on a ${N}-record thread: ${bytes} bytes pulled, ${ms} ms`)
    // The 100,000 already held are not sent again: ~50 MB would be.
    expect(bytes).toBeLessThan(200 * 1024)
    expect(await countOn(b)).toBe(N + 100)
  })

  it('a grant with L0 → the stubs become the full records', async () => {
    // A full record needs its namespace here too (SPEC 7.2; a stub does not): B's operator makes it.
    ok(await b.spl('namespace', 'create', 'partner'), 'namespace create partner on B')
    const before = await pair()
    ok(await a.spl('consent', 'grant', '--from-namespace', 'partner', '--to-namespace', 'default', '--hash-levels', 'L0,L1'), 'grant L0')
    const full = await until('100 full records on B', async () => {
      const got = await partnerOnB()
      return got.length === 100 && got.every((e) => !e.redacted) ? got : undefined
    })
    expect(full.map((e) => e.record.body['text']).sort()).toEqual(Array.from({ length: 100 }, (_, i) => `partner record ${i}`).sort())
    const after = await pair()
    expect(after.totals.cursor_resets).toBe(before.totals.cursor_resets)
    expect(after.totals.bytes_received - before.totals.bytes_received).toBeLessThan(200 * 1024)
    expect(await countOn(b)).toBe(N + 100)
  })

  it('revoking the grants stops what is served from then on', async () => {
    const { grants } = JSON.parse(ok(await a.spl('consent', 'list', '--json'), 'consent list').stdout) as { grants: { grant_id: string }[] }
    for (const g of grants) ok(await a.spl('consent', 'revoke', g.grant_id), 'revoke')
    const late = await a.emit(THREAD, 'after the revocation', { namespace: 'partner' })
    const marker = await a.emit(THREAD, 'a default record after it')
    await until('the default record on B', async () =>
      (await b.api.get(`/v1/records/${marker}`).then(
        () => true,
        () => false,
      ))
        ? true
        : undefined,
    )
    expect(
      await b.api.get(`/v1/records/${late}`).then(
        () => true,
        () => false,
      ),
    ).toBe(false)
  })
})

describe('a fixed rejection retries itself', () => {
  it('NAMESPACE_REJECTED on B → spl namespace create on B → the records are stored within seconds, once; each rejection says waiting and its fix', async () => {
    // B's own view: A's records of `lab` are served to B (a grant lab → default with L0 on A), but B has no `lab`.
    ok(await a.spl('namespace', 'create', 'lab'), 'namespace create lab on A')
    ok(await a.spl('consent', 'grant', '--from-namespace', 'lab', '--to-namespace', 'default', '--hash-levels', 'L0,L1'), 'grant lab')
    const lab: string[] = []
    for (let i = 0; i < 5; i++) lab.push(await a.emit('th_lab', `lab ${i}`, { namespace: 'lab' }))
    const add = ok(await b.spl('fleet', 'sync', 'add', a.did, 'th_lab', '--peer-url', a.url, '--json'), 'fleet sync add th_lab')
    const labPair = (JSON.parse(add.stdout) as { pair_id: string }).pair_id
    const rejected = await until('NAMESPACE_REJECTED on B', async () => {
      const p = (await b.api.get<{ data: PairOut[] }>('/v1/sync/pairs')).data.find((x) => x.pair_id === labPair)
      return p && (p.totals.rejected['NAMESPACE_REJECTED'] ?? 0) >= 5 ? p : undefined
    })
    expect(await countOn(b, 'th_lab')).toBe(0)
    const waiting = JSON.parse(ok(await b.spl('fleet', 'sync', 'rejections', labPair, '--json'), 'rejections').stdout) as {
      data: { code: string; final: boolean; fix?: string }[]
    }
    expect(waiting.data.length).toBeGreaterThanOrEqual(5)
    for (const r of waiting.data) expect(r).toMatchObject({ code: 'NAMESPACE_REJECTED', final: false, fix: 'spl namespace create lab' })
    ok(await b.spl('namespace', 'create', 'lab'), 'namespace create lab on B')
    await until('the 5 lab records on B', async () => ((await countOn(b, 'th_lab')) === 5 ? true : undefined), 15_000)
    const p = (await b.api.get<{ data: PairOut[] }>('/v1/sync/pairs')).data.find((x) => x.pair_id === labPair)!
    expect(p.totals.records_stored).toBe(5)
    expect(p.totals.cursor_resets).toBe(rejected.totals.cursor_resets)
    for (const id of lab)
      expect(
        await b.api.get(`/v1/records/${id}`).then(
          () => true,
          () => false,
        ),
      ).toBe(true)
  })
})
