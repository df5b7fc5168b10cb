import { Keypair } from '@spl/identity'
import { type RecordFields, recordIdOf } from '@spl/records'
import { createRequestProof, PROOF_HEADER } from '@spl/transport'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type PairView, TestDaemon } from '../../../test-utils/test-daemon.js'
import { type Behaviour, FakePeer, page, serveRecords, signedEnvelope } from './fake-peer.js'

/** A pair as `GET /v1/sync/pairs/{id}` shows it (the fields these tests read). */

interface Rejections {
  pair_id: string
  totals: Record<string, number>
  data: { record_id: string | null; code: string; message: string; at: number }[]
}

/** Raw HTTP, so a test sees the status and the error envelope as a peer would. */
async function call(
  method: string,
  url: string,
  options: { body?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(url, { method, headers: options.headers ?? {}, body: options.body ?? null })
  const text = await res.text()
  let json: Record<string, unknown>
  try {
    json = JSON.parse(text) as Record<string, unknown>
  } catch {
    json = { unparsed: text }
  }
  return { status: res.status, json }
}

let b: TestDaemon
let fake: FakePeer

beforeAll(async () => {
  fake = await FakePeer.start()
  b = await TestDaemon.start()
})

afterAll(async () => {
  await b?.[Symbol.asyncDispose]()
  await fake?.close()
})

const getPair = (id: string) => b.api.get<PairView>(`/v1/sync/pairs/${id}`)

/** Registers the fake's behaviour for `thread` and makes B pull that thread from the fake. */
async function pairWithFake(thread: string, behaviour: Behaviour, extra: Record<string, unknown> = {}): Promise<string> {
  fake.on(thread, behaviour)
  const p = await b.api.post<PairView>('/v1/sync/pairs', {
    peer_did: fake.did,
    peer_url: fake.url,
    thread_id: thread,
    ...extra,
  })
  return p.pair_id
}

async function expectHealthy(): Promise<void> {
  const h = await call('GET', `${b.url}/health`)
  expect(h.status).toBe(200)
  expect(h.json['status']).toBe('ok')
}

/** The pair fails with `code`, keeps retrying (attempt grows, backoff set) and B stays healthy. */
async function expectFailingAndRetrying(id: string, code: string): Promise<void> {
  await expect.poll(async () => (await getPair(id)).last_error?.code, { timeout: 15_000 }).toBe(code)
  const first = await getPair(id)
  expect(first.state).toBe('failing')
  expect(first.backoff_ms).toBeGreaterThan(0)
  await expect.poll(async () => (await getPair(id)).attempt, { timeout: 15_000 }).toBeGreaterThan(first.attempt)
  const later = await getPair(id)
  expect(later.state).toBe('failing')
  expect(later.last_error?.code).toBe(code)
  await expectHealthy()
}

async function removePair(id: string): Promise<void> {
  await b.api.delete(`/v1/sync/pairs/${id}`)
}

describe('a pair towards a misbehaving peer', () => {
  it('the fake really is spoken to by B with a proper SPL-Proof (sanity of the harness)', async () => {
    const thread = 'th_bad_sanity'
    const rec = signedEnvelope(fake.keypair, thread, 0, { text: 'good' })
    const id = await pairWithFake(
      thread,
      serveRecords(() => [rec]),
    )
    await expect.poll(() => b.threadRecordIds(thread), { timeout: 15_000 }).toEqual([rec.id])
    const pair = await getPair(id)
    expect(pair.state).toBe('running')
    expect(pair.last_error).toBeNull()
    expect(fake.callsFor(thread)[0]?.caller).toBe(b.did)
    await removePair(id)
  })

  it('garbage (non-JSON) body → PARSE_ERROR', async () => {
    const thread = 'th_bad_garbage'
    const id = await pairWithFake(thread, () => ({ kind: 'json', body: '<html>certainly not JSON</html>' }))
    await expectFailingAndRetrying(id, 'PARSE_ERROR')
    await removePair(id)
  })

  it('truncated body (content-length larger than sent, socket cut) → PARSE_ERROR', async () => {
    const thread = 'th_bad_truncated'
    const rec = signedEnvelope(fake.keypair, thread, 0, { text: 'cut' })
    const full = JSON.stringify(page([rec], 'f.1'))
    const id = await pairWithFake(thread, () => ({
      kind: 'truncated',
      body: full.slice(0, full.length >> 1),
    }))
    await expectFailingAndRetrying(id, 'PARSE_ERROR')
    expect(await b.threadRecordIds(thread)).toEqual([])
    await removePair(id)
  })

  it('half a JSON document (correct content-length) → PARSE_ERROR', async () => {
    const thread = 'th_bad_halfjson'
    const rec = signedEnvelope(fake.keypair, thread, 0, { text: 'half' })
    const full = JSON.stringify(page([rec], 'f.1'))
    const id = await pairWithFake(thread, () => ({ kind: 'json', body: full.slice(0, full.length >> 1) }))
    await expectFailingAndRetrying(id, 'PARSE_ERROR')
    await removePair(id)
  })

  it('a JSON answer that does not fit the change-feed schema → PARSE_ERROR', async () => {
    const thread = 'th_bad_schema'
    const id = await pairWithFake(thread, () => ({ kind: 'json', body: { hello: 'world' } }))
    await expectFailingAndRetrying(id, 'PARSE_ERROR')
    await removePair(id)
  })

  it('HTTP 500 with an error envelope → HTTP_5XX', async () => {
    const thread = 'th_bad_500'
    const id = await pairWithFake(thread, () => ({
      kind: 'json',
      status: 500,
      body: { object: 'error', code: 'INTERNAL', message: 'the fake broke' },
    }))
    await expectFailingAndRetrying(id, 'HTTP_5XX')
    expect((await getPair(id)).last_error?.message).toContain('INTERNAL')
    await removePair(id)
  })

  // packages/transport/src/client.ts: PeerClient.fetchChanges aborts after (wait + 15 000) ms, where
  // wait = the long-poll timeout for feed=longpoll and 0 for feed=normal. A `poll` pair always asks
  // feed=normal, so the first pull times out after 15 s.
  it('a peer that never answers → TIMEOUT after 15 s, and the pair tries again', async () => {
    const thread = 'th_bad_hang'
    const id = await pairWithFake(thread, () => ({ kind: 'hang' }), { mode: 'poll', poll_interval_ms: 1000 })
    await expect.poll(async () => (await getPair(id)).last_error?.code, { timeout: 25_000, interval: 500 }).toBe('TIMEOUT')
    const p = await getPair(id)
    expect(p.state).toBe('failing')
    expect(p.attempt).toBeGreaterThanOrEqual(1)
    expect(fake.callsFor(thread).every((c) => c.feed === 'normal')).toBe(true)
    // Still retrying: a new request reaches the peer after the backoff (~1 s).
    const seen = fake.callsFor(thread).length
    await expect.poll(() => fake.callsFor(thread).length, { timeout: 10_000 }).toBeGreaterThan(seen)
    await expectHealthy()
    await removePair(id)
  }, 45_000)

  it('a response SPL-Proof signed by another DID than peer_did → IDENTITY_MISMATCH, nothing stored', async () => {
    const thread = 'th_bad_impostor'
    const impostor = Keypair.generate()
    const rec = signedEnvelope(fake.keypair, thread, 0, { text: 'from an impostor' })
    const id = await pairWithFake(thread, () => ({
      kind: 'json',
      body: page([rec], 'f.1'),
      signer: impostor,
    }))
    await expectFailingAndRetrying(id, 'IDENTITY_MISMATCH')
    expect((await getPair(id)).last_error?.message).toContain(impostor.did)
    expect(await b.threadRecordIds(thread)).toEqual([])
    await removePair(id)
  })

  it('a forged signature is rejected as SIGNATURE_INVALID; the valid records of the page are stored', async () => {
    const thread = 'th_bad_forged'
    const good1 = signedEnvelope(fake.keypair, thread, 0, { text: 'good one' })
    const honest = signedEnvelope(fake.keypair, thread, 1, { text: 'forged' })
    // Same record, same id, but the signature is made with another key.
    const otherSig = signedEnvelope(Keypair.generate(), thread, 1, { text: 'forged' }).sig
    const forged = { ...honest, sig: otherSig }
    const good2 = signedEnvelope(fake.keypair, thread, 2, { text: 'good two' })
    const id = await pairWithFake(
      thread,
      serveRecords(() => [good1, forged, good2]),
    )
    await expect.poll(async () => (await getPair(id)).totals.rejected['SIGNATURE_INVALID'], { timeout: 15_000 }).toBe(1)
    const pair = await getPair(id)
    expect(pair.state).toBe('running')
    expect(pair.last_error).toBeNull()
    const ids = await b.threadRecordIds(thread)
    expect([...ids].sort()).toEqual([good1.id, good2.id].sort())
    expect(ids).not.toContain(forged.id)
    const rej = await b.api.get<Rejections>(`/v1/sync/pairs/${id}/rejections`)
    expect(rej.totals).toEqual({ SIGNATURE_INVALID: 1 })
    expect(rej.data.map((r) => [r.record_id, r.code])).toEqual([[forged.id, 'SIGNATURE_INVALID']])
    // The CLI shows the same.
    const out = await b.spl('fleet', 'sync', 'rejections', id)
    expect(out.code).toBe(0)
    expect(out.stdout).toContain('SIGNATURE_INVALID=1')
    expect(out.stdout).toContain(forged.id.slice(0, 12))
    await expectHealthy()
    await removePair(id)
  })

  it('a record whose fields do not hash to its id is rejected as HASH_MISMATCH', async () => {
    const thread = 'th_bad_hash'
    const good = signedEnvelope(fake.keypair, thread, 0, { text: 'fine' })
    const original = signedEnvelope(fake.keypair, thread, 1, { text: 'original' })
    const tampered = { ...original, record: { ...original.record, body: { text: 'tampered' } } }
    const id = await pairWithFake(
      thread,
      serveRecords(() => [good, tampered]),
    )
    await expect.poll(async () => (await getPair(id)).totals.rejected['HASH_MISMATCH'], { timeout: 15_000 }).toBe(1)
    const pair = await getPair(id)
    expect(pair.state).toBe('running')
    expect(await b.threadRecordIds(thread)).toEqual([good.id])
    const rej = await b.api.get<Rejections>(`/v1/sync/pairs/${id}/rejections`)
    expect(rej.data.map((r) => [r.record_id, r.code])).toEqual([[tampered.id, 'HASH_MISMATCH']])
    await expectHealthy()
    await removePair(id)
  })

  it('records in an unregistered namespace are NAMESPACE_REJECTED; after `spl namespace create` + reset they arrive', async () => {
    const thread = 'th_bad_namespace'
    const good = signedEnvelope(fake.keypair, thread, 0, { text: 'default ns' })
    const foreign = signedEnvelope(fake.keypair, thread, 1, {
      text: 'elsewhere',
      namespace: 'acme-unregistered',
    })
    const id = await pairWithFake(
      thread,
      serveRecords(() => [good, foreign]),
    )
    await expect.poll(async () => (await getPair(id)).totals.rejected['NAMESPACE_REJECTED'], { timeout: 15_000 }).toBe(1)
    expect((await getPair(id)).state).toBe('running')
    expect(await b.threadRecordIds(thread)).toEqual([good.id])
    const rej = await b.api.get<Rejections>(`/v1/sync/pairs/${id}/rejections`)
    expect(rej.data).toHaveLength(1)
    expect(rej.data[0]).toMatchObject({ record_id: foreign.id, code: 'NAMESPACE_REJECTED' })
    expect(rej.data[0]?.message).toContain('acme-unregistered')
    // Fix the cause, move the cursor back: the record is accepted this time.
    expect((await b.spl('namespace', 'create', 'acme-unregistered', '--description', 'now known')).code).toBe(0)
    expect((await b.spl('fleet', 'sync', 'reset', id)).code).toBe(0)
    await expect.poll(async () => [...(await b.threadRecordIds(thread))].sort(), { timeout: 15_000 }).toEqual([good.id, foreign.id].sort())
    await expectHealthy()
    await removePair(id)
  })

  it('one page with every kind of bad record: each is rejected with its own code, the good one is stored', async () => {
    const thread = 'th_bad_mixed'
    const good = signedEnvelope(fake.keypair, thread, 0, { text: 'good' })
    // Same actor, same thread, same clock, another record: equivocation.
    const equivocation = signedEnvelope(fake.keypair, thread, 0, { text: 'the same clock, said differently' })
    const elsewhere = signedEnvelope(fake.keypair, 'th_not_this_pair', 1, { text: 'wrong thread' })
    const webActor: RecordFields = {
      parents: [],
      thread,
      actor: 'did:web:evil.example',
      act: 'INTEND',
      body: { text: 'who signed this?' },
      clock: 0,
      data_type: 'SCALAR',
    }
    const unverifiable = { id: recordIdOf(webActor), record: webActor, sig: good.sig, stored_at: Date.now() }
    const invalid = { id: 'not-an-id', record: { thread }, sig: 'x', stored_at: Date.now() }
    const id = await pairWithFake(
      thread,
      serveRecords(() => [good, equivocation, elsewhere, unverifiable, invalid]),
    )
    const expected = { CLOCK_CONFLICT: 1, THREAD_MISMATCH: 1, UNVERIFIABLE_ACTOR: 1, INVALID_RECORD: 1 }
    await expect.poll(async () => (await getPair(id)).totals.rejected, { timeout: 15_000 }).toEqual(expected)
    const pair = await getPair(id)
    expect(pair.state).toBe('running')
    expect(pair.last_error).toBeNull()
    expect(await b.threadRecordIds(thread)).toEqual([good.id])
    expect(await b.threadRecordIds('th_not_this_pair')).toEqual([])
    const rej = await b.api.get<Rejections>(`/v1/sync/pairs/${id}/rejections`)
    expect(rej.totals).toEqual(expected)
    expect(new Set(rej.data.map((r) => `${r.code}:${r.record_id}`))).toEqual(
      new Set([
        `CLOCK_CONFLICT:${equivocation.id}`,
        `THREAD_MISMATCH:${elsewhere.id}`,
        `UNVERIFIABLE_ACTOR:${unverifiable.id}`,
        'INVALID_RECORD:null',
      ]),
    )
    await expectHealthy()
    await removePair(id)
  })

  it('a redacted envelope is stored as a stub: the body the peer sent is not kept (SPEC 2.4, 6.3)', async () => {
    const thread = 'th_bad_redacted'
    const victim = Keypair.generate()
    const full = signedEnvelope(victim, thread, 0, { text: 'the real words' })
    // Claims to be a redacted copy of the victim's record, but carries a body of the peer's choosing.
    const stub = {
      id: full.id,
      record: { ...full.record, body: { text: 'words put in the victim mouth' } },
      stored_at: Date.now(),
      redacted: true,
    }
    const id = await pairWithFake(
      thread,
      serveRecords(() => [stub]),
    )
    await expect.poll(() => b.threadRecordIds(thread), { timeout: 15_000 }).toEqual([full.id])
    const stored = await b.api.get<{ data: { id: string; record: RecordFields; redacted?: boolean }[] }>(`/v1/threads/${thread}/records`)
    expect(stored.data[0]?.redacted).toBe(true)
    expect(stored.data[0]?.record.body).toEqual({ redacted: true })
    await removePair(id)
  })

  it('a peer that answers feed=longpoll with 400 is remembered as poll-only and still syncs', async () => {
    const thread = 'th_bad_nolongpoll'
    const records = [signedEnvelope(fake.keypair, thread, 0, { text: 'first' })]
    const behaviour: Behaviour = (call) => {
      if (call.feed === 'longpoll') {
        return {
          kind: 'json',
          status: 400,
          body: { object: 'error', code: 'INVALID_REQUEST', message: 'query.feed: must be normal' },
          signer: null,
        }
      }
      // Cursor = how many records the caller has seen.
      const from = call.since === null ? 0 : Number(call.since.slice(2))
      return { kind: 'json', body: page(records.slice(from), `f.${records.length}`) }
    }
    const id = await pairWithFake(thread, behaviour, { poll_interval_ms: 500 })
    expect((await getPair(id)).mode).toBe('longpoll')
    await expect.poll(async () => (await getPair(id)).poll_only, { timeout: 15_000 }).toBe(true)
    let pair = await getPair(id)
    expect(pair.state).toBe('running')
    expect(pair.last_error).toBeNull()
    expect(await b.threadRecordIds(thread)).toEqual([records[0]!.id])
    // Still syncing, by polling.
    const second = signedEnvelope(fake.keypair, thread, 1, { text: 'second' })
    records.push(second)
    await expect.poll(() => b.threadRecordIds(thread), { timeout: 15_000 }).toEqual([records[0]!.id, second.id])
    pair = await getPair(id)
    expect(pair.state).toBe('running')
    // Only one long poll was ever tried.
    expect(fake.callsFor(thread).filter((c) => c.feed === 'longpoll')).toHaveLength(1)
    const status = await b.spl('fleet', 'sync', 'status', id)
    expect(status.stdout).toMatch(/mode\s+poll \(peer does not long-poll\)/)
    await removePair(id)
  })
})

describe('bad input on the new doors', () => {
  const post = (body: string) => call('POST', `${b.url}/v1/sync/pairs`, { body, headers: { 'content-type': 'application/json' } })

  it('POST /v1/sync/pairs refuses a bad DID, URL, thread id or JSON with 400 and a code', async () => {
    const good = { peer_did: fake.did, peer_url: fake.url, thread_id: 'th_ok_input' }
    const cases: [string, string, string][] = [
      ['bad DID', JSON.stringify({ ...good, peer_did: 'did:web:example.com' }), 'INVALID_REQUEST'],
      ['garbled did:key', JSON.stringify({ ...good, peer_did: 'did:key:z6Mknotbase58!!' }), 'INVALID_REQUEST'],
      ['bad URL', JSON.stringify({ ...good, peer_url: 'not a url' }), 'INVALID_REQUEST'],
      ['non-http URL', JSON.stringify({ ...good, peer_url: 'ftp://127.0.0.1:21' }), 'INVALID_REQUEST'],
      ['bad thread id', JSON.stringify({ ...good, thread_id: 'federation demo' }), 'INVALID_REQUEST'],
      ['missing field', JSON.stringify({ peer_did: fake.did }), 'INVALID_REQUEST'],
      ['unknown field', JSON.stringify({ ...good, direction: 'both' }), 'INVALID_REQUEST'],
      ['malformed JSON', '{"peer_did": ', 'INVALID_JSON'],
      ['JSON null', 'null', 'INVALID_REQUEST'],
      ['JSON array', '[]', 'INVALID_REQUEST'],
      ['mode not known', JSON.stringify({ ...good, mode: 'push' }), 'INVALID_REQUEST'],
      ['poll interval not a number', JSON.stringify({ ...good, poll_interval_ms: 'soon' }), 'INVALID_REQUEST'],
    ]
    for (const [what, body, code] of cases) {
      const r = await post(body)
      expect({ what, status: r.status, code: r.json['code'], object: r.json['object'] }).toEqual({
        what,
        status: 400,
        code,
        object: 'error',
      })
    }
    // Nothing was created by any of them.
    const list = await b.api.get<{ data: PairView[] }>('/v1/sync/pairs?all=true')
    expect(list.data.filter((p) => (p as unknown as { thread_id: string }).thread_id === 'th_ok_input')).toEqual([])
    await expectHealthy()
  })

  it('an unknown pair id answers 404 PAIR_NOT_FOUND on every pair door', async () => {
    const unknown = 'ffffffffffffffff'
    const doors: [string, string][] = [
      ['GET', `/v1/sync/pairs/${unknown}`],
      ['DELETE', `/v1/sync/pairs/${unknown}`],
      ['POST', `/v1/sync/pairs/${unknown}/pause`],
      ['POST', `/v1/sync/pairs/${unknown}/resume`],
      ['POST', `/v1/sync/pairs/${unknown}/kick`],
      ['POST', `/v1/sync/pairs/${unknown}/reset`],
      ['GET', `/v1/sync/pairs/${unknown}/stats`],
      ['GET', `/v1/sync/pairs/${unknown}/rejections`],
    ]
    for (const [method, path] of doors) {
      const r = await call(method, `${b.url}${path}`)
      expect({ door: `${method} ${path}`, status: r.status, code: r.json['code'] }).toEqual({
        door: `${method} ${path}`,
        status: 404,
        code: 'PAIR_NOT_FOUND',
      })
    }
    // A prefix shorter than 4 characters is refused as ambiguous, with a 400.
    const short = await call('GET', `${b.url}/v1/sync/pairs/ff`)
    expect([short.status, short.json['code']]).toEqual([400, 'PAIR_AMBIGUOUS'])
    const cli = await b.spl('fleet', 'sync', 'status', unknown)
    expect(cli.code).not.toBe(0)
    expect(cli.stderr).toContain('PAIR_NOT_FOUND')
  })

  describe('GET /v1/sync/changes', () => {
    const caller = Keypair.generate()
    const signed = async (pathAndQuery: string) => {
      const { token } = await createRequestProof(caller, { method: 'GET', pathAndQuery, aud: b.did })
      return token
    }

    it('answers a properly signed request (control)', async () => {
      const path = '/v1/sync/changes?thread=th_door_ok&feed=normal'
      const r = await call('GET', `${b.url}${path}`, { headers: { [PROOF_HEADER]: await signed(path) } })
      expect(r.status).toBe(200)
      expect(r.json['records']).toEqual([])
    })

    it('a malformed cursor → 400 INVALID_CURSOR', async () => {
      const path = '/v1/sync/changes?thread=th_door_ok&since=not-a-cursor&feed=normal'
      const r = await call('GET', `${b.url}${path}`, { headers: { [PROOF_HEADER]: await signed(path) } })
      expect([r.status, r.json['code']]).toEqual([400, 'INVALID_CURSOR'])
    })

    it('a bad thread or limit → 400 INVALID_REQUEST', async () => {
      for (const path of ['/v1/sync/changes?thread=not_a_thread', '/v1/sync/changes?thread=th_door_ok&limit=99999999']) {
        const r = await call('GET', `${b.url}${path}`, { headers: { [PROOF_HEADER]: await signed(path) } })
        expect({ path, status: r.status, code: r.json['code'] }).toEqual({ path, status: 400, code: 'INVALID_REQUEST' })
      }
    })

    it('a proof addressed to another instance → 401 PROOF_INVALID', async () => {
      const path = '/v1/sync/changes?thread=th_door_ok'
      const { token } = await createRequestProof(caller, { method: 'GET', pathAndQuery: path, aud: Keypair.generate().did })
      const r = await call('GET', `${b.url}${path}`, { headers: { [PROOF_HEADER]: token } })
      expect([r.status, r.json['code']]).toEqual([401, 'PROOF_INVALID'])
    })

    it('no proof → 401 PROOF_INVALID', async () => {
      const r = await call('GET', `${b.url}/v1/sync/changes?thread=th_door_ok`)
      expect([r.status, r.json['code']]).toEqual([401, 'PROOF_INVALID'])
    })

    it('a proof for another path → 401 PROOF_INVALID', async () => {
      const token = await signed('/v1/sync/changes?thread=th_other')
      const r = await call('GET', `${b.url}/v1/sync/changes?thread=th_door_ok`, {
        headers: { [PROOF_HEADER]: token },
      })
      expect([r.status, r.json['code']]).toEqual([401, 'PROOF_INVALID'])
    })

    it('a replayed proof → 401 PROOF_INVALID', async () => {
      const path = '/v1/sync/changes?thread=th_door_ok&feed=normal&limit=5'
      const token = await signed(path)
      const first = await call('GET', `${b.url}${path}`, { headers: { [PROOF_HEADER]: token } })
      expect(first.status).toBe(200)
      const again = await call('GET', `${b.url}${path}`, { headers: { [PROOF_HEADER]: token } })
      expect([again.status, again.json['code']]).toEqual([401, 'PROOF_INVALID'])
      expect(String(again.json['message'])).toMatch(/replay/)
    })
  })
})
