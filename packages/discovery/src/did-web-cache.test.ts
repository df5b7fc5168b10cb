import { Keypair } from '@spl/identity'
import { describe, expect, it } from 'vitest'
import { DidWebError, didWebDocument } from './did-web.js'
import { DID_WEB_EXPIRE_MS, DID_WEB_STALE_MS, DidWebResolver } from './did-web-cache.js'

const HOUR = 3600 * 1000
const one = Keypair.fromSeed(new Uint8Array(32).fill(1))
const two = Keypair.fromSeed(new Uint8Array(32).fill(2))

/** A domain under test control: what it serves next, and every fetch it saw. */
function fakeDomain() {
  let answer: () => unknown = () => didWebDocument({ keypair: one, domain: 'alice.dev', endpoint: 'https://alice.dev' })
  const fetches: string[] = []
  let release: (() => void) | undefined
  let gate: Promise<void> | undefined
  return {
    fetches,
    serve(next: () => unknown) {
      answer = next
    },
    /** Holds the next fetches until `open()` (a background refresh in flight). */
    hold() {
      gate = new Promise((r) => {
        release = r
      })
    },
    open() {
      release?.()
      gate = undefined
    },
    fetchDocument: async (did: string) => {
      fetches.push(did)
      if (gate) await gate
      return answer()
    },
  }
}

const docOf =
  (kp: Keypair, endpoint = 'https://alice.dev') =>
  () =>
    didWebDocument({ keypair: kp, domain: 'alice.dev', endpoint })
const failing = (code: 'DID_NOT_FOUND' | 'DID_RESOLVE_FAILED') => () => {
  throw new DidWebError(code, code, 'fix')
}
const settle = () => new Promise((r) => setImmediate(r))

describe('DidWebResolver cache (fresh 1 h, stale-while-refresh, expired after 1 day)', () => {
  it('fetches once, then answers from the cache while fresh', async () => {
    let t = 1_000_000
    const domain = fakeDomain()
    const r = new DidWebResolver({ now: () => t, fetchDocument: domain.fetchDocument })
    const first = await r.resolve('alice.dev')
    expect(first).toMatchObject({ did: 'did:web:alice.dev', didKey: one.did, url: 'https://alice.dev', fromCache: false, fetchedAt: t })
    t += DID_WEB_STALE_MS - 1
    expect(await r.resolve('did:web:alice.dev')).toMatchObject({ didKey: one.did, fromCache: true, fetchedAt: 1_000_000 })
    expect(domain.fetches).toEqual(['did:web:alice.dev'])
  })

  it('when stale, answers the old document at once and refreshes it in the background (one fetch)', async () => {
    let t = 0
    const domain = fakeDomain()
    const r = new DidWebResolver({ now: () => t, fetchDocument: domain.fetchDocument })
    await r.resolve('alice.dev')
    domain.serve(docOf(two))
    domain.hold()
    t = DID_WEB_STALE_MS
    const stale = await r.resolve('alice.dev')
    expect(stale).toMatchObject({ didKey: one.did, fromCache: true })
    // A second query while the refresh runs does not start another.
    expect(await r.resolve('alice.dev')).toMatchObject({ didKey: one.did, fromCache: true })
    expect(domain.fetches).toHaveLength(2)
    domain.open()
    await settle()
    expect(await r.resolve('alice.dev')).toMatchObject({ didKey: two.did, fromCache: true, fetchedAt: DID_WEB_STALE_MS })
    expect(domain.fetches).toHaveLength(2)
  })

  it('keeps serving a stale copy when the refresh hits a network error, until it expires', async () => {
    let t = 0
    const domain = fakeDomain()
    const r = new DidWebResolver({ now: () => t, fetchDocument: domain.fetchDocument })
    await r.resolve('alice.dev')
    domain.serve(failing('DID_RESOLVE_FAILED'))
    t = 2 * HOUR
    expect(await r.resolve('alice.dev')).toMatchObject({ didKey: one.did, fromCache: true })
    await settle()
    t = DID_WEB_EXPIRE_MS - 1
    expect(await r.resolve('alice.dev')).toMatchObject({ didKey: one.did, fromCache: true })
    await settle()
    // Expired: the next resolution waits for the fetch, and its error is the answer.
    t = DID_WEB_EXPIRE_MS
    await expect(r.resolve('alice.dev')).rejects.toMatchObject({ code: 'DID_RESOLVE_FAILED' })
    expect(r.peek('alice.dev')).toBeUndefined()
  })

  it('drops a stale copy when the refresh says the document is gone', async () => {
    let t = 0
    const domain = fakeDomain()
    const r = new DidWebResolver({ now: () => t, fetchDocument: domain.fetchDocument })
    await r.resolve('alice.dev')
    domain.serve(failing('DID_NOT_FOUND'))
    t = 2 * HOUR
    expect(await r.resolve('alice.dev')).toMatchObject({ fromCache: true })
    await settle()
    expect(r.peek('alice.dev')).toBeUndefined()
    await expect(r.resolve('alice.dev')).rejects.toMatchObject({ code: 'DID_NOT_FOUND' })
  })

  it('after expiry fetches before answering', async () => {
    let t = 0
    const domain = fakeDomain()
    const r = new DidWebResolver({ now: () => t, fetchDocument: domain.fetchDocument })
    await r.resolve('alice.dev')
    domain.serve(docOf(two))
    t = DID_WEB_EXPIRE_MS
    expect(await r.resolve('alice.dev')).toMatchObject({ didKey: two.did, fromCache: false })
    expect(domain.fetches).toHaveLength(2)
  })

  it('refresh: true fetches now even when fresh; a failure leaves the cached copy', async () => {
    const domain = fakeDomain()
    const r = new DidWebResolver({ now: () => 0, fetchDocument: domain.fetchDocument })
    await r.resolve('alice.dev')
    domain.serve(docOf(two))
    expect(await r.resolve('alice.dev', { refresh: true })).toMatchObject({ didKey: two.did, fromCache: false })
    domain.serve(failing('DID_RESOLVE_FAILED'))
    await expect(r.resolve('alice.dev', { refresh: true })).rejects.toMatchObject({ code: 'DID_RESOLVE_FAILED' })
    expect(r.peek('alice.dev')?.didKey).toBe(two.did)
    expect(domain.fetches).toHaveLength(3)
  })

  it('does not cache failures: not found, a network error and a malformed document are each their own code', async () => {
    const domain = fakeDomain()
    const r = new DidWebResolver({ now: () => 0, fetchDocument: domain.fetchDocument })
    domain.serve(failing('DID_NOT_FOUND'))
    await expect(r.resolve('alice.dev')).rejects.toMatchObject({ code: 'DID_NOT_FOUND' })
    domain.serve(failing('DID_RESOLVE_FAILED'))
    await expect(r.resolve('alice.dev')).rejects.toMatchObject({ code: 'DID_RESOLVE_FAILED' })
    domain.serve(() => ({ id: 'did:web:alice.dev' }))
    await expect(r.resolve('alice.dev')).rejects.toMatchObject({ code: 'DID_DOCUMENT_INVALID' })
    await expect(r.resolve('not a domain')).rejects.toMatchObject({ code: 'DID_WEB_INVALID' })
    expect(domain.fetches).toHaveLength(3)
    expect(r.size).toBe(0)
  })

  it('one fetch for concurrent resolutions of the same DID', async () => {
    const domain = fakeDomain()
    const r = new DidWebResolver({ now: () => 0, fetchDocument: domain.fetchDocument })
    domain.hold()
    const both = Promise.all([r.resolve('alice.dev'), r.resolve('did:web:alice.dev')])
    domain.open()
    const [a, b] = await both
    expect(a.didKey).toBe(one.did)
    expect(b.didKey).toBe(one.did)
    expect(domain.fetches).toHaveLength(1)
  })

  it('flush forgets every document, also one whose fetch was running', async () => {
    const domain = fakeDomain()
    const r = new DidWebResolver({ now: () => 0, fetchDocument: domain.fetchDocument })
    await r.resolve('alice.dev')
    r.flush()
    expect(r.size).toBe(0)
    domain.hold()
    const running = r.resolve('alice.dev')
    r.flush()
    domain.open()
    await running
    expect(r.size).toBe(0)
    await r.resolve('alice.dev')
    expect(domain.fetches).toHaveLength(3)
  })

  it('keeps at most maxEntries documents', async () => {
    const r = new DidWebResolver({
      now: () => 0,
      maxEntries: 2,
      fetchDocument: async (did) => didWebDocument({ keypair: one, domain: did, endpoint: 'https://x.dev' }),
    })
    for (const d of ['a.dev', 'b.dev', 'c.dev']) await r.resolve(d)
    expect(r.size).toBe(2)
    expect(r.peek('a.dev')).toBeUndefined()
    expect(r.peek('c.dev')).toBeDefined()
  })
})
