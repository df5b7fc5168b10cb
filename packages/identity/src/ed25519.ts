import crypto, { type KeyObject } from 'node:crypto'

/** One implementation of Ed25519; both give byte-identical signatures (Ed25519 is deterministic). */
export interface Ed25519Backend {
  readonly name: 'node' | 'noble'
  publicKeyFromSeed(seed: Uint8Array): Uint8Array
  sign(seed: Uint8Array, message: Uint8Array): Uint8Array
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean
  /** The same answer as `verify`, computed off the calling thread where the backend can. */
  verifyAsync(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): Promise<boolean>
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
    if (signature.length !== 64 || publicKey.length !== 32) return false
    try {
      return crypto.verify(null, message, cachedPublicKey(publicKey), signature)
    } catch {
      return false
    }
  },
  // With a callback, node:crypto verifies on libuv's threadpool: parallel, with no second isolate.
  verifyAsync(publicKey, message, signature) {
    if (signature.length !== 64 || publicKey.length !== 32) return Promise.resolve(false)
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
