import crypto, { type KeyObject } from 'node:crypto'

/**
 * One implementation of Ed25519; both give byte-identical signatures (Ed25519 is deterministic)
 * and the same verdict on every (key, message, signature): the strict rule of `strictEncodings`.
 */
export interface Ed25519Backend {
  readonly name: 'node' | 'noble'
  publicKeyFromSeed(seed: Uint8Array): Uint8Array
  sign(seed: Uint8Array, message: Uint8Array): Uint8Array
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean
  /** The same answer as `verify`, computed off the calling thread where the backend can. */
  verifyAsync(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): Promise<boolean>
}

/** The group order L = 2^252 + 27742317777372353535851937790883648493, little-endian. */
const ORDER_LE = Buffer.from('edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010', 'hex')
/** p = 2^255 - 19, little-endian. */
const P_LE = Buffer.from('edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', 'hex')
/**
 * The y coordinates (little-endian, sign bit clear) of the eight points of small order: the
 * identity (1), the point of order 2 (p - 1), the two of order 4 (0) and the four of order 8
 * (y8 and p - y8). With a canonical y, a point is of small order exactly when its y is one of these.
 */
const SMALL_ORDER_Y = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
].map((h) => Buffer.from(h, 'hex'))

/** The byte at `i` of a 32-byte point encoding with the sign bit (bit 255) cleared: its y. */
const yByte = (point: Uint8Array, i: number): number => (i === 31 ? point[i]! & 0x7f : point[i]!)

/** a < b for two 32-byte little-endian integers; with `y`, a is a point encoding taken as its y. */
function lessThanLE(a: Uint8Array, b: Uint8Array, y = false): boolean {
  for (let i = 31; i >= 0; i--) {
    const ai = y ? yByte(a, i) : a[i]!
    if (ai !== b[i]!) return ai < b[i]!
  }
  return false
}

/** A point encoding whose y is canonical (< p) and which is not one of the eight small-order points. */
function strictPoint(bytes: Uint8Array): boolean {
  // Compared in place (no copy with the sign bit cleared): this runs twice per verification.
  if (!lessThanLE(bytes, P_LE, true)) return false
  return !SMALL_ORDER_Y.some((small) => {
    for (let i = 0; i < 32; i++) if (yByte(bytes, i) !== small[i]) return false
    return true
  })
}

/**
 * The part of the one verification rule (docs/decisions.md, "One rule for signatures") that is
 * about encodings, checked before either backend runs the equation: 32-byte key, 64-byte
 * signature, S < L, A and R canonical and not of small order. The equation itself is the
 * cofactorless [S]B = R + [k]A with k = SHA-512(R ‖ A ‖ M) mod L, which OpenSSL checks and the
 * noble backend checks the same way.
 */
export function strictEncodings(publicKey: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== 64 || publicKey.length !== 32) return false
  return lessThanLE(signature.subarray(32), ORDER_LE) && strictPoint(publicKey) && strictPoint(signature.subarray(0, 32))
}

const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')

/** Wraps a raw 32-byte seed as a node KeyObject (node:crypto takes no raw Ed25519 keys). */
export function privateKeyObjectFromSeed(seed: Uint8Array): KeyObject {
  return crypto.createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' })
}

/** Wraps a raw 32-byte public key as a node KeyObject. */
export function publicKeyObjectFromRaw(publicKey: Uint8Array): KeyObject {
  return crypto.createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKey]), format: 'der', type: 'spki' })
}

// Private KeyObjects are cached per seed so repeated signing does not re-parse DER.
const privateCache = new WeakMap<Uint8Array, KeyObject>()
const publicCache = new Map<string, KeyObject>()
const PUBLIC_CACHE_MAX = 10_000

function cachedPublicKey(publicKey: Uint8Array): KeyObject {
  const k = Buffer.from(publicKey.buffer, publicKey.byteOffset, publicKey.byteLength).toString('base64')
  let key = publicCache.get(k)
  if (!key) {
    if (publicCache.size >= PUBLIC_CACHE_MAX) publicCache.delete(publicCache.keys().next().value as string)
    key = publicKeyObjectFromRaw(publicKey)
    publicCache.set(k, key)
  }
  return key
}

/** node:crypto (OpenSSL): the default, about ten times faster than noble here. */
export const nodeBackend: Ed25519Backend = {
  name: 'node',
  publicKeyFromSeed(seed) {
    const der = crypto.createPublicKey(privateKeyObjectFromSeed(seed)).export({ format: 'der', type: 'spki' })
    return new Uint8Array(der.subarray(SPKI_PREFIX.length))
  },
  sign(seed, message) {
    let key = privateCache.get(seed)
    if (!key) {
      key = privateKeyObjectFromSeed(seed)
      privateCache.set(seed, key)
    }
    return new Uint8Array(crypto.sign(null, message, key))
  },
  verify(publicKey, message, signature) {
    if (!strictEncodings(publicKey, signature)) return false
    try {
      return crypto.verify(null, message, cachedPublicKey(publicKey), signature)
    } catch {
      return false
    }
  },
  // With a callback, node:crypto verifies on libuv's threadpool: parallel, with no second isolate.
  verifyAsync(publicKey, message, signature) {
    if (!strictEncodings(publicKey, signature)) return Promise.resolve(false)
    return new Promise((resolve) => {
      try {
        crypto.verify(null, message, cachedPublicKey(publicKey), signature, (err, ok) => resolve(!err && ok))
      } catch {
        resolve(false)
      }
    })
  },
}

/**
 * node:crypto: every Node this package supports has Ed25519 there. The pure-JavaScript backend is
 * `nobleBackend` from `@spl/identity/noble`, a separate entry so that nothing loads @noble/curves
 * (~2.5 MB of resident memory) unless it asks for it.
 */
export const defaultBackend: Ed25519Backend = nodeBackend
