import { canonicalRecord, MAX_CLOCK, type RecordFields, sha256Hex, verifyRecordSignature } from '@spl/records'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type AppUnderTest, appUnderTest, expectErrorEnvelope, threadClocks } from '../../test/harness.js'

// POST /v1/records and the store behind it, through app.request() (no socket).

interface RecordOut extends RecordFields {
  object: string
  id: string
  sig: string
  stored_at: number
}

describe('SPEC 2.5 the store through POST /v1/records', () => {
  let d: AppUnderTest
  beforeAll(async () => {
    d = await appUnderTest()
  })
  afterAll(async () => {
    await d.close()
  })

  it('answers 201 with the signed record: id = sha256(JCS), sig verifies against the DID', async () => {
    const a = await d.postJson('/v1/records', {
      act: 'KNOW',
      thread: 'th_shape',
      body: { text: 'héllo ☃', n: 0.1, big: 1e21 },
    })
    expect(a.status).toBe(201)
    const r = a.json as RecordOut
    expect(r).toMatchObject({
      object: 'record',
      id: expect.stringMatching(/^[0-9a-f]{64}$/),
      parents: [],
      thread: 'th_shape',
      actor: d.daemon.did,
      act: 'KNOW',
      body: { text: 'héllo ☃', n: 0.1, big: 1e21 },
      clock: 0,
      data_type: 'SCALAR',
      sig: expect.stringMatching(/^[A-Za-z0-9_-]{86}$/),
    })
    const { parents, thread, actor, act, body, clock, data_type } = r
    const canonical = canonicalRecord({ parents, thread, actor, act, body, clock, data_type })
    expect(sha256Hex(canonical)).toBe(r.id)
    expect(verifyRecordSignature(d.daemon.did, canonical, r.sig)).toBe(true)
    const back = await d.call('GET', `/v1/records/${r.id}`)
    expect(back.status).toBe(200)
    expect(back.json).toMatchObject({ id: r.id, sig: r.sig, record: { thread: 'th_shape', clock: 0 } })
  })

  it('automatic clocks are 0, 1, 2 per thread, independently for each thread', async () => {
    const clocks: number[] = []
    for (const text of ['a', 'b', 'c']) {
      const a = await d.postJson('/v1/records', {
        act: 'INTEND',
        thread: 'th_clock_a',
        body: { text },
      })
      expect(a.status).toBe(201)
      clocks.push((a.json as RecordOut).clock)
    }
    expect(clocks).toEqual([0, 1, 2])
    const other = await d.postJson('/v1/records', {
      act: 'INTEND',
      thread: 'th_clock_b',
      body: { text: 'a' },
    })
    expect((other.json as RecordOut).clock).toBe(0)
    expect(await threadClocks(d, 'th_clock_a')).toEqual([0, 1, 2])
  })

  it('the next automatic clock is one more than the highest, after an explicit one', async () => {
    await d.postJson('/v1/records', { act: 'INTEND', thread: 'th_clock_gap', body: {}, clock: 10 })
    const a = await d.postJson('/v1/records', {
      act: 'INTEND',
      thread: 'th_clock_gap',
      body: { text: 'next' },
    })
    expect((a.json as RecordOut).clock).toBe(11)
  })

  it('concurrent emits in one thread get distinct clocks 0..n-1', async () => {
    const n = 12
    const answers = await Promise.all(
      Array.from({ length: n }, (_, i) => d.postJson('/v1/records', { act: 'DO', thread: 'th_clock_race', body: { i } })),
    )
    expect(answers.map((a) => a.status)).toEqual(Array(n).fill(201))
    expect(answers.map((a) => (a.json as RecordOut).clock).sort((x, y) => x - y)).toEqual([...Array(n).keys()])
  })

  it('an explicit clock twice with the same content → 201 then 200 with the same id, stored once', async () => {
    const rec = { act: 'KNOW', thread: 'th_idem', body: { text: 'same' }, clock: 5 }
    const first = await d.postJson('/v1/records', rec)
    expect(first.status).toBe(201)
    const before = await d.daemon.ctx.store.count()
    const second = await d.postJson('/v1/records', rec)
    expect(second.status).toBe(200)
    expect((second.json as RecordOut).id).toBe((first.json as RecordOut).id)
    expect((second.json as RecordOut).sig).toBe((first.json as RecordOut).sig)
    expect(await d.daemon.ctx.store.count()).toBe(before)
    expect(await threadClocks(d, 'th_idem')).toEqual([5])
  })

  it('parents are sorted and de-duplicated before hashing (same record → same id)', async () => {
    const p1 = 'a'.repeat(64)
    const p2 = 'b'.repeat(64)
    const first = await d.postJson('/v1/records', {
      act: 'DO',
      thread: 'th_parents',
      body: {},
      clock: 0,
      parents: [p2, p1],
    })
    expect(first.status).toBe(201)
    expect((first.json as RecordOut).parents).toEqual([p1, p2])
    const second = await d.postJson('/v1/records', {
      act: 'DO',
      thread: 'th_parents',
      body: {},
      clock: 0,
      parents: [p1, p2, p1],
    })
    expect(second.status).toBe(200)
    expect((second.json as RecordOut).id).toBe((first.json as RecordOut).id)
  })

  it('the same explicit clock with a different body → 409 CLOCK_CONFLICT, nothing stored', async () => {
    const first = await d.postJson('/v1/records', {
      act: 'KNOW',
      thread: 'th_conflict',
      body: { text: 'one' },
      clock: 3,
    })
    expect(first.status).toBe(201)
    const before = await d.daemon.ctx.store.count()
    const second = await d.postJson('/v1/records', {
      act: 'KNOW',
      thread: 'th_conflict',
      body: { text: 'two' },
      clock: 3,
    })
    expectErrorEnvelope(second, 409, 'CLOCK_CONFLICT')
    const otherAct = await d.postJson('/v1/records', {
      act: 'DO',
      thread: 'th_conflict',
      body: { text: 'one' },
      clock: 3,
    })
    expectErrorEnvelope(otherAct, 409, 'CLOCK_CONFLICT')
    expect(await d.daemon.ctx.store.count()).toBe(before)
    const list = await d.call('GET', '/v1/threads/th_conflict/records')
    expect((list.json as { data: { id: string }[] }).data.map((e) => e.id)).toEqual([(first.json as RecordOut).id])
  })

  it('the clock never leaves 0..2^53-1: after clock 2^53-1 an automatic clock is refused (4xx), nothing stored', async () => {
    const top = await d.postJson('/v1/records', {
      act: 'INTEND',
      thread: 'th_clock_top',
      body: {},
      clock: MAX_CLOCK,
    })
    expect(top.status).toBe(201)
    const before = await d.daemon.ctx.store.count()
    const next = await d.postJson('/v1/records', {
      act: 'INTEND',
      thread: 'th_clock_top',
      body: { text: 'overflow' },
    })
    for (const c of await threadClocks(d, 'th_clock_top')) expect(c).toBeLessThanOrEqual(MAX_CLOCK)
    expect(await d.daemon.ctx.store.count()).toBe(before)
    expectErrorEnvelope(next)
  })

  it('a request body under 16 MiB is read; a record in it over 1 MiB is RECORD_TOO_LARGE (SPEC 2.4a), not PAYLOAD_TOO_LARGE', async () => {
    const a = await d.postJson('/v1/records', {
      act: 'KNOW',
      thread: 'th_big_ok',
      body: { text: 'y'.repeat(2 * 1024 * 1024) },
    })
    expectErrorEnvelope(a, 413, 'RECORD_TOO_LARGE')
  })
})

describe('a body with __proto__ keys (bodies are data)', () => {
  let d: AppUnderTest
  beforeAll(async () => {
    d = await appUnderTest()
  })
  afterAll(async () => {
    await d.close()
  })

  it('emits and stores every key exactly, top level and nested', async () => {
    const text = '{"act":"KNOW","thread":"th_proto","body":{"__proto__":{"admin":true},"nested":{"__proto__":1},"text":"x"}}'
    const a = await d.call('POST', '/v1/records', { body: text })
    expect(a.status).toBe(201)
    const r = a.json as RecordOut
    const canonical = canonicalRecord(r)
    expect(canonical).toContain('"body":{"__proto__":{"admin":true},"nested":{"__proto__":1},"text":"x"}')
    expect(sha256Hex(canonical)).toBe(r.id)
    expect(verifyRecordSignature(r.actor, canonical, r.sig)).toBe(true)
    const back = await d.call('GET', `/v1/records/${r.id}`)
    const env = back.json as { record: RecordFields }
    expect(Object.hasOwn(env.record.body, '__proto__')).toBe(true)
    expect(canonicalRecord(env.record)).toBe(canonical)
  })
})

describe('SPEC 2.4a record size at emit', () => {
  let d: AppUnderTest
  beforeAll(async () => {
    d = await appUnderTest()
  })
  afterAll(async () => {
    await d.close()
  })

  it('a record over 1 MiB of canonical UTF-8 is 413 RECORD_TOO_LARGE with a fix, and nothing is stored', async () => {
    // 400,000 CJK characters: under 1 MiB of UTF-16 units, 1.2 MB of UTF-8.
    const a = await d.postJson('/v1/records', { act: 'KNOW', thread: 'th_big', body: { text: '漢'.repeat(400_000) } })
    expectErrorEnvelope(a, 413, 'RECORD_TOO_LARGE')
    expect((a.json as { fix?: string }).fix).toMatch(/REFERENCE|split/)
    const list = await d.call('GET', '/v1/threads/th_big/records')
    expect((list.json as { data: unknown[] }).data).toEqual([])
    const fits = await d.postJson('/v1/records', { act: 'KNOW', thread: 'th_big', body: { text: '漢'.repeat(300_000) } })
    expect(fits.status).toBe(201)
  })
})
