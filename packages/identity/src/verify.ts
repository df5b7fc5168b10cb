import { decodeDidKey } from './did-key.js'
import { defaultBackend, type Ed25519Backend } from './ed25519.js'

const publicKeys = new Map<string, Uint8Array | null>()
const MAX_KEYS = 10_000

/** The raw public key of a did:key, cached; null when the DID is not a valid Ed25519 did:key. */
export function publicKeyOf(did: string): Uint8Array | null {
  let key = publicKeys.get(did)
  if (key === undefined) {
    try {
      key = decodeDidKey(did)
    } catch {
      key = null
    }
    if (publicKeys.size >= MAX_KEYS) publicKeys.delete(publicKeys.keys().next().value as string)
    publicKeys.set(did, key)
  }
  return key
}

/** True when `signature` is `did`'s Ed25519 signature over `message`; false for any bad input. */
export function verifySignature(
  did: string,
  message: Uint8Array,
  signature: Uint8Array,
  backend: Ed25519Backend = defaultBackend,
): boolean {
  const key = publicKeyOf(did)
  return key !== null && backend.verify(key, message, signature)
}

/** verifySignature, with the Ed25519 work off the calling thread (node:crypto's threadpool). */
export function verifySignatureAsync(
  did: string,
  message: Uint8Array,
  signature: Uint8Array,
  backend: Ed25519Backend = defaultBackend,
): Promise<boolean> {
  // Not async: one promise per verification (the backend's), thousands of times per page.
  const key = publicKeyOf(did)
  return key === null ? Promise.resolve(false) : backend.verifyAsync(key, message, signature)
}
