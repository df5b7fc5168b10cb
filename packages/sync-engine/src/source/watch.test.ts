import { Keypair } from '@spl/identity'
import { signRecord } from '@spl/records'
import { createRequestProof, PROOF_HEADER, verifyResponseProof, WATCH_PATH, type WatchResponse, watchResponseSchema } from '@spl/transport'
import { describe, expect, it } from 'vitest'
import { MemorySyncStore } from '../stores/memory-store.js'
import { ChangeFeed, type ChangeFeedDeps, encodeCursor } from './feed.js'
import { ThreadNotifier } from './notifier.js'
import { SubscriberStats } from './subscribers.js'
import { WatchDoor } from './watch.js'

const source = Keypair.fromSeed(new Uint8Array(32).fill(41))
const caller = Keypair.fromSeed(new Uint8Array(32).fill(42))

function makeDoor(over: Partial<ChangeFeedDeps> = {}) {
  const store = new MemorySyncStore()
  const notifier = new ThreadNotifier()
  const deps: ChangeFeedDeps = {
    keypair: source,
    store,
    registry: { bindingOf: () => null, grants: () => [] },
    notifier,
    subscribers: new SubscriberStats(),
    servePolicy: 'open',
    pullsFrom: () => false,
    isTokenRevoked: () => false,
    ...over,
  }
  const feed = new ChangeFeed(deps)
  return { door: new WatchDoor(feed, deps), store, notifier }
}

async function emit(store: MemorySyncStore, notifier: ThreadNotifier, thread: string, body: Record<string, unknown> = { text: 'x' }) {
  const s = signRecord(source, {
    parents: [],
    thread,
    actor: source.did,
    act: 'KNOW',
    body,
    clock: store.nextClock(source.did, thread),
    data_type: 'SCALAR',
  })
  const { row } = await store.appendLocal(s)
  notifier.notify(thread, row.seq)
  return s.id
}

async function watch(door: WatchDoor, body: unknown, signal?: AbortSignal): Promise<{ status: number; answer: WatchResponse }> {
  const url = new URL(`http://source.test${WATCH_PATH}`)
  const proof = await createRequestProof(caller, { method: 'POST', pathAndQuery: WATCH_PATH, aud: source.did })
  const r = await door.handle(url, { proof: proof.token, authorization: undefined }, JSON.stringify(body), signal)
  await verifyResponseProof(r.headers[PROOF_HEADER] ?? null, { peerDid: source.did, callerDid: caller.did, jti: proof.jti, body: r.body })
  return { status: r.status, answer: watchResponseSchema.parse(JSON.parse(r.body)) }
}

/** The cursor a caller holds after having seen everything up to now in `thread`. */
async function caughtUp(store: MemorySyncStore, thread: string): Promise<string> {
  return encodeCursor(store.epoch, await store.threadHead(thread), Date.now())
}

describe('the watch door', () => {
  it('answers at once with the threads that have records after their cursor, and leaves the others out', async () => {
    const { door, store, notifier } = makeDoor()
    const idA = await emit(store, notifier, 'th_a')
    await emit(store, notifier, 'th_b')
    const atB = await caughtUp(store, 'th_b')
    const { answer } = await watch(door, { threads: [{ thread: 'th_a' }, { thread: 'th_b', since: atB }], timeout: 5000 })
    expect(answer.changes).toHaveLength(1)
    expect(answer.changes[0]).toMatchObject({ thread: 'th_a', has_more: false })
    const a = answer.changes[0] as { records: { id: string }[] }
    expect(a.records.map((r) => r.id)).toEqual([idA])
  })

  it('holds while nothing is new and wakes when one of its threads gets a record', async () => {
    const { door, store, notifier } = makeDoor()
    await emit(store, notifier, 'th_a')
    await emit(store, notifier, 'th_b')
    const threads = [
      { thread: 'th_a', since: await caughtUp(store, 'th_a') },
      { thread: 'th_b', since: await caughtUp(store, 'th_b') },
    ]
    const t0 = Date.now()
    const pending = watch(door, { threads, timeout: 10_000 })
    await new Promise((r) => setTimeout(r, 100))
    expect(door.held).toEqual({ watches: 1, threads: 2 })
    const id = await emit(store, notifier, 'th_b')
    const { answer } = await pending
    expect(Date.now() - t0).toBeLessThan(5000)
    expect(answer.changes.map((c) => c.thread)).toEqual(['th_b'])
    expect((answer.changes[0] as { records: { id: string }[] }).records.map((r) => r.id)).toEqual([id])
    expect(door.held).toEqual({ watches: 0, threads: 0 })
  })

  it('an idle watch ends at its timeout with no change, and a record in another thread does not wake it', async () => {
    const { door, store, notifier } = makeDoor()
    await emit(store, notifier, 'th_a')
    const since = await caughtUp(store, 'th_a')
    const t0 = Date.now()
    const pending = watch(door, { threads: [{ thread: 'th_a', since }], timeout: 400 })
    await emit(store, notifier, 'th_other')
    const { answer } = await pending
    expect(Date.now() - t0).toBeGreaterThanOrEqual(390)
    expect(answer.changes).toEqual([])
  })

  it('the head hint is checked against the store: a record stored without a notify is still found at the next watch', async () => {
    const { door, store, notifier } = makeDoor()
    await emit(store, notifier, 'th_a')
    const since = await caughtUp(store, 'th_a')
    // A notify without a seq forgets the head; the watch then reads it from the store.
    const s = signRecord(source, { parents: [], thread: 'th_a', actor: source.did, act: 'KNOW', body: {}, clock: 99, data_type: 'SCALAR' })
    await store.appendLocal(s)
    notifier.notify('th_a')
    const { answer } = await watch(door, { threads: [{ thread: 'th_a', since }], timeout: 2000 })
    expect((answer.changes[0] as { records: { id: string }[] }).records.map((r) => r.id)).toEqual([s.id])
  })

  it('a private thread and a malformed cursor are refused for that thread only, with their codes', async () => {
    const { door, store, notifier } = makeDoor()
    const id = await emit(store, notifier, 'th_ok')
    const { answer } = await watch(door, {
      threads: [{ thread: 'th_consent' }, { thread: 'th_bad', since: 'nope' }, { thread: 'th_ok' }],
      timeout: 1000,
    })
    const byThread = new Map(answer.changes.map((c) => [c.thread, c]))
    expect(byThread.get('th_consent')).toMatchObject({ error: { code: 'THREAD_PRIVATE' } })
    expect(byThread.get('th_bad')).toMatchObject({ error: { code: 'INVALID_CURSOR' } })
    expect((byThread.get('th_ok') as { records: { id: string }[] }).records.map((r) => r.id)).toEqual([id])
  })

  it('a cursor of another store resets that thread, said with cursor_reset', async () => {
    const { door, store, notifier } = makeDoor()
    await emit(store, notifier, 'th_a')
    const { answer } = await watch(door, { threads: [{ thread: 'th_a', since: encodeCursor('0123456789abcdef', 5, 1) }], timeout: 1000 })
    expect(answer.changes[0]).toMatchObject({ thread: 'th_a', cursor_reset: true })
  })

  it('records hidden from the caller do not wake it; the cursor moves past them when the watch answers', async () => {
    const { door, store, notifier } = makeDoor({
      registry: { bindingOf: () => null, grants: () => [] },
    })
    await emit(store, notifier, 'th_a')
    const since = await caughtUp(store, 'th_a')
    const pending = watch(door, { threads: [{ thread: 'th_a', since }], timeout: 500 })
    // A record in a namespace the caller (in `default`) may not read: hidden.
    await emit(store, notifier, 'th_a', { text: 'secret', namespace: 'private' })
    const { answer } = await pending
    expect(answer.changes).toHaveLength(1)
    const ch = answer.changes[0] as { records: unknown[]; next_cursor: string; has_more: boolean }
    expect(ch.records).toEqual([])
    expect(ch.has_more).toBe(false)
    expect(ch.next_cursor).not.toBe(since)
  })

  it('refuses a body that is not a watch with INVALID_REQUEST, and a missing proof with 401', async () => {
    const { door } = makeDoor()
    await expect(watch(door, { threads: [] })).rejects.toMatchObject({ code: 'INVALID_REQUEST' })
    await expect(watch(door, { threads: [{ thread: 'th_a' }, { thread: 'th_a' }] })).rejects.toMatchObject({ code: 'INVALID_REQUEST' })
    await expect(watch(door, { threads: [{ thread: 'not a thread' }] })).rejects.toMatchObject({ code: 'INVALID_REQUEST' })
    const url = new URL(`http://source.test${WATCH_PATH}`)
    await expect(door.handle(url, { proof: undefined, authorization: undefined }, '{"threads":[{"thread":"th_a"}]}')).rejects.toMatchObject(
      {
        status: 401,
      },
    )
    const proof = await createRequestProof(caller, { method: 'POST', pathAndQuery: WATCH_PATH, aud: source.did })
    await expect(door.handle(url, { proof: proof.token, authorization: undefined }, '{not json')).rejects.toMatchObject({
      code: 'INVALID_JSON',
    })
  })

  it('a caller that hangs up ends the watch', async () => {
    const { door, store, notifier } = makeDoor()
    await emit(store, notifier, 'th_a')
    const since = await caughtUp(store, 'th_a')
    const ac = new AbortController()
    const pending = watch(door, { threads: [{ thread: 'th_a', since }], timeout: 20_000 }, ac.signal)
    await new Promise((r) => setTimeout(r, 50))
    ac.abort()
    const t0 = Date.now()
    await pending
    expect(Date.now() - t0).toBeLessThan(1000)
    expect(door.held.watches).toBe(0)
  })
})
