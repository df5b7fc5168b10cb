import crypto from 'node:crypto'
import { ed25519 } from '@noble/curves/ed25519.js'
import { describe, expect, it } from 'vitest'
import { Keypair } from './keypair.js'
import { looksSealed, openSealed, SealOpenError, sealTo, x25519PublicFromEd25519, x25519SecretFromSeed } from './seal.js'

const text = new TextEncoder()

describe('sealing to a did:key', () => {
  it('maps Ed25519 keys to X25519 as noble does, and the secret matches the public key', () => {
    for (let i = 0; i < 20; i++) {
      const kp = Keypair.generate()
      expect(Buffer.from(x25519PublicFromEd25519(kp.publicKey))).toEqual(Buffer.from(ed25519.utils.toMontgomery(kp.publicKey)))
      const seed = kp.exportSeed()
      const secret = x25519SecretFromSeed(seed)
      expect(Buffer.from(secret)).toEqual(Buffer.from(ed25519.utils.toMontgomerySecret(seed)))
      // An X25519 agreement with the mapped public key equals one with the derived secret.
      const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64url')
      const x = x25519PublicFromEd25519(kp.publicKey)
      const mine = crypto.createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: b64(secret), x: b64(x) }, format: 'jwk' })
      const pub = crypto.createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: b64(x) }, format: 'jwk' })
      const eph = crypto.generateKeyPairSync('x25519')
      const a = crypto.diffieHellman({ privateKey: eph.privateKey, publicKey: pub })
      const b = crypto.diffieHellman({ privateKey: mine, publicKey: eph.publicKey })
      expect(a.equals(b)).toBe(true)
    }
  })

  it('seals to a DID and only that keypair opens it', async () => {
    const bob = Keypair.generate()
    const eve = Keypair.generate()
    const jwe = await sealTo(bob.did, text.encode('hello bob'))
    expect(looksSealed(jwe)).toBe(true)
    expect(jwe).not.toContain('hello')
    expect(new TextDecoder().decode(await openSealed(bob, jwe))).toBe('hello bob')
    await expect(openSealed(eve, jwe)).rejects.toBeInstanceOf(SealOpenError)
  })

  it('refuses a box sealed to another key even when its kid is rewritten', async () => {
    const bob = Keypair.generate()
    const eve = Keypair.generate()
    const jwe = await sealTo(eve.did, text.encode('for eve'))
    const [h, ...rest] = jwe.split('.')
    const header = JSON.parse(Buffer.from(h!, 'base64url').toString())
    header.kid = bob.did
    const forged = [Buffer.from(JSON.stringify(header)).toString('base64url'), ...rest].join('.')
    const err = await openSealed(bob, forged).catch((e) => e)
    expect(err).toBeInstanceOf(SealOpenError)
    expect(err.code).toBe('DEPOSIT_UNSEALABLE')
  })

  it('refuses a changed ciphertext, tag or header', async () => {
    const bob = Keypair.generate()
    const jwe = await sealTo(bob.did, text.encode('x'.repeat(200)))
    const parts = jwe.split('.')
    const flip = (s: string) => {
      const b = Buffer.from(s, 'base64url')
      b[b.length >> 1] = b[b.length >> 1]! ^ 1
      return b.toString('base64url')
    }
    for (const i of [2, 3, 4]) {
      const changed = parts.slice()
      changed[i] = flip(changed[i]!)
      await expect(openSealed(bob, changed.join('.'))).rejects.toBeInstanceOf(SealOpenError)
    }
    await expect(openSealed(bob, 'not.a.jwe')).rejects.toBeInstanceOf(SealOpenError)
    expect(looksSealed('a..b.c.d')).toBe(false)
    expect(looksSealed(42)).toBe(false)
  })
})
