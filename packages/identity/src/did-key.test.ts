import { readFileSync } from 'node:fs'
import { base58btc } from 'multiformats/bases/base58'
import { describe, expect, it } from 'vitest'
import { prng } from '../../../test-utils/prng.js'
import { decodeDidKey, ED25519_PUBLIC_KEY_LENGTH, encodeDidKey, isDidKey, shortDid } from './did-key.js'
import { nodeBackend } from './ed25519.js'
import { InvalidDidError, SplError } from './errors.js'
import { Keypair } from './keypair.js'
import { nobleBackend } from './noble.js'

interface DidKeyVectors {
  valid: { source: string; seed: string; did: string; publicKeyBase58: string }[]
  invalid: { name: string; did: string; payload_hex: string | null }[]
}
const vectors = JSON.parse(readFileSync(new URL('../test/vectors/did-key.json', import.meta.url), 'utf8')) as DidKeyVectors

const hex = (s: string) => Uint8Array.from(Buffer.from(s, 'hex'))

function expectInvalidDid(did: string): InvalidDidError {
  let caught: unknown
  try {
    decodeDidKey(did)
  } catch (err) {
    caught = err
  }
  expect(caught, `${JSON.stringify(did)} must be rejected`).toBeInstanceOf(InvalidDidError)
  const err = caught as InvalidDidError
  expect(err).toBeInstanceOf(SplError)
  expect(err.code).toBe('INVALID_DID')
  expect(err.name).toBe('InvalidDidError')
  expect(err.status).toBe(400)
  expect(err.did).toBe(did)
  return err
}

describe('did:key vectors', () => {
  it('has the W3C vectors and the spl seed', () => {
    expect(vectors.valid.filter((v) => v.source === 'w3c-ccg/did-method-key')).toHaveLength(5)
    expect(vectors.invalid.length).toBeGreaterThanOrEqual(20)
  })

  it.each(vectors.valid)('seed $seed → $did (both backends)', ({ seed, did, publicKeyBase58 }) => {
    const publicKey = base58btc.decode(`z${publicKeyBase58}`)
    expect(publicKey).toHaveLength(32)
    expect(encodeDidKey(publicKey)).toBe(did)
    expect(decodeDidKey(did)).toEqual(publicKey)
    for (const backend of [nodeBackend, nobleBackend]) {
      expect(backend.publicKeyFromSeed(hex(seed))).toEqual(publicKey)
      expect(Keypair.fromSeed(hex(seed), backend).did).toBe(did)
    }
    expect(isDidKey(did)).toBe(true)
  })

  it.each(vectors.invalid)('rejects $name', ({ did, payload_hex }) => {
    if (payload_hex !== null) {
      // The vector is what it claims: its multibase payload decodes to these bytes.
      expect(did.startsWith('did:key:z')).toBe(true)
      expect(Buffer.from(base58btc.decode(did.slice('did:key:'.length))).toString('hex')).toBe(payload_hex)
    }
    expectInvalidDid(did)
    expect(isDidKey(did)).toBe(false)
  })
})

describe('encodeDidKey / decodeDidKey', () => {
  it('round-trips any 32-byte key and always starts did:key:z6Mk', () => {
    const rand = prng(42)
    const edges = [new Uint8Array(32), new Uint8Array(32).fill(0xff), Uint8Array.from({ length: 32 }, (_, i) => i)]
    const random = Array.from({ length: 300 }, () => Uint8Array.from({ length: 32 }, () => Math.floor(rand() * 256)))
    for (const key of [...edges, ...random]) {
      const did = encodeDidKey(key)
      expect(did.startsWith('did:key:z6Mk')).toBe(true)
      const back = decodeDidKey(did)
      expect(back).toEqual(key)
      // A copy, not a view: mutating it cannot change what the next decode returns.
      back[0] = back[0]! ^ 1
      expect(decodeDidKey(did)).toEqual(key)
    }
  })

  it('round-trips real keys from both backends', () => {
    for (let i = 0; i < 20; i++) {
      const kp = Keypair.generate(i % 2 ? nodeBackend : nobleBackend)
      expect(kp.did.startsWith('did:key:z6Mk')).toBe(true)
      expect(decodeDidKey(kp.did)).toEqual(kp.publicKey)
    }
  })

  it('refuses to encode a key that is not 32 bytes', () => {
    expect(ED25519_PUBLIC_KEY_LENGTH).toBe(32)
    for (const n of [0, 31, 33, 64]) expect(() => encodeDidKey(new Uint8Array(n))).toThrow(RangeError)
  })

  it('rejects a wrong multicodec (secp256k1 0xe7 0x01) built here', () => {
    const secp = Uint8Array.from([0xe7, 0x01, 0x02, ...new Uint8Array(32).fill(7)])
    const err = expectInvalidDid(`did:key:${base58btc.encode(secp)}`)
    expect(err.message).toMatch(/multicodec/)
  })

  it.each([31, 33])('rejects an ed25519 key of %i bytes', (n) => {
    const bytes = Uint8Array.from([0xed, 0x01, ...new Uint8Array(n).fill(9)])
    const err = expectInvalidDid(`did:key:${base58btc.encode(bytes)}`)
    expect(err.message).toContain(`${n} bytes`)
  })

  it.each(['0', 'O', 'I', 'l'])('rejects base58 with the excluded character %s', (c) => {
    const did = encodeDidKey(new Uint8Array(32).fill(1))
    const err = expectInvalidDid(`${did.slice(0, 15)}${c}${did.slice(16)}`)
    expect(err.message).toMatch(/base58/)
  })

  it('rejects a missing z prefix and other multibases', () => {
    const did = encodeDidKey(new Uint8Array(32).fill(1))
    expect(expectInvalidDid(`did:key:${did.slice(9)}`).message).toMatch(/base58btc/)
    expect(expectInvalidDid(`did:key:m${Buffer.from(decodeDidKey(did)).toString('base64')}`).message).toMatch(/base58btc/)
  })

  it('rejects what is not a did:key at all', () => {
    for (const did of ['did:web:example.com', 'did:plc:abc', 'https://example.com', 'did:key', '']) {
      expect(expectInvalidDid(did).message).toMatch(/did:key/)
    }
    expect(isDidKey(undefined)).toBe(false)
    expect(isDidKey(42)).toBe(false)
    expect(isDidKey({})).toBe(false)
  })

  it('the error crosses the wire as the error envelope, with a fix', () => {
    const err = expectInvalidDid('did:web:example.com')
    const body = err.toJSON()
    expect(body).toMatchObject({ object: 'error', code: 'INVALID_DID' })
    expect(body.message).toContain('did:web:example.com')
    expect(body.fix).toMatch(/did:key/)
    expect(JSON.parse(JSON.stringify(err))).toEqual(body)
  })

  it('the error message quotes at most 120 characters of a huge input', () => {
    const err = expectInvalidDid(`did:web:${'x'.repeat(10_000)}`)
    expect(err.message.length).toBeLessThan(300)
  })
})

describe('shortDid', () => {
  it('shortens a did:key to its head and tail', () => {
    const did = vectors.valid[0]!.did
    expect(shortDid(did)).toBe('z6MkiTBz…ooWp')
    expect(shortDid('did:key:z6Mkshort')).toBe('z6Mkshort')
  })
})
