import crypto, { type KeyObject } from 'node:crypto'
import { CompactEncrypt, compactDecrypt, decodeProtectedHeader } from 'jose'
import { decodeDidKey } from './did-key.js'
import { SplError } from './errors.js'
import type { Keypair } from './keypair.js'

/**
 * Sealing to a did:key (SPEC 10): a compact JWE, `alg: ECDH-ES` (an ephemeral X25519 key agreed
 * with the receiver's X25519 key) and `enc: A256GCM`. The receiver's X25519 key is the
 * birational map of its Ed25519 key (RFC 7748 section 4.1), so a did:key is all a sender needs;
 * the receiver opens with the X25519 secret derived from its Ed25519 seed (RFC 8032 5.1.5: the
 * first half of SHA-512(seed), clamped).
 */

const P = 2n ** 255n - 19n

function bytesToBigLE(bytes: Uint8Array): bigint {
  let n = 0n
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]!)
  return n
}

function bigToBytesLE(n: bigint, length: number): Uint8Array {
  const out = new Uint8Array(length)
  for (let i = 0; i < length; i++) {
    out[i] = Number(n & 0xffn)
    n >>= 8n
  }
  return out
}

function modPow(base: bigint, exp: bigint): bigint {
  let result = 1n
  let b = base % P
  let e = exp
  while (e > 0n) {
    if (e & 1n) result = (result * b) % P
    b = (b * b) % P
    e >>= 1n
  }
  return result
}

/** The X25519 public key (u = (1 + y) / (1 − y) mod p) of a 32-byte Ed25519 public key. */
export function x25519PublicFromEd25519(publicKey: Uint8Array): Uint8Array {
  if (publicKey.length !== 32) throw new RangeError(`an Ed25519 public key is 32 bytes, got ${publicKey.length}`)
  const y = bytesToBigLE(publicKey) & ((1n << 255n) - 1n)
  const den = (1n - y + P) % P
  if (den === 0n) throw new RangeError('this Ed25519 key has no X25519 counterpart')
  const u = ((1n + y) * modPow(den, P - 2n)) % P
  return bigToBytesLE(u, 32)
}

/** The X25519 secret scalar of an Ed25519 seed: the first half of SHA-512(seed), clamped (RFC 7748 5). */
export function x25519SecretFromSeed(seed: Uint8Array): Uint8Array {
  const d = new Uint8Array(crypto.createHash('sha512').update(seed).digest().subarray(0, 32))
  d[0]! &= 248
  d[31]! &= 127
  d[31]! |= 64
  return d
}

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url')

const sealKeys = new Map<string, KeyObject>()

/** The X25519 public KeyObject a did:key is sealed to, cached per DID. Throws InvalidDidError. */
export function sealKeyForDid(did: string): KeyObject {
  let key = sealKeys.get(did)
  if (!key) {
    const x = x25519PublicFromEd25519(decodeDidKey(did))
    key = crypto.createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: b64(x) }, format: 'jwk' })
    if (sealKeys.size >= 10_000) sealKeys.delete(sealKeys.keys().next().value as string)
    sealKeys.set(did, key)
  }
  return key
}

const openKeys = new WeakMap<Keypair, KeyObject>()

function openKeyOf(keypair: Keypair): KeyObject {
  let key = openKeys.get(keypair)
  if (!key) {
    const seed = keypair.exportSeed()
    const d = x25519SecretFromSeed(seed)
    seed.fill(0)
    key = crypto.createPrivateKey({
      key: { kty: 'OKP', crv: 'X25519', d: b64(d), x: b64(x25519PublicFromEd25519(keypair.publicKey)) },
      format: 'jwk',
    })
    d.fill(0)
    openKeys.set(keypair, key)
  }
  return key
}

/** A sealed box that cannot be opened: not a JWE, not sealed to this key, or changed on the way. */
export class SealOpenError extends SplError {
  override readonly name = 'SealOpenError'
  constructor(reason: string) {
    super('DEPOSIT_UNSEALABLE', reason, {
      status: 400,
      fix: 'the relay or the sender changed or misaddressed this deposit; nothing of it was stored',
    })
  }
}

/** The protected header every sealed box carries (`kid` = the receiver's DID). */
export const SEAL_ALG = 'ECDH-ES'
export const SEAL_ENC = 'A256GCM'

/** Seals `plaintext` to the holder of `did` (compact JWE). */
export async function sealTo(did: string, plaintext: Uint8Array): Promise<string> {
  return new CompactEncrypt(plaintext)
    .setProtectedHeader({ alg: SEAL_ALG, enc: SEAL_ENC, kid: did, cty: 'spl-deposit' })
    .encrypt(sealKeyForDid(did))
}

/**
 * True when `jwe` has the shape of a sealed box (five base64url parts, our alg and enc, an
 * ephemeral X25519 key): what a relay can check without the key.
 */
export function looksSealed(jwe: unknown): jwe is string {
  if (typeof jwe !== 'string' || !/^[A-Za-z0-9_-]+\.\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}$/.test(jwe)) return false
  try {
    const h = decodeProtectedHeader(jwe) as { alg?: unknown; enc?: unknown; epk?: { kty?: unknown; crv?: unknown } }
    return h.alg === SEAL_ALG && h.enc === SEAL_ENC && h.epk?.kty === 'OKP' && h.epk.crv === 'X25519'
  } catch {
    return false
  }
}

/** Opens a box sealed to `keypair`'s DID; throws SealOpenError when it cannot. */
export async function openSealed(keypair: Keypair, jwe: string): Promise<Uint8Array> {
  if (!looksSealed(jwe)) throw new SealOpenError('the deposit is not a sealed box (compact JWE, ECDH-ES, A256GCM, X25519)')
  const header = decodeProtectedHeader(jwe)
  if (header.kid !== undefined && header.kid !== keypair.did) {
    throw new SealOpenError(`the deposit is sealed to ${String(header.kid).slice(0, 80)}, not to this instance`)
  }
  try {
    const { plaintext } = await compactDecrypt(jwe, openKeyOf(keypair), {
      keyManagementAlgorithms: [SEAL_ALG],
      contentEncryptionAlgorithms: [SEAL_ENC],
    })
    return plaintext
  } catch (err) {
    throw new SealOpenError(`the deposit does not open: ${err instanceof Error ? err.message : String(err)}`)
  }
}
