import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { prng } from '../../../test-utils/prng.js'
import { decodeDidKey, encodeDidKey } from './did-key.js'
import { defaultBackend, type Ed25519Backend, nodeBackend, privateKeyObjectFromSeed, publicKeyObjectFromRaw } from './ed25519.js'
import { InvalidDidError } from './errors.js'
import { Keypair, publicKeyObjectForDid } from './keypair.js'
import { nobleBackend } from './noble.js'
import { publicKeyOf, verifySignature, verifySignatureAsync } from './verify.js'

interface Ed25519Vectors {
  rfc8032: {
    name: string
    secret_key_hex: string
    public_key_hex: string
    message_hex: string
    signature_hex: string
  }[]
  seeded: {
    seed_hex: string
    public_key_hex: string
    did: string
    signatures: { name: string; message_hex: string; signature_hex: string }[]
  }
}
const vectors = JSON.parse(readFileSync(new URL('../test/vectors/ed25519.json', import.meta.url), 'utf8')) as Ed25519Vectors

const hex = (s: string) => Uint8Array.from(Buffer.from(s, 'hex'))
const toHex = (u: Uint8Array) => Buffer.from(u).toString('hex')
const backends: Ed25519Backend[] = [nodeBackend, nobleBackend]

const bytes = (rand: () => number, n: number) => Uint8Array.from({ length: n }, () => Math.floor(rand() * 256))

/** Every vector as (seed, public key, message, signature), from both files' sections. */
const allVectors = [
  ...vectors.rfc8032.map((v) => ({
    name: `RFC 8032 ${v.name}`,
    seed: v.secret_key_hex,
    publicKey: v.public_key_hex,
    message: v.message_hex,
    signature: v.signature_hex,
  })),
  ...vectors.seeded.signatures.map((v) => ({
    name: `seed 00..1f, ${v.name}`,
    seed: vectors.seeded.seed_hex,
    publicKey: vectors.seeded.public_key_hex,
    message: v.message_hex,
    signature: v.signature_hex,
  })),
]

describe('Ed25519 vectors', () => {
  it('the seeded vectors use the fixed seed 0x00..0x1f and its did:key', () => {
    expect(vectors.seeded.seed_hex).toBe(toHex(Uint8Array.from({ length: 32 }, (_, i) => i)))
    expect(encodeDidKey(hex(vectors.seeded.public_key_hex))).toBe(vectors.seeded.did)
    expect(allVectors.length).toBeGreaterThanOrEqual(8)
  })

  describe.each(backends.map((b) => [b.name, b] as const))('%s backend', (_name, backend) => {
    it.each(allVectors)('$name: public key and signature match', (v) => {
      expect(toHex(backend.publicKeyFromSeed(hex(v.seed)))).toBe(v.publicKey)
      expect(toHex(backend.sign(hex(v.seed), hex(v.message)))).toBe(v.signature)
      expect(backend.verify(hex(v.publicKey), hex(v.message), hex(v.signature))).toBe(true)
    })

    it.each(allVectors)('$name: a flipped bit anywhere fails', (v) => {
      const pk = hex(v.publicKey)
      const msg = hex(v.message)
      const sig = hex(v.signature)
      for (const i of [0, 31, 32, 63]) {
        const bad = Uint8Array.from(sig)
        bad[i] = bad[i]! ^ 0x01
        expect(backend.verify(pk, msg, bad)).toBe(false)
      }
      const longer = Uint8Array.from([...msg, 0])
      expect(backend.verify(pk, longer, sig)).toBe(false)
      if (msg.length > 0) {
        const flipped = Uint8Array.from(msg)
        flipped[0] = flipped[0]! ^ 0x80
        expect(backend.verify(pk, flipped, sig)).toBe(false)
      }
      const otherKey = hex(allVectors.find((o) => o.publicKey !== v.publicKey)!.publicKey)
      expect(backend.verify(otherKey, msg, sig)).toBe(false)
    })

    it('verifyAsync gives what verify gives, for every vector and forgery', async () => {
      const cases: [Uint8Array, Uint8Array, Uint8Array][] = []
      for (const v of allVectors) {
        const [pk, msg, sig] = [hex(v.publicKey), hex(v.message), hex(v.signature)]
        const bad = Uint8Array.from(sig)
        bad[5] = bad[5]! ^ 0x10
        cases.push(
          [pk, msg, sig],
          [pk, msg, bad],
          [pk, Uint8Array.from([...msg, 1]), sig],
          [pk, msg, sig.subarray(0, 63)],
          [pk.subarray(1), msg, sig],
        )
      }
      const sync = cases.map(([pk, msg, sig]) => backend.verify(pk, msg, sig))
      expect(sync.filter(Boolean)).toHaveLength(allVectors.length)
      expect(await Promise.all(cases.map(([pk, msg, sig]) => backend.verifyAsync(pk, msg, sig)))).toEqual(sync)
    })

    it('returns false (never throws) for malformed keys and signatures', () => {
      const v = allVectors[0]!
      const pk = hex(v.publicKey)
      const sig = hex(v.signature)
      const msg = hex(v.message)
      expect(backend.verify(pk, msg, sig.subarray(0, 63))).toBe(false)
      expect(backend.verify(pk, msg, Uint8Array.from([...sig, 0]))).toBe(false)
      expect(backend.verify(pk.subarray(0, 31), msg, sig)).toBe(false)
      expect(backend.verify(new Uint8Array(0), msg, sig)).toBe(false)
      expect(backend.verify(pk, msg, new Uint8Array(64))).toBe(false)
      // S >= L (the group order) is refused by both: no malleable signatures.
      const sPlusL = Uint8Array.from(sig)
      const L = (1n << 252n) + 27742317777372353535851937790883648493n
      let s = 0n
      for (let i = 63; i >= 32; i--) s = (s << 8n) | BigInt(sig[i]!)
      s += L
      for (let i = 32; i < 64; i++) {
        sPlusL[i] = Number(s & 0xffn)
        s >>= 8n
      }
      expect(backend.verify(pk, msg, sPlusL)).toBe(false)
    })
  })
})

describe('node:crypto and @noble/curves agree', () => {
  it('identical public keys and signatures for 200 seeded random keys and messages', () => {
    const rand = prng(7)
    for (let i = 0; i < 200; i++) {
      const seed = bytes(rand, 32)
      const msg = bytes(rand, Math.floor(rand() * 600))
      const pkNode = nodeBackend.publicKeyFromSeed(seed)
      const pkNoble = nobleBackend.publicKeyFromSeed(seed)
      expect(toHex(pkNode)).toBe(toHex(pkNoble))
      const sigNode = nodeBackend.sign(seed, msg)
      const sigNoble = nobleBackend.sign(seed, msg)
      expect(toHex(sigNode)).toBe(toHex(sigNoble))
      // Each verifies the other's signature.
      expect(nobleBackend.verify(pkNode, msg, sigNode)).toBe(true)
      expect(nodeBackend.verify(pkNoble, msg, sigNoble)).toBe(true)
      const bad = Uint8Array.from(sigNode)
      const at = Math.floor(rand() * 64)
      bad[at] = bad[at]! ^ (1 << Math.floor(rand() * 8))
      expect(nodeBackend.verify(pkNode, msg, bad)).toBe(false)
      expect(nobleBackend.verify(pkNode, msg, bad)).toBe(false)
    }
  })

  it('Keypair gives the same DID and signatures whichever backend it uses', () => {
    const seed = hex(vectors.seeded.seed_hex)
    const a = Keypair.fromSeed(seed, nodeBackend)
    const b = Keypair.fromSeed(seed, nobleBackend)
    expect(a.did).toBe(vectors.seeded.did)
    expect(b.did).toBe(a.did)
    for (const v of vectors.seeded.signatures) {
      expect(toHex(a.sign(hex(v.message_hex)))).toBe(v.signature_hex)
      expect(toHex(b.sign(hex(v.message_hex)))).toBe(v.signature_hex)
    }
  })

  it('the default backend on Node is node:crypto', () => {
    expect(defaultBackend.name).toBe('node')
  })
})

describe('Keypair', () => {
  it('fromSeed copies the seed: changing the caller array changes nothing', () => {
    const seed = hex(vectors.seeded.seed_hex)
    const kp = Keypair.fromSeed(seed)
    seed.fill(0)
    expect(kp.did).toBe(vectors.seeded.did)
    expect(toHex(kp.exportSeed())).toBe(vectors.seeded.seed_hex)
    const exported = kp.exportSeed()
    exported.fill(1)
    expect(toHex(kp.exportSeed())).toBe(vectors.seeded.seed_hex)
  })

  it('refuses a seed that is not 32 bytes', () => {
    for (const n of [0, 31, 33, 64]) expect(() => Keypair.fromSeed(new Uint8Array(n))).toThrow(RangeError)
  })

  it('generate makes distinct identities whose signatures verify', () => {
    const a = Keypair.generate()
    const b = Keypair.generate()
    expect(a.did).not.toBe(b.did)
    const msg = new TextEncoder().encode('hi')
    expect(verifySignature(a.did, msg, a.sign(msg))).toBe(true)
    expect(verifySignature(b.did, msg, a.sign(msg))).toBe(false)
  })

  it('privateKeyObject is the same key (jose signs with it)', () => {
    const kp = Keypair.fromSeed(hex(vectors.seeded.seed_hex))
    expect(kp.privateKeyObject.asymmetricKeyType).toBe('ed25519')
    expect(kp.privateKeyObject).toBe(kp.privateKeyObject)
    const jwk = kp.privateKeyObject.export({ format: 'jwk' })
    expect(Buffer.from(jwk.d!, 'base64url').toString('hex')).toBe(vectors.seeded.seed_hex)
    expect(Buffer.from(jwk.x!, 'base64url').toString('hex')).toBe(vectors.seeded.public_key_hex)
  })
})

describe('DER wrapping and verification helpers', () => {
  it('privateKeyObjectFromSeed / publicKeyObjectFromRaw wrap raw keys', () => {
    const v = vectors.rfc8032[0]!
    const priv = privateKeyObjectFromSeed(hex(v.secret_key_hex))
    const pub = publicKeyObjectFromRaw(hex(v.public_key_hex))
    expect(Buffer.from(priv.export({ format: 'jwk' }).x!, 'base64url').toString('hex')).toBe(v.public_key_hex)
    expect(Buffer.from(pub.export({ format: 'jwk' }).x!, 'base64url').toString('hex')).toBe(v.public_key_hex)
  })

  it('publicKeyObjectForDid caches one KeyObject per DID and throws InvalidDidError', () => {
    const did = vectors.seeded.did
    const key = publicKeyObjectForDid(did)
    expect(publicKeyObjectForDid(did)).toBe(key)
    expect(Buffer.from(key.export({ format: 'jwk' }).x!, 'base64url').toString('hex')).toBe(vectors.seeded.public_key_hex)
    expect(() => publicKeyObjectForDid('did:web:example.com')).toThrow(InvalidDidError)
  })

  it('publicKeyOf decodes (and caches) a did:key, null for anything else', () => {
    expect(toHex(publicKeyOf(vectors.seeded.did)!)).toBe(vectors.seeded.public_key_hex)
    expect(publicKeyOf(vectors.seeded.did)).toBe(publicKeyOf(vectors.seeded.did))
    expect(publicKeyOf('did:web:example.com')).toBeNull()
    expect(publicKeyOf('did:key:z6Mk0000')).toBeNull()
  })

  it.each(backends.map((b) => [b.name, b] as const))('verifySignature checks every vector by DID with the %s backend', (_n, backend) => {
    for (const v of allVectors) {
      const did = encodeDidKey(hex(v.publicKey))
      expect(decodeDidKey(did)).toEqual(hex(v.publicKey))
      expect(verifySignature(did, hex(v.message), hex(v.signature), backend)).toBe(true)
      expect(verifySignature(did, hex(`${v.message}00`), hex(v.signature), backend)).toBe(false)
      expect(verifySignature('did:web:example.com', hex(v.message), hex(v.signature), backend)).toBe(false)
    }
  })

  it('verifySignatureAsync gives the same answers off the calling thread', async () => {
    for (const v of allVectors) {
      const did = encodeDidKey(hex(v.publicKey))
      expect(await verifySignatureAsync(did, hex(v.message), hex(v.signature))).toBe(true)
      expect(await verifySignatureAsync(did, hex(`${v.message}00`), hex(v.signature))).toBe(false)
      expect(await verifySignatureAsync('did:key:z6Mk0000', hex(v.message), hex(v.signature))).toBe(false)
    }
  })
})
