import { base58btc } from 'multiformats/bases/base58'
import { InvalidDidError } from './errors.js'

const PREFIX = 'did:key:'
// varint of multicodec 0xed (ed25519-pub)
const ED25519_CODEC = [0xed, 0x01] as const
export const ED25519_PUBLIC_KEY_LENGTH = 32

/** Encodes a 32-byte Ed25519 public key as `did:key:z6Mk…`. */
export function encodeDidKey(publicKey: Uint8Array): string {
  if (publicKey.length !== ED25519_PUBLIC_KEY_LENGTH) {
    throw new RangeError(`an Ed25519 public key is 32 bytes, got ${publicKey.length}`)
  }
  const bytes = new Uint8Array(2 + publicKey.length)
  bytes[0] = ED25519_CODEC[0]
  bytes[1] = ED25519_CODEC[1]
  bytes.set(publicKey, 2)
  return PREFIX + base58btc.encode(bytes)
}

/** Decodes a `did:key` into its Ed25519 public key; throws InvalidDidError on anything else. */
export function decodeDidKey(did: string): Uint8Array {
  if (typeof did !== 'string' || !did.startsWith(PREFIX)) throw new InvalidDidError(String(did), 'it does not start with did:key:')
  const mb = did.slice(PREFIX.length)
  if (!mb.startsWith('z')) throw new InvalidDidError(did, 'only base58btc (z…) multibase is supported')
  let bytes: Uint8Array
  try {
    bytes = base58btc.decode(mb)
  } catch {
    throw new InvalidDidError(did, 'the key part is not valid base58btc')
  }
  if (bytes[0] !== ED25519_CODEC[0] || bytes[1] !== ED25519_CODEC[1]) {
    throw new InvalidDidError(did, 'the multicodec is not ed25519-pub (0xed)')
  }
  if (bytes.length !== 2 + ED25519_PUBLIC_KEY_LENGTH) {
    throw new InvalidDidError(did, `the key is ${bytes.length - 2} bytes, expected 32`)
  }
  return bytes.slice(2)
}

/** True when `did` decodes as an Ed25519 did:key. */
export function isDidKey(did: unknown): did is string {
  if (typeof did !== 'string') return false
  try {
    decodeDidKey(did)
    return true
  } catch {
    return false
  }
}

/** A short human form: `did:key:z6Mk…` → `z6MkABCD…WXYZ`. */
export function shortDid(did: string): string {
  const tail = did.startsWith(PREFIX) ? did.slice(PREFIX.length) : did
  return tail.length <= 16 ? tail : `${tail.slice(0, 8)}…${tail.slice(-4)}`
}
