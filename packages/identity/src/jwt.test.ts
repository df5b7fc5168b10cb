import { decodeProtectedHeader, SignJWT } from 'jose'
import { describe, expect, it } from 'vitest'
import { SplError } from './errors.js'
import { JwtInvalidError, signJwt, verifyDidJwt } from './jwt.js'
import { Keypair } from './keypair.js'

const alice = Keypair.fromSeed(Uint8Array.from({ length: 32 }, (_, i) => i))
const bob = Keypair.fromSeed(Uint8Array.from({ length: 32 }, (_, i) => 0x20 + i))
const now = () => Math.floor(Date.now() / 1000)

async function rejection(p: Promise<unknown>): Promise<JwtInvalidError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(JwtInvalidError)
  expect(err).toBeInstanceOf(SplError)
  const e = err as JwtInvalidError
  expect(e.name).toBe('JwtInvalidError')
  expect(e.status).toBe(401)
  return e
}

/** Replaces the payload segment, keeping the original header and signature. */
function withPayload(token: string, payload: Record<string, unknown>): string {
  const [h, , s] = token.split('.')
  return `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`
}

describe('signJwt / verifyDidJwt', () => {
  it('round-trips claims; iss defaults to the signer DID; header is EdDSA + typ', async () => {
    const token = await signJwt(alice, 'spl-proof+jwt', { aud: 'did:key:z6Mkaudience', n: 7, iat: now() })
    expect(decodeProtectedHeader(token)).toEqual({ alg: 'EdDSA', typ: 'spl-proof+jwt' })
    const claims = await verifyDidJwt(token, { typ: 'spl-proof+jwt' })
    expect(claims.iss).toBe(alice.did)
    expect(claims['n']).toBe(7)
    expect(claims.aud).toBe('did:key:z6Mkaudience')
  })

  it('a token signed with the noble backend keypair verifies the same', async () => {
    const { nobleBackend } = await import('./noble.js')
    const k = Keypair.fromSeed(alice.exportSeed(), nobleBackend)
    const claims = await verifyDidJwt(await signJwt(k, 't', {}), { typ: 't' })
    expect(claims.iss).toBe(alice.did)
  })

  it('rejects a wrong typ', async () => {
    const token = await signJwt(alice, 'spl-token+jwt', {})
    const err = await rejection(verifyDidJwt(token, { typ: 'spl-proof+jwt' }))
    expect(err.code).toBe('PROOF_INVALID')
    expect(err.message).toMatch(/typ/)
  })

  it('rejects a tampered payload', async () => {
    const token = await signJwt(alice, 't', { scope: 'read', iat: now() })
    const tampered = withPayload(token, { iss: alice.did, scope: 'admin', iat: now() })
    expect(tampered).not.toBe(token)
    const err = await rejection(verifyDidJwt(tampered, { typ: 't' }))
    expect(err.message).toMatch(/does not verify/)
  })

  it('rejects a token whose iss was swapped to another did:key', async () => {
    const token = await signJwt(alice, 't', { iat: now() })
    await rejection(verifyDidJwt(withPayload(token, { iss: bob.did, iat: now() }), { typ: 't' }))
    // Signed by alice while claiming to be bob.
    await rejection(verifyDidJwt(await signJwt(alice, 't', { iss: bob.did }), { typ: 't' }))
  })

  it('rejects an expired token, beyond the clock tolerance', async () => {
    const token = await signJwt(alice, 't', { iat: now() - 7200, exp: now() - 3600 })
    const err = await rejection(verifyDidJwt(token, { typ: 't' }))
    expect(err.message).toMatch(/exp/)
    // Inside the default 120 s tolerance it still passes; a tighter tolerance refuses it.
    const recent = await signJwt(alice, 't', { exp: now() - 30 })
    await expect(verifyDidJwt(recent, { typ: 't' })).resolves.toMatchObject({ iss: alice.did })
    await rejection(verifyDidJwt(recent, { typ: 't', clockToleranceSec: 0 }))
  })

  it('rejects a token not yet valid (nbf in the future)', async () => {
    await rejection(verifyDidJwt(await signJwt(alice, 't', { nbf: now() + 3600 }), { typ: 't' }))
  })

  it('maxTokenAge refuses old tokens and tokens without iat', async () => {
    const old = await signJwt(alice, 't', { iat: now() - 600 })
    await rejection(verifyDidJwt(old, { typ: 't', maxTokenAge: 60 }))
    await rejection(verifyDidJwt(await signJwt(alice, 't', {}), { typ: 't', maxTokenAge: 60 }))
    const fresh = await signJwt(alice, 't', { iat: now() })
    await expect(verifyDidJwt(fresh, { typ: 't', maxTokenAge: 60 })).resolves.toMatchObject({
      iss: alice.did,
    })
  })

  it('rejects an iss that is not a did:key, and a missing iss', async () => {
    const web = await signJwt(alice, 't', { iss: 'did:web:example.com' })
    const err = await rejection(verifyDidJwt(web, { typ: 't' }))
    expect(err.message).toMatch(/not a did:key/)
    const bad = await signJwt(alice, 't', { iss: 'did:key:z6Mk0OIl' })
    expect((await rejection(verifyDidJwt(bad, { typ: 't' }))).message).toMatch(/not a did:key/)
    const none = await new SignJWT({ sub: 'x' }).setProtectedHeader({ alg: 'EdDSA', typ: 't' }).sign(alice.privateKeyObject)
    expect((await rejection(verifyDidJwt(none, { typ: 't' }))).message).toMatch(/no iss/)
  })

  it('rejects another algorithm (HS256 with a guessable secret)', async () => {
    const hs = await new SignJWT({ iss: alice.did }).setProtectedHeader({ alg: 'HS256', typ: 't' }).sign(new Uint8Array(32))
    expect((await rejection(verifyDidJwt(hs, { typ: 't' }))).message).toMatch(/EdDSA/)
  })

  it('rejects what is not a compact JWS', async () => {
    for (const token of ['', 'abc', 'a.b.c', 'e30.e30', '..']) {
      await rejection(verifyDidJwt(token, { typ: 't' }))
    }
  })

  it('carries the caller error code', async () => {
    const token = await signJwt(alice, 'a', {})
    const err = await rejection(verifyDidJwt(token, { typ: 'b', code: 'PEER_TOKEN_INVALID' }))
    expect(err.code).toBe('PEER_TOKEN_INVALID')
    expect(err.toJSON()).toMatchObject({ object: 'error', code: 'PEER_TOKEN_INVALID' })
  })

  it('signs the bytes jose signs, and verifies jose tokens, with or without extra header members', async () => {
    const claims = { aud: 'did:key:z6Mkaudience', n: 7, iat: now(), exp: now() + 60, jti: 'abcdefghijklmnopq' }
    const ours = await signJwt(alice, 'spl-proof+jwt', claims)
    const joses = await new SignJWT({ iss: alice.did, ...claims })
      .setProtectedHeader({ alg: 'EdDSA', typ: 'spl-proof+jwt' })
      .sign(alice.privateKeyObject)
    expect(ours).toBe(joses)
    // A header with another member takes jose's own path: still verified, same claims.
    const kid = await new SignJWT({ iss: alice.did, ...claims })
      .setProtectedHeader({ alg: 'EdDSA', typ: 'spl-proof+jwt', kid: 'k1' })
      .sign(alice.privateKeyObject)
    expect((await verifyDidJwt(kid, { typ: 'spl-proof+jwt' }))['n']).toBe(7)
    const crit = await new SignJWT({ iss: alice.did, ...claims })
      .setProtectedHeader({ alg: 'EdDSA', typ: 'spl-proof+jwt', crit: ['x-unknown'], 'x-unknown': 1 } as never)
      .sign(alice.privateKeyObject)
      .catch(() => null)
    if (crit) await rejection(verifyDidJwt(crit, { typ: 'spl-proof+jwt' }))
  })

  it('refuses a signature that is not exactly 64 bytes, and a payload that is not a JSON object', async () => {
    const token = await signJwt(alice, 't', { iat: now() })
    const [h, p, s] = token.split('.') as [string, string, string]
    await rejection(verifyDidJwt(`${h}.${p}.${s.slice(0, 85)}`, { typ: 't' }))
    await rejection(verifyDidJwt(`${h}.${p}.${s}A`, { typ: 't' }))
    const flipped = `${s[0] === 'A' ? 'B' : 'A'}${s.slice(1)}`
    expect((await rejection(verifyDidJwt(`${h}.${p}.${flipped}`, { typ: 't' }))).message).toMatch(/does not verify/)
  })
})
