import { ed25519 } from '@noble/curves/ed25519.js'
import type { Ed25519Backend } from './ed25519.js'

/** @noble/curves: pure JavaScript, for runtimes without node:crypto and for cross-checks. */
export const nobleBackend: Ed25519Backend = {
  name: 'noble',
  publicKeyFromSeed: (seed) => ed25519.getPublicKey(seed),
  sign: (seed, message) => ed25519.sign(message, seed),
  verify(publicKey, message, signature) {
    if (signature.length !== 64 || publicKey.length !== 32) return false
    try {
      return ed25519.verify(signature, message, publicKey)
    } catch {
      return false
    }
  },
  verifyAsync(publicKey, message, signature) {
    return Promise.resolve(nobleBackend.verify(publicKey, message, signature))
  },
}
