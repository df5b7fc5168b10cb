import { Keypair } from '@spl/identity'
import { createRequestProof, PROOF_HEADER } from '@spl/transport'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ok, type PairView, TestDaemon } from '../../../test-utils/test-daemon.js'
import { FakePeer, page, signedEnvelope } from './fake-peer.js'

// Issue 18, "Nothing can stall a pair": real daemons (and a fake peer for what no honest source
// sends), each case a pair that used to stop for good or spin.

type Pair = PairView & { notice: { code: string; message: string } | null }

let a: TestDaemon
let b: TestDaemon
let fake: FakePeer

beforeAll(async () => {
  ;[a, b, fake] = await Promise.all([TestDaemon.start(), TestDaemon.start(), FakePeer.start()])
})

afterAll(async () => {
  await Promise.all([a?.[Symbol.asyncDispose](), b?.[Symbol.asyncDispose](), fake?.close()])
})

const getPair = (id: string) => b.api.get<Pair>(`/v1/sync/pairs/${id}`)
const POLL = { timeout: 60_000, interval: 200 }

describe('nothing can stall a pair (issue 18)', { timeout: 120_000 }, () => {
  it('450 records of 20,000 CJK characters (27 MB of UTF-8) reach B: no page is larger than B reads', async () => {
    const thread = 'th_cjk'
    const text = '漢字かな交じり文'.repeat(2500) // 20,000 characters, 60,000 bytes of UTF-8
    const ids: string[] = []
    for (let i = 0; i < 450; i += 10) {
      const batch = await Promise.all(
        Array.from({ length: 10 }, (_, j) => a.api.post<{ id: string }>('/v1/records', { act: 'KNOW', thread, body: { text, n: i + j } })),
      )
      ids.push(...batch.map((r) => r.id))
    }
    const pair = await b.api.post<Pair>('/v1/sync/pairs', { peer_did: a.did, peer_url: a.url, thread_id: thread })
    await expect.poll(async () => (await getPair(pair.pair_id)).totals.records_stored, POLL).toBe(450)
    const p = await getPair(pair.pair_id)
    expect(p.state).toBe('running')
    expect(p.last_error).toBeNull()
    expect(p.totals.pulls).toBeGreaterThanOrEqual(4) // more than one page: each under 8 MiB of UTF-8
    expect(new Set(await b.threadRecordIds(thread))).toEqual(new Set(ids))
  })

  it('an emit over 1 MiB of canonical UTF-8 is 413 RECORD_TOO_LARGE with a fix; A stays up', async () => {
    const res = await fetch(`${a.url}/v1/records`, {
      method: 'POST',
      headers: { authorization: `Bearer ${a.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ act: 'KNOW', thread: 'th_big', body: { text: '漢'.repeat(400_000) } }),
    })
    expect(res.status).toBe(413)
    const env = (await res.json()) as { object: string; code: string; fix?: string }
    expect(env).toMatchObject({ object: 'error', code: 'RECORD_TOO_LARGE' })
    expect(env.fix).toBeTruthy()
    expect(await a.threadRecordIds('th_big')).toEqual([])
    expect((await fetch(`${a.url}/health`)).status).toBe(200)
  })

  it('an oversized record from a peer is rejected as INVALID_RECORD and the records after it arrive', async () => {
    const thread = 'th_oversized_in'
    const big = signedEnvelope(fake.keypair, thread, 0, { text: '漢'.repeat(400_000) })
    const after = signedEnvelope(fake.keypair, thread, 1, { text: 'after the big one' })
    fake.on(thread, async (call) => {
      if (call.since === null) return { kind: 'json', body: page([big, after], 'f.2') }
      return { kind: 'json', body: page([], 'f.2'), delayMs: call.feed === 'longpoll' ? 1000 : 0 }
    })
    const pair = await b.api.post<Pair>('/v1/sync/pairs', { peer_did: fake.did, peer_url: fake.url, thread_id: thread })
    await expect.poll(() => b.threadRecordIds(thread), POLL).toEqual([after.id])
    const p = await getPair(pair.pair_id)
    expect(p.state).toBe('running')
    expect(p.totals.rejected).toEqual({ INVALID_RECORD: 1 })
    const rej = await b.api.get<{ data: { record_id: string | null; code: string; message: string }[] }>(
      `/v1/sync/pairs/${pair.pair_id}/rejections`,
    )
    expect(rej.data[0]).toMatchObject({ record_id: big.id, code: 'INVALID_RECORD' })
    expect(rej.data[0]?.message).toContain('records.max_bytes')
  })

  it('a peer that answers every long poll at once with nothing: B backs off, polls instead, and says so (state and doctor)', async () => {
    const thread = 'th_instant_empty'
    const rec = signedEnvelope(fake.keypair, thread, 0, { text: 'the only one' })
    fake.on(thread, (call) => ({ kind: 'json', body: page(call.since === null ? [rec] : [], 'f.1') }))
    const pair = await b.api.post<Pair>('/v1/sync/pairs', { peer_did: fake.did, peer_url: fake.url, thread_id: thread })
    await expect.poll(async () => (await getPair(pair.pair_id)).poll_only, POLL).toBe(true)
    const p = await getPair(pair.pair_id)
    expect(p.notice?.code).toBe('LONGPOLL_RETURNS_AT_ONCE')
    expect(p.state).toBe('running')
    // The operator's view says it too.
    expect((await b.spl('fleet', 'sync', 'status', pair.pair_id)).stdout).toMatch(/^notice {5}LONGPOLL_RETURNS_AT_ONCE: /m)
    expect(await b.threadRecordIds(thread)).toEqual([rec.id])
    // Three long polls answered at once, then none: the old loop asked again at once, ~300 times a second.
    const longpolls = () => fake.callsFor(thread).filter((c) => c.feed === 'longpoll').length
    const asked = longpolls()
    // 3 when each answer takes B under a second (a loaded machine may make one slower, and reset the count).
    expect(asked).toBeGreaterThanOrEqual(3)
    expect(asked).toBeLessThanOrEqual(6)
    const calls = fake.callsFor(thread).length
    await expect.poll(() => fake.callsFor(thread).length, POLL).toBeGreaterThan(calls) // it still polls
    expect(longpolls()).toBe(asked)
    const doctor = JSON.parse((await b.spl('doctor', '--json')).stdout) as { checks: { name: string; status: string; message: string }[] }
    const check = doctor.checks.find((c) => c.name === 'long polls')
    expect(check).toMatchObject({ status: 'warn' })
    expect(check?.message).toContain(pair.pair_id.slice(0, 8))
    expect(check?.message).toContain('at once')
    ok(await b.spl('fleet', 'sync', 'remove', pair.pair_id), 'spl fleet sync remove')
  })

  it('a stranger reading th_consent or th_namespace_registry gets 403 THREAD_PRIVATE, not the grants', async () => {
    ok(await a.spl('namespace', 'create', 'acme'), 'spl namespace create')
    ok(await a.spl('consent', 'grant', '--to-namespace', 'acme', '--json'), 'spl consent grant')
    const stranger = Keypair.generate()
    for (const thread of ['th_consent', 'th_namespace_registry']) {
      const fromStranger = await strangerReads(stranger, thread)
      expect(fromStranger?.status).toBe(403)
      expect(fromStranger?.json).toMatchObject({ object: 'error', code: 'THREAD_PRIVATE' })
    }
    expect((await a.threadRecordIds('th_consent')).length).toBeGreaterThan(0)
  })
})

/** `GET /v1/sync/changes?thread=…` on A with a proof by `who`, as any peer would send it. */
async function strangerReads(who: Keypair, thread: string): Promise<{ status: number; json: unknown }> {
  const pathAndQuery = `/v1/sync/changes?thread=${thread}`
  const { token } = await createRequestProof(who, { method: 'GET', pathAndQuery, aud: a.did })
  const res = await fetch(`${a.url}${pathAndQuery}`, { headers: { [PROOF_HEADER]: token } })
  return { status: res.status, json: await res.json() }
}
