import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { Keypair, SplError } from '@spl/identity'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  DID_DOCUMENT_CONTEXT,
  DidWebError,
  didWebDocument,
  didWebUrl,
  fetchDidWebDocument,
  parseDidWeb,
  readDidWebDocument,
  toDidWeb,
} from './did-web.js'

/** The code of what `fn` throws (fails the test when it does not throw a SplError). */
function codeOf(fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(SplError)
    return (err as SplError).code
  }
  throw new Error('did not throw')
}

async function rejectionOf(p: Promise<unknown>): Promise<SplError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(DidWebError)
  return err as SplError
}

describe('didWebUrl (SPEC 8)', () => {
  it('maps the bare domain to /.well-known/did.json and a path form to <path>/did.json', () => {
    expect(didWebUrl('did:web:example.com')).toBe('https://example.com/.well-known/did.json')
    expect(didWebUrl('did:web:example.com:u:alice')).toBe('https://example.com/u/alice/did.json')
    expect(didWebUrl('did:web:w3c-ccg.github.io:user:alice')).toBe('https://w3c-ccg.github.io/user/alice/did.json')
  })

  it('reads %3A as the port, in both forms', () => {
    expect(didWebUrl('did:web:example.com%3A8443')).toBe('https://example.com:8443/.well-known/did.json')
    expect(didWebUrl('did:web:example.com%3a8443:u:bob')).toBe('https://example.com:8443/u/bob/did.json')
    // The default port is the default port.
    expect(didWebUrl('did:web:example.com%3A443')).toBe('https://example.com/.well-known/did.json')
  })

  it('uses http only for localhost, 127.0.0.1 and [::1]', () => {
    expect(didWebUrl('did:web:localhost%3A9100')).toBe('http://localhost:9100/.well-known/did.json')
    expect(didWebUrl('did:web:127.0.0.1%3A9100:u:a')).toBe('http://127.0.0.1:9100/u/a/did.json')
    expect(didWebUrl('did:web:%5B%3A%3A1%5D%3A9100')).toBe('http://[::1]:9100/.well-known/did.json')
    expect(didWebUrl('did:web:10.0.0.5%3A9100')).toBe('https://10.0.0.5:9100/.well-known/did.json')
    expect(didWebUrl('did:web:localhost.example.com')).toBe('https://localhost.example.com/.well-known/did.json')
    expect(didWebUrl('did:web:%5B2001%3Adb8%3A%3A5%5D')).toBe('https://[2001:db8::5]/.well-known/did.json')
  })

  it('decodes percent-encoded path segments and encodes them again for the URL', () => {
    expect(didWebUrl('did:web:example.com:u:al%20ice')).toBe('https://example.com/u/al%20ice/did.json')
    expect(parseDidWeb('did:web:Example.COM:u:Alice')).toMatchObject({
      did: 'did:web:example.com:u:Alice',
      host: 'example.com',
      path: ['u', 'Alice'],
    })
  })

  it.each([
    ['did:key:z6Mk', 'another method'],
    ['did:web:', 'empty'],
    ['did:web:example.com::u', 'empty segment'],
    ['did:web:example.com/u/alice', 'a slash'],
    ['did:web:example.com#key-1', 'a fragment'],
    ['did:web:example.com?x=1', 'a query'],
    ['did:web:exa_mple.com', 'not a DNS name'],
    ['did:web:-bad.com', 'a label starting with -'],
    ['did:web:example.com%3A99999', 'a port out of range'],
    ['did:web:example.com%3A0', 'port 0'],
    ['did:web:example.com%3Aabc', 'a port that is no number'],
    ['did:web:example.com%2Fevil', 'an encoded slash in the host'],
    ['did:web:example.com%40evil.com', 'an encoded @ in the host'],
    ['did:web:example.com:%2E%2E', 'a .. path segment'],
    ['did:web:example.com:a%2Fb', 'an encoded slash in a path segment'],
    ['did:web:example.com:%0A', 'a control character'],
    ['did:web:example.com:%zz', 'broken percent-encoding'],
    ['did:web:%5Bnot-ipv6%5D', 'a bracketed non-address'],
    [`did:web:${'a'.repeat(2100)}.com`, 'too long'],
  ])('refuses %s (%s) with DID_WEB_INVALID', (did) => {
    expect(codeOf(() => didWebUrl(did))).toBe('DID_WEB_INVALID')
  })
})

describe('toDidWeb (what --domain accepts)', () => {
  it('takes a domain, a domain and port, or a did:web', () => {
    expect(toDidWeb('alice.dev')).toBe('did:web:alice.dev')
    expect(toDidWeb(' Alice.Dev ')).toBe('did:web:alice.dev')
    expect(toDidWeb('alice.dev:8443')).toBe('did:web:alice.dev%3A8443')
    expect(toDidWeb('[::1]:9100')).toBe('did:web:%5B%3A%3A1%5D%3A9100')
    expect(toDidWeb('did:web:example.com:u:alice')).toBe('did:web:example.com:u:alice')
    expect(toDidWeb('did:web:example.com%3a8443')).toBe('did:web:example.com%3A8443')
  })

  it.each([
    '',
    'https://alice.dev',
    'alice.dev/u/alice',
    'alice.dev:u:alice',
    'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK',
    'bob@alice.dev',
    'a b',
  ])('refuses %j with a code and a fix', (input) => {
    let err: unknown
    try {
      toDidWeb(input)
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(DidWebError)
    expect((err as DidWebError).code).toBe('DID_WEB_INVALID')
    expect((err as DidWebError).fix).toMatch(/did:web/)
  })
})

describe('didWebDocument', () => {
  const kp = Keypair.fromSeed(new Uint8Array(32).fill(7))

  it('is a W3C DID document: one Ed25519VerificationKey2020 from the did:key, the did:key as alsoKnownAs, the SyncropelDaemon service', () => {
    const doc = didWebDocument({ keypair: kp, domain: 'alice.dev', endpoint: 'https://alice.dev:9100/' })
    expect(doc).toEqual({
      '@context': ['https://www.w3.org/ns/did/v1', 'https://w3id.org/security/suites/ed25519-2020/v1'],
      id: 'did:web:alice.dev',
      alsoKnownAs: [kp.did],
      verificationMethod: [
        {
          id: 'did:web:alice.dev#key-1',
          type: 'Ed25519VerificationKey2020',
          controller: 'did:web:alice.dev',
          publicKeyMultibase: kp.did.slice('did:key:'.length),
        },
      ],
      authentication: ['did:web:alice.dev#key-1'],
      assertionMethod: ['did:web:alice.dev#key-1'],
      service: [{ id: '#spl', type: 'SyncropelDaemon', serviceEndpoint: 'https://alice.dev:9100' }],
    })
    expect(doc['@context']).toEqual([...DID_DOCUMENT_CONTEXT])
    expect(doc.verificationMethod[0]!.publicKeyMultibase).toMatch(/^z6Mk/)
  })

  it('names a port or path form in its id', () => {
    expect(didWebDocument({ keypair: kp, domain: 'alice.dev:8443', endpoint: 'http://10.0.0.5:9100' }).id).toBe('did:web:alice.dev%3A8443')
    expect(didWebDocument({ keypair: kp, domain: 'did:web:example.com:u:alice', endpoint: 'http://10.0.0.5:9100' }).id).toBe(
      'did:web:example.com:u:alice',
    )
  })

  it('refuses an endpoint that is not an http(s) URL', () => {
    for (const endpoint of ['alice.dev', 'ftp://alice.dev', 'https://u:p@alice.dev', 'https://alice.dev/?x=1']) {
      expect(codeOf(() => didWebDocument({ keypair: kp, domain: 'alice.dev', endpoint }))).toBe('URL_INVALID')
    }
  })

  it('reads back to the did:key and the endpoint', () => {
    const doc = didWebDocument({ keypair: kp, domain: 'alice.dev', endpoint: 'https://alice.dev' })
    expect(readDidWebDocument(JSON.parse(JSON.stringify(doc)), 'did:web:alice.dev', 5)).toEqual({
      did: 'did:web:alice.dev',
      didKey: kp.did,
      keyId: 'did:web:alice.dev#key-1',
      url: 'https://alice.dev',
      fetchedAt: 5,
    })
  })
})

describe('readDidWebDocument', () => {
  const a = Keypair.fromSeed(new Uint8Array(32).fill(1))
  const b = Keypair.fromSeed(new Uint8Array(32).fill(2))
  const did = 'did:web:alice.dev'
  const base = () =>
    didWebDocument({ keypair: a, domain: 'alice.dev', endpoint: 'https://alice.dev' }) as unknown as Record<string, unknown>

  it('prefers the key assertionMethod names, resolves relative ids, and takes Multikey too', () => {
    const doc = {
      id: did,
      verificationMethod: [
        { id: '#auth', type: 'Multikey', controller: did, publicKeyMultibase: b.did.slice(8) },
        { id: '#sign', type: 'Ed25519VerificationKey2020', controller: did, publicKeyMultibase: a.did.slice(8) },
      ],
      assertionMethod: ['#sign'],
      service: [{ id: `${did}#spl`, type: ['LinkedDomains', 'SyncropelDaemon'], serviceEndpoint: ['https://alice.dev/spl/'] }],
    }
    expect(readDidWebDocument(doc, did, 0)).toMatchObject({ didKey: a.did, keyId: `${did}#sign`, url: 'https://alice.dev/spl' })
  })

  it.each([
    ['not an object', () => []],
    ['another id', () => ({ ...base(), id: 'did:web:mallory.dev' })],
    ['no verification method', () => ({ ...base(), verificationMethod: [] })],
    [
      'a key of another type',
      () => ({ ...base(), verificationMethod: [{ id: `${did}#key-1`, type: 'JsonWebKey2020', publicKeyJwk: {} }] }),
    ],
    [
      'a multibase that is no ed25519 key',
      () => ({
        ...base(),
        verificationMethod: [
          {
            id: `${did}#key-1`,
            type: 'Ed25519VerificationKey2020',
            publicKeyMultibase: 'zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme',
          },
        ],
      }),
    ],
    [
      'no SyncropelDaemon service',
      () => ({ ...base(), service: [{ id: '#x', type: 'LinkedDomains', serviceEndpoint: 'https://alice.dev' }] }),
    ],
    [
      'a service endpoint that is no URL',
      () => ({ ...base(), service: [{ id: '#spl', type: 'SyncropelDaemon', serviceEndpoint: 'javascript:alert(1)' }] }),
    ],
  ])('refuses a document with %s as DID_DOCUMENT_INVALID', (_what, make) => {
    expect(codeOf(() => readDidWebDocument(make(), did, 0))).toBe('DID_DOCUMENT_INVALID')
  })
})

describe('fetchDidWebDocument over real HTTP (127.0.0.1 is resolved over http)', () => {
  let server: http.Server
  let did: (path?: string) => string
  const routes = new Map<string, { status: number; body: string }>()
  const seen: string[] = []

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      seen.push(req.url ?? '')
      const r = routes.get(req.url ?? '') ?? { status: 404, body: 'no' }
      res.writeHead(r.status, { 'content-type': 'application/json' }).end(r.body)
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const port = (server.address() as AddressInfo).port
    did = (path) => `did:web:127.0.0.1%3A${port}${path ?? ''}`
  })
  afterAll(async () => {
    await new Promise((r) => server.close(r))
  })

  it('GETs the mapped URL and parses the JSON', async () => {
    routes.set('/u/alice/did.json', { status: 200, body: '{"id":"x"}' })
    expect(await fetchDidWebDocument(did(':u:alice'))).toEqual({ id: 'x' })
    expect(seen.at(-1)).toBe('/u/alice/did.json')
  })

  it('tells "not found" (404, 410) from a network error and from a malformed document', async () => {
    routes.set('/gone/did.json', { status: 410, body: '' })
    routes.set('/broken/did.json', { status: 500, body: '' })
    routes.set('/moved/did.json', { status: 301, body: '' })
    routes.set('/html/did.json', { status: 200, body: '<html>' })
    routes.set('/huge/did.json', { status: 200, body: `"${'x'.repeat(70 * 1024)}"` })
    expect((await rejectionOf(fetchDidWebDocument(did()))).code).toBe('DID_NOT_FOUND')
    expect((await rejectionOf(fetchDidWebDocument(did(':gone')))).code).toBe('DID_NOT_FOUND')
    expect((await rejectionOf(fetchDidWebDocument(did(':broken')))).code).toBe('DID_RESOLVE_FAILED')
    expect((await rejectionOf(fetchDidWebDocument(did(':moved')))).code).toBe('DID_RESOLVE_FAILED')
    expect((await rejectionOf(fetchDidWebDocument(did(':html')))).code).toBe('DID_DOCUMENT_INVALID')
    expect((await rejectionOf(fetchDidWebDocument(did(':huge')))).code).toBe('DID_DOCUMENT_INVALID')
    // A port nothing listens on: the network, not the domain, failed.
    const closed = http.createServer()
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r))
    const port = (closed.address() as AddressInfo).port
    await new Promise((r) => closed.close(r))
    const down = await rejectionOf(fetchDidWebDocument(`did:web:127.0.0.1%3A${port}`))
    expect(down.code).toBe('DID_RESOLVE_FAILED')
    expect(down.message).toMatch(/CONNECT_REFUSED/)
    expect(down.fix).toBeTruthy()
  })
})
