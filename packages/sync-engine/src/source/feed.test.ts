import { Keypair } from '@spl/identity'
import { type Envelope, precheckEnvelope, type RecordFields, type SignedRecord, signRecord, toEnvelope } from '@spl/records'
import {
  type ChangesResponse,
  changesResponseSchema,
  createRequestProof,
  MAX_CHANGES_BYTES,
  PROOF_HEADER,
  ProofInvalidError,
  toSearchParams,
  verifyResponseProof,
} from '@spl/transport'
import { describe, expect, it } from 'vitest'
import { newPair, type Pair } from '../pair.js'
import { MemorySyncStore } from '../stores/memory-store.js'
import type { ChangeSource } from '../stores.js'
import { ChangeFeed, type ChangeFeedDeps, changeFeedHandler, decodeCursor, encodeCursor, InvalidCursorError } from './feed.js'
import { ThreadNotifier } from './notifier.js'
import { SubscriberStats } from './subscribers.js'

const source = Keypair.fromSeed(new Uint8Array(32).fill(21))
const caller = Keypair.fromSeed(new Uint8Array(32).fill(22))
const third = Keypair.fromSeed(new Uint8Array(32).fill(23))
const THREAD = 'th_feed'

function makeFeed(over: Partial<ChangeFeedDeps> = {}, store = new MemorySyncStore()) {
  const notifier = new ThreadNotifier()
  const subscribers = new SubscriberStats()
  const feed = new ChangeFeed({
    keypair: source,
    store,
    registry: { bindingOf: () => null, grants: () => [] },
    notifier,
    subscribers,
    servePolicy: 'open',
    pullsFrom: () => false,
    isTokenRevoked: () => false,
    ...over,
  })
  return { feed, store, notifier, subscribers }
}

function sign(kp: Keypair, clock: number, over: Partial<RecordFields> = {}): SignedRecord {
  return signRecord(kp, {
    parents: [],
    thread: THREAD,
    actor: kp.did,
    act: 'KNOW',
    body: { text: `clock ${clock}` },
    clock,
    data_type: 'SCALAR',
    ...over,
  })
}

/** Emits `n` records signed by the source into its store. */
async function emit(store: MemorySyncStore, n: number, over: Partial<RecordFields> = {}): Promise<SignedRecord[]> {
  const out: SignedRecord[] = []
  for (let i = 0; i < n; i++) {
    const s = sign(source, store.nextClock(source.did, over.thread ?? THREAD), over)
    await store.appendLocal(s)
    out.push(s)
  }
  return out
}

function pairTowards(peerDid: string): Pair {
  return { ...newPair('feedfeedfeedfeed', peerDid, 'http://peer.test', THREAD, 0), state: 'running' }
}

/** Stores `signed` as if it had been pulled from `fromDid` (its origin). */
async function receive(store: MemorySyncStore, fromDid: string, signed: SignedRecord): Promise<void> {
  const c = precheckEnvelope(toEnvelope(signed, 1), null)
  if (!c.ok) throw new Error(c.code)
  const pair = pairTowards(fromDid)
  await store.commit({ pair, accepted: [c], rejected: [], next: pair, now: Date.now() })
}

function changesUrl(query: Record<string, string>): URL {
  const url = new URL('http://source.test/v1/sync/changes')
  url.searchParams.set('thread', THREAD)
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v)
  return url
}

/** One signed request, as PeerClient makes it; returns the answer, its parsed body and the proof jti. */
async function ask(feed: ChangeFeed, query: Record<string, string> = {}, as: Keypair = caller, signal?: AbortSignal) {
  const url = changesUrl(query)
  const { token, jti } = await createRequestProof(as, { method: 'GET', pathAndQuery: url.pathname + url.search, aud: source.did })
  const answer = await feed.handle(url, { proof: token, authorization: undefined }, signal)
  const body = JSON.parse(answer.body) as ChangesResponse & { records: Envelope[] }
  return { answer, body, jti, token }
}

function ids(body: { records: Envelope[] }): string[] {
  return body.records.map((r) => r.id)
}

describe('cursors', () => {
  it('encode as c1.<epoch>.<seq> and decode back', () => {
    expect(encodeCursor('0123456789abcdef', 42)).toBe('c1.0123456789abcdef.42')
    expect(decodeCursor('c1.0123456789abcdef.42')).toEqual({ epoch: '0123456789abcdef', seq: 42 })
    expect(decodeCursor(encodeCursor('ffffffffffffffff', 0))).toEqual({ epoch: 'ffffffffffffffff', seq: 0 })
  })

  it('c2 carries the consent view (and a reveal pass while one lasts)', () => {
    expect(encodeCursor('0123456789abcdef', 42, 1700000000000)).toBe('c2.0123456789abcdef.42.1700000000000')
    expect(decodeCursor('c2.0123456789abcdef.42.1700000000000')).toEqual({ epoch: '0123456789abcdef', seq: 42, viewAt: 1700000000000 })
    expect(decodeCursor(encodeCursor('0123456789abcdef', 42, 5, 7))).toEqual({ epoch: '0123456789abcdef', seq: 42, viewAt: 5, revealAt: 7 })
    // A pass cannot be ahead of the cursor it reveals behind.
    expect(() => decodeCursor('c2.0123456789abcdef.4.5.r7')).toThrow(InvalidCursorError)
  })

  it('anything malformed is INVALID_CURSOR (400)', () => {
    for (const bad of [
      '',
      'garbage',
      '42',
      'c2.0123456789abcdef.1',
      'c2.0123456789abcdef.1.x',
      'c2.0123456789abcdef.1.2.3',
      'c3.0123456789abcdef.1.2',
      'c1.0123456789ABCDEF.1',
      'c1.0123456789abcde.1',
      'c1.0123456789abcdef.-1',
      'c1.0123456789abcdef.1.2',
      'c1.0123456789abcdef.',
      'c1.0123456789abcdef.12345678901234567',
    ]) {
      let err: unknown
      try {
        decodeCursor(bad)
      } catch (e) {
        err = e
      }
      expect(err, bad).toBeInstanceOf(InvalidCursorError)
      expect(err).toMatchObject({ code: 'INVALID_CURSOR', status: 400 })
    }
  })
})

describe('ChangeFeed', () => {
  it('reads the query the puller builds (toSearchParams) and answers what changesResponseSchema parses', async () => {
    const { feed, store } = makeFeed()
    const records = await emit(store, 3)
    const url = new URL(`http://source.test/v1/sync/changes?${toSearchParams({ thread: THREAD, limit: '2', feed: 'normal' })}`)
    const { token } = await createRequestProof(caller, { method: 'GET', pathAndQuery: url.pathname + url.search, aud: source.did })
    const answer = await feed.handle(url, { proof: token, authorization: undefined })
    const page = changesResponseSchema.parse(JSON.parse(answer.body))
    expect((page.records as Envelope[]).map((r) => r.id)).toEqual(records.slice(0, 2).map((r) => r.id))
    expect(page.has_more).toBe(true)
  })

  it('serves a thread in store order, at most `limit` a page, with has_more and a cursor to follow', async () => {
    const { feed, store } = makeFeed()
    const records = await emit(store, 5)
    await emit(store, 2, { thread: 'th_elsewhere' })
    const first = await ask(feed, { limit: '2' })
    expect(ids(first.body)).toEqual(records.slice(0, 2).map((r) => r.id))
    expect(first.body.has_more).toBe(true)
    expect(first.body.cursor_reset).toBeUndefined()
    expect(decodeCursor(first.body.next_cursor)).toMatchObject({ epoch: store.epoch, seq: 2 })
    const second = await ask(feed, { limit: '2', since: first.body.next_cursor })
    expect(ids(second.body)).toEqual(records.slice(2, 4).map((r) => r.id))
    expect(second.body.has_more).toBe(true)
    const third = await ask(feed, { limit: '2', since: second.body.next_cursor })
    expect(ids(third.body)).toEqual([records[4]!.id])
    expect(third.body.has_more).toBe(false)
    const empty = await ask(feed, { since: third.body.next_cursor })
    expect(empty.body.records).toEqual([])
    expect(empty.body.has_more).toBe(false)
    expect(decodeCursor(empty.body.next_cursor)).toMatchObject({ seq: decodeCursor(third.body.next_cursor).seq })
    // An envelope is what the puller checks: id, the 8 fields, sig, stored_at.
    const env = first.body.records[0]!
    expect(env.record).toEqual(records[0]!.record)
    expect(env.sig).toBe(records[0]!.sig)
    expect(typeof env.stored_at).toBe('number')
    expect(precheckEnvelope(env, THREAD).ok).toBe(true)
  })

  it('answers from the start with cursor_reset for a cursor of another epoch or ahead of the head', async () => {
    const { feed, store } = makeFeed()
    const records = await emit(store, 3)
    const otherEpoch = store.epoch === '0000000000000000' ? '1111111111111111' : '0000000000000000'
    for (const since of [encodeCursor(otherEpoch, 1), encodeCursor(store.epoch, 99)]) {
      const { body } = await ask(feed, { since })
      expect(body.cursor_reset, since).toBe(true)
      expect(ids(body)).toEqual(records.map((r) => r.id))
      expect(decodeCursor(body.next_cursor)).toMatchObject({ epoch: store.epoch, seq: 3 })
    }
    const atHead = await ask(feed, { since: encodeCursor(store.epoch, 3) })
    expect(atHead.body.cursor_reset).toBeUndefined()
    expect(atHead.body.records).toEqual([])
  })

  it('a malformed since is INVALID_CURSOR; through the handler a 400 error envelope', async () => {
    const { feed } = makeFeed()
    await expect(ask(feed, { since: 'not-a-cursor' })).rejects.toMatchObject({ code: 'INVALID_CURSOR' })
    const url = changesUrl({ since: 'c9.zz.1' })
    const { token } = await createRequestProof(caller, { method: 'GET', pathAndQuery: url.pathname + url.search, aud: source.did })
    const res = await changeFeedHandler(feed)(new Request(url, { headers: { 'SPL-Proof': token } }))
    expect(res.status).toBe(400)
    expect(await res.json()).toMatchObject({ object: 'error', code: 'INVALID_CURSOR' })
  })

  it('leaves out records that came from the caller itself, unless include_own=true', async () => {
    const { feed, store } = makeFeed()
    const [own1] = await emit(store, 1)
    const fromCaller = sign(caller, 0)
    await receive(store, caller.did, fromCaller) // pulled from the caller: an echo if served back
    const callerRecordViaThird = sign(caller, 1)
    await receive(store, third.did, callerRecordViaThird) // the caller's record, but it came from elsewhere
    const [own2] = await emit(store, 1)
    const normal = await ask(feed)
    expect(ids(normal.body)).toEqual([own1!.id, callerRecordViaThird.id, own2!.id])
    expect(decodeCursor(normal.body.next_cursor).seq).toBe(4) // the cursor moves past the left-out one
    const withOwn = await ask(feed, { include_own: 'true' })
    expect(ids(withOwn.body)).toEqual([own1!.id, fromCaller.id, callerRecordViaThird.id, own2!.id])
    // Another caller gets everything.
    const other = await ask(feed, {}, third)
    expect(ids(other.body)).toEqual([own1!.id, fromCaller.id, own2!.id])
  })

  it('hides records of a namespace the caller may not read, and moves the cursor past them', async () => {
    const { feed, store, subscribers } = makeFeed()
    const [visible] = await emit(store, 1)
    await emit(store, 2, { body: { namespace: 'team', text: 'private' } })
    const { body } = await ask(feed)
    expect(ids(body)).toEqual([visible!.id])
    expect(decodeCursor(body.next_cursor).seq).toBe(3)
    expect(subscribers.list()).toMatchObject([{ peer_did: caller.did, thread_id: THREAD, served: 1, hidden: 2 }])
  })

  it('a long poll answers as soon as a record arrives', async () => {
    const { feed, store, notifier } = makeFeed()
    await emit(store, 1)
    const head = encodeCursor(store.epoch, 1)
    const started = Date.now()
    const pending = ask(feed, { feed: 'longpoll', timeout: '20000', since: head })
    await expect.poll(() => notifier.waiting).toBe(1)
    const [later] = await emit(store, 1)
    notifier.notify(THREAD)
    const { body } = await pending
    expect(ids(body)).toEqual([later!.id])
    expect(Date.now() - started).toBeLessThan(5000)
    expect(notifier.waiting).toBe(0)
  })

  it('a long poll that sees nothing answers empty after its timeout', async () => {
    const { feed, store, notifier } = makeFeed()
    await emit(store, 1)
    const since = encodeCursor(store.epoch, 1)
    const started = Date.now()
    // A record in another thread does not end it.
    setTimeout(() => {
      void emit(store, 1, { thread: 'th_other' }).then(() => notifier.notify('th_other'))
    }, 50)
    const { body } = await ask(feed, { feed: 'longpoll', timeout: '300', since })
    const took = Date.now() - started
    expect(body.records).toEqual([])
    expect(body.has_more).toBe(false)
    expect(decodeCursor(body.next_cursor)).toMatchObject({ epoch: store.epoch, seq: 1 })
    expect(took).toBeGreaterThanOrEqual(280)
    expect(took).toBeLessThan(3000)
  })

  it('a long poll with records already there answers at once', async () => {
    const { feed, store } = makeFeed()
    await emit(store, 2)
    const started = Date.now()
    const { body } = await ask(feed, { feed: 'longpoll', timeout: '20000' })
    expect(body.records).toHaveLength(2)
    expect(Date.now() - started).toBeLessThan(2000)
  })

  it('a long poll ends when the caller goes away', async () => {
    const { feed, notifier } = makeFeed()
    const abort = new AbortController()
    const pending = ask(feed, { feed: 'longpoll', timeout: '20000' }, caller, abort.signal)
    await expect.poll(() => notifier.waiting).toBe(1)
    abort.abort()
    const { body } = await pending
    expect(body.records).toEqual([])
    expect(notifier.waiting).toBe(0)
  })

  it('closing the notifier (shutdown) ends open long polls at once, and later ones do not wait', async () => {
    const { feed, notifier } = makeFeed()
    const started = Date.now()
    const pending = ask(feed, { feed: 'longpoll', timeout: '20000' })
    await expect.poll(() => notifier.waiting).toBe(1)
    notifier.close()
    expect((await pending).body.records).toEqual([])
    const next = await ask(feed, { feed: 'longpoll', timeout: '20000' })
    expect(next.body.records).toEqual([])
    expect(Date.now() - started).toBeLessThan(3000)
  })

  it('a long poll is not lost when a record lands between the read and the wait', async () => {
    // The race a busy source hits: the feed reads nothing, a record is stored and notify() fires,
    // and only then does the feed start waiting. The notification must not be lost.
    const store = new MemorySyncStore()
    let landed = false
    const notifier = new ThreadNotifier()
    const racing: ChangeSource = {
      epoch: store.epoch,
      headSeq: () => store.headSeq(),
      async listAfter(thread, afterSeq, limit) {
        const rows = await store.listAfter(thread, afterSeq, limit)
        if (!landed && rows.length === 0) {
          landed = true
          await store.appendLocal(sign(source, 0))
          notifier.notify(THREAD)
        }
        return rows
      },
    }
    const { feed } = makeFeed({ store: racing, notifier })
    const started = Date.now()
    const { body } = await ask(feed, { feed: 'longpoll', timeout: '3000' })
    expect(body.records).toHaveLength(1)
    expect(Date.now() - started, 'the long poll slept until its timeout with a record waiting').toBeLessThan(1000)
  })

  it('signs the answer: the response proof verifies for the caller, and only for this body', async () => {
    const { feed, store } = makeFeed()
    await emit(store, 2)
    const { answer, jti } = await ask(feed)
    const proof = answer.headers[PROOF_HEADER]
    expect(answer.status).toBe(200)
    expect(answer.headers['content-type']).toBe('application/json')
    await expect(
      verifyResponseProof(proof, { peerDid: source.did, callerDid: caller.did, jti, body: answer.body }),
    ).resolves.toBeUndefined()
    await expect(
      verifyResponseProof(proof, { peerDid: source.did, callerDid: caller.did, jti, body: `${answer.body} ` }),
    ).rejects.toBeInstanceOf(ProofInvalidError)
    await expect(verifyResponseProof(proof, { peerDid: third.did, callerDid: caller.did, jti, body: answer.body })).rejects.toMatchObject({
      code: 'IDENTITY_MISMATCH',
    })
    await expect(
      verifyResponseProof(proof, { peerDid: source.did, callerDid: caller.did, jti: 'x'.repeat(22), body: answer.body }),
    ).rejects.toBeInstanceOf(ProofInvalidError)
  })

  it('refuses a missing, replayed or mismatched request proof with PROOF_INVALID (401)', async () => {
    const { feed } = makeFeed()
    const url = changesUrl({})
    await expect(feed.handle(url, { proof: undefined, authorization: undefined })).rejects.toMatchObject({
      code: 'PROOF_INVALID',
      status: 401,
    })
    const { token } = await createRequestProof(caller, { method: 'GET', pathAndQuery: url.pathname + url.search, aud: source.did })
    await feed.handle(url, { proof: token, authorization: undefined })
    await expect(feed.handle(url, { proof: token, authorization: undefined })).rejects.toMatchObject({ code: 'PROOF_INVALID' })
    const elsewhere = await createRequestProof(caller, { method: 'GET', pathAndQuery: '/v1/sync/changes?thread=th_other', aud: source.did })
    await expect(feed.handle(url, { proof: elsewhere.token, authorization: undefined })).rejects.toMatchObject({ code: 'PROOF_INVALID' })
    const otherAudience = await createRequestProof(caller, { method: 'GET', pathAndQuery: url.pathname + url.search, aud: third.did })
    await expect(feed.handle(url, { proof: otherAudience.token, authorization: undefined })).rejects.toMatchObject({
      code: 'PROOF_INVALID',
    })

    const handler = changeFeedHandler(feed)
    const missing = await handler(new Request(url))
    expect(missing.status).toBe(401)
    expect(await missing.json()).toMatchObject({ object: 'error', code: 'PROOF_INVALID' })
    const replayed = await handler(new Request(url, { headers: { 'SPL-Proof': token } }))
    expect(replayed.status).toBe(401)
    expect(await replayed.json()).toMatchObject({ code: 'PROOF_INVALID' })
  })

  it('under serve_policy "paired" a stranger is refused, a peer it pulls from is served', async () => {
    const { feed } = makeFeed({ servePolicy: 'paired', pullsFrom: (did) => did === third.did })
    await expect(ask(feed)).rejects.toMatchObject({ code: 'PEER_NOT_PAIRED', status: 403 })
    await expect(ask(feed, {}, third)).resolves.toMatchObject({ answer: { status: 200 } })
  })

  it('refuses a target namespace the caller is not bound to', async () => {
    const { feed } = makeFeed()
    await expect(ask(feed, { target_namespace: 'team' })).rejects.toMatchObject({ code: 'NAMESPACE_CLAIM_DENIED', status: 403 })
    const bound = makeFeed({ registry: { bindingOf: (did) => (did === caller.did ? 'team' : null), grants: () => [] } })
    await emit(bound.store, 1, { body: { namespace: 'team', text: 'for team' } })
    const { body } = await ask(bound.feed, { target_namespace: 'team' })
    expect(body.records).toHaveLength(1)
  })

  it('rejects a bad query with INVALID_REQUEST', async () => {
    const { feed } = makeFeed()
    await expect(ask(feed, { thread: 'nope' })).rejects.toMatchObject({ status: 400 })
    await expect(ask(feed, { limit: '0' })).rejects.toMatchObject({ status: 400 })
    await expect(ask(feed, { limit: '10001' })).rejects.toMatchObject({ status: 400 })
    await expect(ask(feed, { feed: 'stream' })).rejects.toMatchObject({ status: 400 })
    await expect(ask(feed, { timeout: '30001' })).rejects.toMatchObject({ status: 400 })
  })
})

describe('page size in UTF-8 bytes (SPEC 3)', () => {
  // 20,000 CJK characters: 20,000 UTF-16 units but 60,000 UTF-8 bytes each.
  const cjk = '漢字かな交じり文'.repeat(2500)

  it('450 records of 20,000 CJK characters: every page is at most 8 MiB of UTF-8, and all 450 come through', async () => {
    const { feed, store } = makeFeed()
    const sent = await emit(store, 450, { body: { text: cjk } })
    const got: string[] = []
    let since: string | undefined
    let pages = 0
    for (;;) {
      const { answer, body } = await ask(feed, since ? { since } : {})
      expect(Buffer.byteLength(answer.body, 'utf8')).toBeLessThanOrEqual(MAX_CHANGES_BYTES)
      expect(body.records.length).toBeGreaterThan(0)
      got.push(...ids(body))
      pages++
      since = body.next_cursor
      if (!body.has_more) break
    }
    expect(got).toEqual(sent.map((s) => s.id))
    expect(pages).toBeGreaterThanOrEqual(4)
  })

  it('answers at most the max_bytes the puller states; one that leaves it out gets 8 MiB', async () => {
    const { feed, store } = makeFeed()
    await emit(store, 40, { body: { text: cjk } })
    const small = await ask(feed, { max_bytes: String(256 * 1024) })
    expect(Buffer.byteLength(small.answer.body, 'utf8')).toBeLessThanOrEqual(256 * 1024)
    expect(small.body.records.length).toBe(4)
    const old = await ask(feed)
    expect(old.body.records.length).toBe(40)
    // A larger statement is read as the source's own cap.
    const big = await ask(feed, { max_bytes: String(100 * 1024 * 1024) })
    expect(big.body.records.length).toBe(40)
  })

  it('a page carries at least one record; a record larger than the caller reads is passed over, not served or stuck on', async () => {
    const { feed, store } = makeFeed()
    const [huge, small] = [...(await emit(store, 1, { body: { text: 'x'.repeat(5000) } })), ...(await emit(store, 1))]
    const all = await ask(feed)
    expect(ids(all.body)).toEqual([huge!.id, small!.id])
    // The page frame takes up to 256 bytes; the envelope is written as JSON.stringify writes it.
    const hugeBytes = JSON.stringify(all.body.records[0]).length
    const one = await ask(feed, { max_bytes: String(hugeBytes + 256 + 10) })
    expect(ids(one.body)).toEqual([huge!.id])
    expect(one.body.has_more).toBe(true)
    const tiny = await ask(feed, { max_bytes: String(hugeBytes + 255) })
    expect(ids(tiny.body)).toEqual([small!.id])
    expect(tiny.body.has_more).toBe(false)
  })

  it('max_bytes below 1024 or not a number is INVALID_REQUEST', async () => {
    const { feed } = makeFeed()
    for (const bad of ['10', 'lots', '-1']) {
      await expect(ask(feed, { max_bytes: bad })).rejects.toMatchObject({ code: 'INVALID_REQUEST', status: 400 })
    }
  })
})

describe("threads of this instance's own configuration (SPEC 3)", () => {
  it.each(['th_consent', 'th_namespace_registry', 'th_federation_pairs'])('%s is served to no peer: 403 THREAD_PRIVATE', async (thread) => {
    const { feed, store } = makeFeed()
    await emit(store, 2, { thread })
    await expect(ask(feed, { thread })).rejects.toMatchObject({ code: 'THREAD_PRIVATE', status: 403 })
    const handler = changeFeedHandler(feed)
    const url = changesUrl({ thread })
    const { token } = await createRequestProof(caller, { method: 'GET', pathAndQuery: url.pathname + url.search, aud: source.did })
    const res = await handler(new Request(url, { headers: { [PROOF_HEADER]: token } }))
    expect(res.status).toBe(403)
    const text = await res.text()
    expect(JSON.parse(text)).toMatchObject({ object: 'error', code: 'THREAD_PRIVATE' })
    expect(text).not.toContain('"records"')
  })

  it('an ordinary thread with a similar name is served', async () => {
    const { feed, store } = makeFeed()
    const [r] = await emit(store, 1, { thread: 'th_consent_demo' })
    const { body } = await ask(feed, { thread: 'th_consent_demo' })
    expect(ids(body)).toEqual([r!.id])
  })
})
