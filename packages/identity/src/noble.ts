import { ed25519 } from '@noble/curves/ed25519.js'
import { sha512 } from '@noble/hashes/sha2.js'
import { type Ed25519Backend, strictEncodings } from './ed25519.js'

const { Point } = ed25519
const L = Point.Fn.ORDER

function numberLE(bytes: Uint8Array): bigint {
  let n = 0n
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]!)
  return n
}

/**
 * The one rule (see `strictEncodings`): canonical S, A and R, neither of small order, then the
 * cofactorless equation [S]B = R + [k]A with k reduced mod L — what OpenSSL checks. noble's own
 * `verify` checks the cofactored equation (and by default ZIP-215's looser encodings), which
 * accepts signatures OpenSSL refuses when A or R has a torsion component.
 */
function verifyStrict(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (!strictEncodings(publicKey, signature)) return false
  const r = signature.subarray(0, 32)
  const A = Point.fromBytes(publicKey, false)
  const R = Point.fromBytes(r, false)
  const s = numberLE(signature.subarray(32))
  const k = numberLE(sha512(new Uint8Array([...r, ...publicKey, ...message]))) % L
  return Point.BASE.multiplyUnsafe(s).equals(R.add(A.multiplyUnsafe(k)))
}

/** @noble/curves: pure JavaScript, for runtimes without node:crypto and for cross-checks. */
export const nobleBackend: Ed25519Backend = {
  name: 'noble',
  publicKeyFromSeed: (seed) => ed25519.getPublicKey(seed),
  sign: (seed, message) => ed25519.sign(message, seed),
  verify(publicKey, message, signature) {
    try {
      return verifyStrict(publicKey, message, signature)
    } catch {
      // not a point on the curve
      return false
    }
  },
  verifyAsync(publicKey, message, signature) {
    return Promise.resolve(nobleBackend.verify(publicKey, message, signature))
  },
}
