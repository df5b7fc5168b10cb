import { Keypair } from '@spl/identity'
import { describe, expect, it } from 'vitest'
import { didWebDocument } from './did-web.js'
import { DID_WEB_STALE_MS } from './did-web-cache.js'
import { DID_WEB_RECHECK_AGAIN_MS, didWebSource } from './did-web-source.js'
import { Discovery, type ManifestVerifier } from './discovery.js'
import { ManifestInvalidError, type VerifiedManifest } from './manifest.js'
import type { FoundPeer, PeerSource } from './source.js'

const silent = { info() {}, warn() {} }
const URL_A = 'https://alice.dev:9100'
const k1 = Keypair.fromSeed(new Uint8Array(32).fill(1))
const k2 = Keypair.fromSeed(new Uint8Array(32).fill(2))

/** The world: which key the domain's document names, and which key the daemon at URL_A signs with. */
interface World {
  t: number
  documentKey: Keypair
  daemonKey: Keypair
  fetches: number
  verifies: number
  fetchDocument(did: string): Promise<unknown>
  verify: ManifestVerifier
}

function world() {
  const w: World = {
    t: 1_000,
    documentKey: k1,
    daemonKey: k1,
    fetches: 0,
    verifies: 0,
    fetchDocument: async (did: string) => {
      w.fetches++
      return didWebDocument({ keypair: w.documentKey, domain: did, endpoint: URL_A })
    },
    verify: (async (url: string, did: string) => {
      w.verifies++
      if (url === URL_A && did === w.daemonKey.did) return { did } as VerifiedManifest
      throw new ManifestInvalidError('MANIFEST_DID_MISMATCH', `signed by ${w.daemonKey.did}, not ${did}`, 'check')
    }) as ManifestVerifier,
  }
  const source = didWebSource({ now: () => w.t, fetchDocument: w.fetchDocument, logger: silent })
  const discovery = new Discovery({ sources: [source], logger: silent, verify: w.verify, now: () => w.t })
  const discover = async () => {
    const { peers, failures } = await discovery.discover({ domain: 'alice.dev', timeoutMs: 100 }, ['did-web'])
    expect(failures).toEqual([])
    expect(peers).toHaveLength(1)
    return peers[0]!
  }
  return { w, source, discovery, discover }
}

describe('the did-web source', () => {
  it('reports the did:key of the document key, the did:web as aka and the service URL; verified by the manifest', async () => {
    const { w, discover } = world()
    expect(await discover()).toMatchObject({ did: k1.did, aka: ['did:web:alice.dev'], url: URL_A, sources: ['did-web'], verified: true })
    expect(w.fetches).toBe(1)
  })

  it('without a domain fails with a code and the fix', async () => {
    const { discovery } = world()
    const { failures } = await discovery.discover({ timeoutMs: 100 }, ['did-web'])
    expect(failures).toEqual([
      { method: 'did-web', code: 'DID_WEB_DOMAIN_REQUIRED', message: expect.any(String), fix: expect.stringContaining('--domain') },
    ])
  })

  it('a document from the cache is verified afresh: a key rotated since is noticed on the next query', async () => {
    const { w, discover } = world()
    await discover()
    expect(w.verifies).toBe(1)
    await discover()
    // Served from the cache, so the manifest was checked again (no remembered verdict).
    expect(w.fetches).toBe(1)
    expect(w.verifies).toBe(2)
  })

  it('a rotated key is picked up after one signature failure: exactly one re-fetch', async () => {
    const { w, discover } = world()
    await discover()
    // The peer rotates its key and publishes the new document; our cached copy names the old key.
    w.daemonKey = k2
    w.documentKey = k2
    const after = await discover()
    expect(after).toMatchObject({ did: k2.did, aka: ['did:web:alice.dev'], url: URL_A, verified: true })
    expect(w.fetches).toBe(2)
    // The new document is the cached one now.
    expect(await discover()).toMatchObject({ did: k2.did, verified: true })
    expect(w.fetches).toBe(2)
  })

  it('a document that still names the old key is re-fetched once, not on every query, until the recheck pause is over', async () => {
    const { w, discover } = world()
    await discover()
    w.daemonKey = k2 // rotated, but the domain still serves the old document
    expect(await discover()).toMatchObject({ did: k1.did, verified: false, verify_error: { code: 'MANIFEST_DID_MISMATCH' } })
    expect(w.fetches).toBe(2)
    expect(await discover()).toMatchObject({ did: k1.did, verified: false })
    expect(w.fetches).toBe(2)
    // The operator uploads the new document later: picked up once the pause is over.
    w.documentKey = k2
    w.t += DID_WEB_RECHECK_AGAIN_MS
    expect(await discover()).toMatchObject({ did: k2.did, verified: true })
    expect(w.fetches).toBe(3)
  })

  it('a document fetched just now is not fetched again when its manifest fails (it would say the same)', async () => {
    const { w, discover } = world()
    w.daemonKey = k2
    expect(await discover()).toMatchObject({ did: k1.did, verified: false })
    expect(w.fetches).toBe(1)
  })

  it('flush forgets the documents: the next query fetches', async () => {
    const { w, source, discover } = world()
    await discover()
    source.flush?.()
    await discover()
    expect(w.fetches).toBe(2)
  })

  it('a stale document is used while the refresh runs, and the refreshed one after', async () => {
    const { w, discover } = world()
    await discover()
    w.documentKey = k2
    w.daemonKey = k2
    w.t += DID_WEB_STALE_MS
    // Stale: answered from the cache (old key), whose manifest now fails → one re-fetch → the new key.
    expect(await discover()).toMatchObject({ did: k2.did, verified: true })
    expect(w.fetches).toBe(2)
  })

  it('Discovery keeps the failed sighting when a recheck throws, and asks no source without recheck', async () => {
    const k = k1.did
    const sighting = (source: 'did-web' | 'static'): FoundPeer => ({ did: k, url: URL_A, source, last_seen: 1, reverify: true })
    let rechecks = 0
    const throwing: PeerSource = {
      method: 'did-web',
      async start() {},
      async stop() {},
      async find() {
        return [sighting('did-web')]
      },
      async recheck() {
        rechecks++
        throw new Error('boom')
      },
    }
    const plain: PeerSource = { method: 'static', async start() {}, async stop() {}, find: async () => [sighting('static')] }
    const verify = (async (_url: string, did: string) => {
      throw new ManifestInvalidError('MANIFEST_SIGNATURE_INVALID', `not ${did}`, 'check')
    }) as ManifestVerifier
    const d = new Discovery({ sources: [throwing, plain], logger: silent, verify })
    const { peers } = await d.discover({ timeoutMs: 100 })
    expect(rechecks).toBe(1)
    expect(peers).toEqual([
      expect.objectContaining({ did: k, verified: false, verify_error: expect.objectContaining({ code: 'MANIFEST_SIGNATURE_INVALID' }) }),
    ])
    expect(peers[0]!.sources.sort()).toEqual(['did-web', 'static'])
  })
})
