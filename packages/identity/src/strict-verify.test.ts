import crypto from 'node:crypto'
import { ed25519 } from '@noble/curves/ed25519.js'
import { describe, expect, it } from 'vitest'
import { encodeDidKey } from './did-key.js'
import { nodeBackend, strictEncodings } from './ed25519.js'
import { nobleBackend } from './noble.js'
import { verifySignature, verifySignatureAsync } from './verify.js'

// One rule for signatures (docs/decisions.md): S < L; A and R canonical and not of small order;
// the cofactorless equation [S]B = R + [k]A, k = SHA-512(R ‖ A ‖ M) mod L. Both backends must
// give the same verdict on every vector; the vectors are built here with noble's point arithmetic
// (the cases of the "ed25519 speccheck" set: non-canonical S, small-order and non-canonical A and R,
// mixed-order A and R).

const { Point } = ed25519
type P = InstanceType<typeof Point>
const L = Point.Fn.ORDER
const P25519 = 2n ** 255n - 19n

const le = (n: bigint) => {
  const out = new Uint8Array(32)
  for (let i = 0; i < 32; i++) out[i] = Number((n >> BigInt(8 * i)) & 0xffn)
  return out
}
const numberLE = (b: Uint8Array) => b.reduceRight((n, x) => (n << 8n) | BigInt(x), 0n)
const challenge = (r: Uint8Array, a: Uint8Array, m: Uint8Array) =>
  numberLE(crypto.createHash('sha512').update(r).update(a).update(m).digest()) % L
const cat = (a: Uint8Array, b: Uint8Array) => new Uint8Array([...a, ...b])

/** A point of order 8 (its y is the one listed in ed25519.ts). */
const T8 = Point.fromBytes(Buffer.from('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a', 'hex'), false)
const a = 0x1234567890abcdefn % L
const r = 0xfedcba0987654321n % L
const aB = Point.BASE.multiply(a)
const rB = Point.BASE.multiply(r)

/** The first message (of "m0", "m1", …) whose challenge k for (R, A) satisfies `want`. */
function messageWhere(R: Uint8Array, A: Uint8Array, want: (k: bigint) => boolean): Uint8Array {
  for (let i = 0; i < 1000; i++) {
    const m = new TextEncoder().encode(`m${i}`)
    if (want(challenge(R, A, m))) return m
  }
  throw new Error('no such message')
}

interface Vector {
  name: string
  publicKey: Uint8Array
  message: Uint8Array
  signature: Uint8Array
  valid: boolean
}

/** S = r + k·a for the given encodings of R and A (what a signer that knows a and r computes). */
function vector(name: string, R: Uint8Array, A: Uint8Array, valid: boolean, s: (k: bigint) => bigint, m?: Uint8Array): Vector {
  const message = m ?? new TextEncoder().encode(name)
  const k = challenge(R, A, message)
  return { name, publicKey: A, message, signature: cat(R, le(s(k))), valid }
}

/** y + p with the sign bit of `p`'s encoding: a non-canonical encoding of a point with y < 19. */
function nonCanonical(y: bigint): Uint8Array {
  return le(y + P25519)
}

const A = aB.toBytes()
const R = rB.toBytes()
const mixedA = aB.add(T8).toBytes()
const mixedR = rB.add(T8).toBytes()
const identity = Point.ZERO.toBytes()

const vectors: Vector[] = [
  vector('an honest signature', R, A, true, (k) => (r + k * a) % L),
  vector('S + L (non-canonical S)', R, A, false, (k) => ((r + k * a) % L) + L),
  vector('S with its top bit set (S ≥ 2^255)', R, A, false, (k) => ((r + k * a) % L) + 2n ** 255n),
  // A of small order: [S]B = R + [k]A holds for S = r whatever the message (A = identity).
  vector('A = the identity (small order)', R, identity, false, () => r),
  vector(
    'A of order 8',
    R,
    T8.toBytes(),
    false,
    () => r,
    messageWhere(R, T8.toBytes(), (k) => k % 8n === 0n),
  ),
  vector('A = the identity, non-canonical (y = p + 1)', R, nonCanonical(1n), false, () => r),
  // Mixed-order A = aB + T8: the cofactored equation always holds; the cofactorless one only when [k]T8 = 0.
  vector(
    'mixed-order A, [k]T8 ≠ 0 (cofactored only)',
    R,
    mixedA,
    false,
    (k) => (r + k * a) % L,
    messageWhere(R, mixedA, (k) => k % 8n !== 0n),
  ),
  vector(
    'mixed-order A, [k]T8 = 0 (cofactorless holds)',
    R,
    mixedA,
    true,
    (k) => (r + k * a) % L,
    messageWhere(R, mixedA, (k) => k % 8n === 0n),
  ),
  vector('mixed-order R = rB + T8 (cofactored only)', mixedR, A, false, (k) => (r + k * a) % L),
  // R of small order: [S]B = R + [k]A holds for R = identity and S = k·a.
  vector('R = the identity (small order)', identity, A, false, (k) => (k * a) % L),
  vector('R = the identity, non-canonical (y = p + 1)', nonCanonical(1n), A, false, (k) => (k * a) % L),
  vector('R of order 8 (cofactored only)', T8.toBytes(), A, false, (k) => (k * a) % L),
]

describe('one rule for signatures: both backends, the same verdict', () => {
  it('the order-8 point is of order 8 and the small-order y list is complete', () => {
    expect(T8.multiplyUnsafe(8n).is0()).toBe(true)
    expect(T8.multiplyUnsafe(4n).is0()).toBe(false)
    // Every one of the eight small-order points, with either sign bit, is refused as A and as R.
    const points: P[] = Array.from({ length: 8 }, (_, i) => T8.multiplyUnsafe(BigInt(i)))
    const sig = cat(R, le(1n))
    for (const p of points) {
      for (const sign of [0, 0x80]) {
        const bytes = p.toBytes()
        bytes[31]! |= sign
        expect(strictEncodings(bytes, sig)).toBe(false)
        expect(strictEncodings(A, cat(bytes, le(1n)))).toBe(false)
      }
    }
    expect(strictEncodings(A, sig)).toBe(true)
  })

  it.each(vectors)('$name: valid = $valid on node, noble, sync and async', async (v) => {
    const verdicts = {
      node: nodeBackend.verify(v.publicKey, v.message, v.signature),
      nodeAsync: await nodeBackend.verifyAsync(v.publicKey, v.message, v.signature),
      noble: nobleBackend.verify(v.publicKey, v.message, v.signature),
      nobleAsync: await nobleBackend.verifyAsync(v.publicKey, v.message, v.signature),
    }
    expect(verdicts).toEqual({ node: v.valid, nodeAsync: v.valid, noble: v.valid, nobleAsync: v.valid })
  })

  it.each(vectors.filter((v) => v.publicKey[31]! < 0x80))('$name: the same through a did:key', async (v) => {
    let did: string
    try {
      did = encodeDidKey(v.publicKey)
    } catch {
      return
    }
    expect(verifySignature(did, v.message, v.signature)).toBe(v.valid)
    expect(await verifySignatureAsync(did, v.message, v.signature)).toBe(v.valid)
    expect(verifySignature(did, v.message, v.signature, nobleBackend)).toBe(v.valid)
  })

  it('a fresh key signs and both backends verify (and refuse a changed byte)', () => {
    const seed = crypto.randomBytes(32)
    const msg = crypto.randomBytes(100)
    const sig = nodeBackend.sign(seed, msg)
    const pub = nodeBackend.publicKeyFromSeed(seed)
    expect(nobleBackend.verify(pub, msg, sig)).toBe(true)
    expect(nodeBackend.verify(pub, msg, sig)).toBe(true)
    sig[10]! ^= 1
    expect(nobleBackend.verify(pub, msg, sig)).toBe(false)
    expect(nodeBackend.verify(pub, msg, sig)).toBe(false)
  })
})
