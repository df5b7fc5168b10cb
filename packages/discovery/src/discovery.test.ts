import { EventEmitter } from 'node:events'
import { SplError } from '@spl/identity'
import { describe, expect, it } from 'vitest'
import { Discovery, type ManifestVerifier } from './discovery.js'
import { ManifestInvalidError, type VerifiedManifest } from './manifest.js'
import type { DiscoveryMethod, FoundPeer, PeerSource } from './source.js'
import { staticSource } from './static.js'

const A = 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK'
const B = 'did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2'
const silent = { info() {}, warn() {} }

/** A source answering a fixed list (or throwing), with events. */
function fakeSource(method: DiscoveryMethod, found: Omit<FoundPeer, 'source'>[] | Error): PeerSource & { emit(p: FoundPeer): void } {
  const events = new EventEmitter()
  return {
    method,
    async start() {},
    async stop() {},
    async find() {
      if (found instanceof Error) throw found
      return found.map((f) => ({ ...f, source: method }))
    },
    on(event, listener) {
      events.on(event, listener)
    },
    emit(p) {
      events.emit('peer', p)
    },
  }
}

/** A verifier that accepts exactly the (url, did) pairs given, counting its calls. */
function verifierOf(good: Record<string, string>): ManifestVerifier & { calls: string[] } {
  const calls: string[] = []
  const verify = (async (url: string, did: string) => {
    calls.push(`${did} ${url}`)
    if (good[url] === did) return { did } as VerifiedManifest
    throw new ManifestInvalidError('MANIFEST_DID_MISMATCH', `not ${did}`, 'check')
  }) as ManifestVerifier & { calls: string[] }
  verify.calls = calls
  return verify
}

const query = { timeoutMs: 100 }

describe('Discovery', () => {
  it('merges sightings by DID, keeps every source, and prefers a verified URL', async () => {
    const mdns = fakeSource('mdns', [{ did: A, url: 'http://10.0.0.9:9100', last_seen: 5 }])
    const stat = staticSource([{ did: A, url: 'http://10.0.0.5:9100/', handle: 'alice' }], { now: () => 7 })
    const verify = verifierOf({ 'http://10.0.0.5:9100': A })
    const d = new Discovery({ sources: [mdns, stat], logger: silent, verify })
    const { peers, failures } = await d.discover(query)
    expect(failures).toEqual([])
    expect(peers).toHaveLength(1)
    expect(peers[0]).toMatchObject({ did: A, url: 'http://10.0.0.5:9100', handle: 'alice', verified: true, last_seen: 7 })
    expect(peers[0]!.sources.sort()).toEqual(['mdns', 'static'])
    expect(peers[0]!.found).toHaveLength(2)
  })

  it('a sighting whose manifest is not signed by the claimed DID stays unverified, with the reason', async () => {
    // The attacker announces A's DID with their own URL: the manifest there is not A's.
    const mdns = fakeSource('mdns', [{ did: A, url: 'http://10.0.0.66:9100', last_seen: 1 }])
    const d = new Discovery({ sources: [mdns], logger: silent, verify: verifierOf({ 'http://10.0.0.66:9100': B }) })
    const [peer] = (await d.discover(query)).peers
    expect(peer).toMatchObject({ did: A, verified: false, verify_error: { code: 'MANIFEST_DID_MISMATCH' } })
  })

  it('reports a source that fails, and a method that is not enabled, next to what others found', async () => {
    const broken = fakeSource('did-sync', new SplError('DIRECTORY_UNREACHABLE', 'down', { fix: 'later' }))
    const stat = staticSource([{ did: B, url: 'http://10.0.0.7:9100' }])
    const d = new Discovery({ sources: [broken, stat], logger: silent, verify: verifierOf({ 'http://10.0.0.7:9100': B }) })
    const r = await d.discover(query, ['did-sync', 'static', 'mdns'])
    expect(r.peers.map((p) => p.did)).toEqual([B])
    expect(r.failures).toEqual([
      { method: 'did-sync', code: 'DIRECTORY_UNREACHABLE', message: 'down', fix: 'later' },
      expect.objectContaining({ method: 'mdns', code: 'DISCOVERY_METHOD_OFF' }),
    ])
  })

  it('verifies a peer when a source announces it, and reuses the verdict', async () => {
    const mdns = fakeSource('mdns', [{ did: A, url: 'http://10.0.0.5:9100', last_seen: 1 }])
    const verify = verifierOf({ 'http://10.0.0.5:9100': A })
    const d = new Discovery({ sources: [mdns], logger: silent, verify })
    mdns.emit({ did: A, url: 'http://10.0.0.5:9100', source: 'mdns', last_seen: 1 })
    expect(await d.isVerified('http://10.0.0.5:9100', A)).toBe(true)
    await d.discover(query)
    await d.discover(query)
    expect(verify.calls).toEqual([`${A} http://10.0.0.5:9100`])
    d.flush()
    await d.discover(query)
    expect(verify.calls).toHaveLength(2)
  })

  it('keeps a failure only briefly, so a fixed peer verifies soon', async () => {
    let now = 0
    const good: Record<string, string> = {}
    const verify = verifierOf(good)
    const d = new Discovery({ sources: [staticSource([{ did: A, url: 'http://h:1' }])], logger: silent, verify, now: () => now })
    expect((await d.discover(query)).peers[0]!.verified).toBe(false)
    good['http://h:1'] = A
    expect((await d.discover(query)).peers[0]!.verified).toBe(false)
    now += 16_000
    expect((await d.discover(query)).peers[0]!.verified).toBe(true)
  })
})
