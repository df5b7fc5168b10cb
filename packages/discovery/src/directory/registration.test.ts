import { Keypair, signJwt } from '@spl/identity'
import { describe, expect, it } from 'vitest'
import {
  DELETE_TYP,
  handleOf,
  MAX_REGISTRATION_BYTES,
  REGISTRATION_TYP,
  signDelete,
  signRegistration,
  verifyDelete,
  verifyRegistration,
} from './registration.js'

const NOW = Date.UTC(2026, 0, 10, 12, 0, 0)
const NOW_S = NOW / 1000
const alice = Keypair.fromSeed(new Uint8Array(32).fill(1))
const mallory = Keypair.fromSeed(new Uint8Array(32).fill(2))

/** A registration with every claim given by hand (for the refusals). */
function claims(over: Record<string, unknown> = {}) {
  return { did: alice.did, url: 'http://127.0.0.1:9100', namespaces: ['acme'], handle: 'alice', iat: NOW_S, exp: NOW_S + 3600, ...over }
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p
  } catch (err) {
    return (err as { code: string }).code
  }
  return 'ACCEPTED'
}

describe('registration', () => {
  it('signs and verifies: the claims come back, the url normalised, the JWT kept as signed', async () => {
    const jwt = await signRegistration(alice, {
      url: 'http://127.0.0.1:9100/',
      namespaces: ['acme', 'acme/ops'],
      handle: 'alice',
      now: NOW,
    })
    const reg = await verifyRegistration(jwt, { now: NOW })
    expect(reg).toEqual({
      did: alice.did,
      url: 'http://127.0.0.1:9100',
      namespaces: ['acme', 'acme/ops'],
      handle: 'alice',
      iat: NOW_S,
      exp: NOW_S + 30 * 86400,
      jwt,
    })
  })

  it('refuses a registration signed by another key than its iss', async () => {
    // Mallory signs claims naming Alice: iss = Alice, key = Mallory's.
    const forged = await signJwt(mallory, REGISTRATION_TYP, { ...claims(), iss: alice.did })
    expect(await codeOf(verifyRegistration(forged, { now: NOW }))).toBe('REGISTRATION_SIGNATURE_INVALID')
    // And a registration of someone else's DID by its own key.
    const other = await signJwt(mallory, REGISTRATION_TYP, claims())
    expect(await codeOf(verifyRegistration(other, { now: NOW }))).toBe('REGISTRATION_INVALID')
  })

  it('refuses an altered payload', async () => {
    const jwt = await signRegistration(alice, { url: 'http://127.0.0.1:9100', namespaces: ['acme'], now: NOW })
    const [h, , s] = jwt.split('.')
    const payload = Buffer.from(JSON.stringify({ ...claims(), iss: alice.did, url: 'http://evil.example:9100' })).toString('base64url')
    expect(await codeOf(verifyRegistration(`${h}.${payload}.${s}`, { now: NOW }))).toBe('REGISTRATION_SIGNATURE_INVALID')
  })

  it('refuses an expired registration, and one valid for more than a year', async () => {
    const old = await signJwt(alice, REGISTRATION_TYP, claims({ iat: NOW_S - 7200, exp: NOW_S - 1 }))
    expect(await codeOf(verifyRegistration(old, { now: NOW }))).toBe('REGISTRATION_EXPIRED')
    const long = await signJwt(alice, REGISTRATION_TYP, claims({ exp: NOW_S + 366 * 86400 }))
    expect(await codeOf(verifyRegistration(long, { now: NOW }))).toBe('REGISTRATION_INVALID')
    const future = await signJwt(alice, REGISTRATION_TYP, claims({ iat: NOW_S + 600, exp: NOW_S + 3600 }))
    expect(await codeOf(verifyRegistration(future, { now: NOW }))).toBe('REGISTRATION_INVALID')
  })

  it('refuses one over 8 KiB with REGISTRATION_TOO_LARGE', async () => {
    const big = await signJwt(alice, REGISTRATION_TYP, claims({ pad: 'x'.repeat(6200) }))
    expect(big.length).toBeGreaterThan(MAX_REGISTRATION_BYTES)
    expect(await codeOf(verifyRegistration(big, { now: NOW }))).toBe('REGISTRATION_TOO_LARGE')
  })

  it.each([
    ['an upper-case handle', { handle: 'Alice' }],
    ['a handle of 64 characters', { handle: 'a'.repeat(64) }],
    ['a handle with a dot', { handle: 'al.ice' }],
    ['a handle ending in a hyphen', { handle: 'alice-' }],
    ['a handle that is a number', { handle: 7 }],
    ['no namespaces', { namespaces: [] }],
    ['namespaces as a string', { namespaces: 'acme' }],
    ['a bad namespace', { namespaces: ['Acme'] }],
    ['a namespace twice', { namespaces: ['acme', 'acme'] }],
    ['an ftp url', { url: 'ftp://127.0.0.1' }],
    ['a url with a query', { url: 'http://127.0.0.1:9100?x=1' }],
    ['a url with credentials', { url: 'http://u:p@127.0.0.1:9100' }],
    ['a url with a trailing slash', { url: 'http://127.0.0.1:9100/' }],
    ['no url', { url: undefined }],
    ['exp as a string', { exp: String(NOW_S + 60) }],
    ['exp before iat', { exp: NOW_S - 1 }],
    ['a fractional iat', { iat: NOW_S + 0.5 }],
    ['an action claim', { action: 'delete' }],
  ])('refuses %s with REGISTRATION_INVALID', async (_, over) => {
    const jwt = await signJwt(alice, REGISTRATION_TYP, claims(over))
    expect(await codeOf(verifyRegistration(jwt, { now: NOW }))).toBe('REGISTRATION_INVALID')
  })

  it.each([
    ['a number', 42],
    ['an empty string', ''],
    ['two parts', 'a.b'],
    ['base64 of garbage', 'e30.e30.'],
    ['not base64url', 'a+b.c/d.e=f'],
    ['JSON arrays', `${Buffer.from('[]').toString('base64url')}.${Buffer.from('[]').toString('base64url')}.AA`],
  ])('refuses %s as not a JWS', async (_, token) => {
    expect(await codeOf(verifyRegistration(token, { now: NOW }))).toBe('REGISTRATION_INVALID')
  })

  it('refuses another typ (a delete is not a registration)', async () => {
    const del = await signDelete(alice, { now: NOW })
    expect(await codeOf(verifyRegistration(del, { now: NOW }))).toBe('REGISTRATION_INVALID')
  })

  it('reads handles with or without did:sync:', () => {
    expect(handleOf('did:sync:alice')).toBe('alice')
    expect(handleOf('alice')).toBe('alice')
    expect(handleOf('did:sync:Alice')).toBeUndefined()
  })
})

describe('delete', () => {
  it('accepts the owner’s delete and answers its iat', async () => {
    const token = await signDelete(alice, { now: NOW })
    expect(await verifyDelete(`Bearer ${token}`, alice.did, { now: NOW })).toEqual({ did: alice.did, iat: NOW_S })
  })

  it('refuses a delete signed by another key (403), a missing one, a registration, an expired or long-lived one (401)', async () => {
    expect(await codeOf(verifyDelete(`Bearer ${await signDelete(mallory, { now: NOW })}`, alice.did, { now: NOW }))).toBe(
      'DELETE_FORBIDDEN',
    )
    const forged = await signJwt(mallory, DELETE_TYP, { iss: alice.did, action: 'delete', iat: NOW_S, exp: NOW_S + 60 })
    expect(await codeOf(verifyDelete(`Bearer ${forged}`, alice.did, { now: NOW }))).toBe('DELETE_UNAUTHORIZED')
    expect(await codeOf(verifyDelete(undefined, alice.did, { now: NOW }))).toBe('DELETE_UNAUTHORIZED')
    expect(await codeOf(verifyDelete('Basic abc', alice.did, { now: NOW }))).toBe('DELETE_UNAUTHORIZED')
    const reg = await signRegistration(alice, { url: 'http://127.0.0.1:9100', namespaces: ['acme'], now: NOW })
    expect(await codeOf(verifyDelete(`Bearer ${reg}`, alice.did, { now: NOW }))).toBe('DELETE_UNAUTHORIZED')
    const old = await signDelete(alice, { now: NOW - 600_000 })
    expect(await codeOf(verifyDelete(`Bearer ${old}`, alice.did, { now: NOW }))).toBe('DELETE_UNAUTHORIZED')
    const long = await signJwt(alice, DELETE_TYP, { action: 'delete', iat: NOW_S, exp: NOW_S + 3600 })
    expect(await codeOf(verifyDelete(`Bearer ${long}`, alice.did, { now: NOW }))).toBe('DELETE_UNAUTHORIZED')
    const noAction = await signJwt(alice, DELETE_TYP, { iat: NOW_S, exp: NOW_S + 60 })
    expect(await codeOf(verifyDelete(`Bearer ${noAction}`, alice.did, { now: NOW }))).toBe('DELETE_UNAUTHORIZED')
  })
})
