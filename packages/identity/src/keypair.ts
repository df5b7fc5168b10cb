import crypto, { type KeyObject } from 'node:crypto'
import { decodeDidKey, encodeDidKey } from './did-key.js'
import { defaultBackend, type Ed25519Backend, privateKeyObjectFromSeed, publicKeyObjectFromRaw } from './ed25519.js'

/** An Ed25519 identity: a 32-byte seed, its public key and its did:key. */
export class Keypair {
  readonly publicKey: Uint8Array
  readonly did: string
  #privateKeyObject: KeyObject | undefined

  private constructor(
    private readonly seed: Uint8Array,
    private readonly backend: Ed25519Backend,
  ) {
    this.publicKey = backend.publicKeyFromSeed(seed)
    this.did = encodeDidKey(this.publicKey)
  }

  /** A new random identity. */
  static generate(backend: Ed25519Backend = defaultBackend): Keypair {
    return new Keypair(new Uint8Array(crypto.randomBytes(32)), backend)
  }

  /** The identity of a 32-byte seed (the same seed always gives the same DID). */
  static fromSeed(seed: Uint8Array, backend: Ed25519Backend = defaultBackend): Keypair {
    if (seed.length !== 32) throw new RangeError(`an Ed25519 seed is 32 bytes, got ${seed.length}`)
    return new Keypair(Uint8Array.from(seed), backend)
  }

  /** Signs `message` (64-byte Ed25519 signature). */
  sign(message: Uint8Array): Uint8Array {
    return this.backend.sign(this.seed, message)
  }

  /** The seed, for persisting the key. */
  exportSeed(): Uint8Array {
    return Uint8Array.from(this.seed)
  }

  /** The private key as a node KeyObject (what jose signs with). */
  get privateKeyObject(): KeyObject {
    this.#privateKeyObject ??= privateKeyObjectFromSeed(this.seed)
    return this.#privateKeyObject
  }
}

const didKeyObjects = new Map<string, KeyObject>()

/** The public KeyObject of a did:key, cached per DID. Throws InvalidDidError. */
export function publicKeyObjectForDid(did: string): KeyObject {
  let key = didKeyObjects.get(did)
  if (!key) {
    key = publicKeyObjectFromRaw(decodeDidKey(did))
    if (didKeyObjects.size >= 10_000) didKeyObjects.delete(didKeyObjects.keys().next().value as string)
    didKeyObjects.set(did, key)
  }
  return key
}
