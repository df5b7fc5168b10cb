import { Keypair } from '@spl/identity'
import { describe, expect, it } from 'vitest'
import {
  MANIFEST_RESIGN_MS,
  MANIFEST_VALIDITY_MS,
  ManifestInvalidError,
  ManifestSigner,
  signManifest,
  verifyManifest,
  type WellKnownDocument,
} from './manifest.js'

// biome-ignore lint/suspicious/noExplicitAny: the tests edit the manifest as free JSON
type Free = any

const alice = Keypair.fromSeed(new Uint8Array(32).fill(1))
const mallory = Keypair.fromSeed(new Uint8Array(32).fill(2))
const T0 = Date.parse('2026-12-01T00:00:00Z')

function doc(now = T0, keypair = alice): WellKnownDocument {
  return signManifest({
    keypair,
    version: '0.1.0',
    url: 'http://10.0.0.5:9100/',
    namespaces: ['default'],
    acceptsPairRequests: 'invite',
    now,
  })
}

/** A deep copy with `edit` applied to the manifest. */
function tampered(edit: (m: Free) => void): unknown {
  const d = JSON.parse(JSON.stringify(doc()))
  edit(d.federation_manifest)
  return d
}

function codeOf(fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(ManifestInvalidError)
    return (err as ManifestInvalidError).code
  }
  throw new Error('expected the manifest to be refused')
}

describe('signManifest / verifyManifest (SPEC 8)', () => {
  it('signs the shape of SPEC 8 and verifies it', () => {
    const d = doc()
    const m = d.federation_manifest
    expect(d.object).toBe('syncropel_well_known')
    expect(m.federation).toEqual({
      enabled: true,
      pair_endpoint: 'http://10.0.0.5:9100/v1/federation/pair',
      sync_change_endpoint: 'http://10.0.0.5:9100/v1/sync/changes',
    })
    expect(m.signature.key_id).toBe(`${alice.did}#key-1`)
    expect(Date.parse(m.signature.expires_at) - Date.parse(m.signature.signed_at)).toBe(MANIFEST_VALIDITY_MS)
    const v = verifyManifest(d, { expectedDid: alice.did, now: T0 + 1000 })
    expect(v.did).toBe(alice.did)
    expect(v.expired).toBe(false)
  })

  it.each([
    ['the version', (m: Free) => (m.daemon.version = '9.9.9')],
    ['the change endpoint', (m: Free) => (m.federation.sync_change_endpoint = 'http://evil.example/v1/sync/changes')],
    ['the pairing policy', (m: Free) => (m.consent_policy.accepts_pair_requests = 'auto')],
    ['the namespaces', (m: Free) => m.advertises.namespaces.push('secret')],
    ['signed_at (covered by the signature)', (m: Free) => (m.signature.signed_at = '2026-12-01T00:00:01.000Z')],
    ['expires_at (covered by the signature)', (m: Free) => (m.signature.expires_at = '2027-12-01T00:00:00.000Z')],
    ['an added field', (m: Free) => (m.extra = true)],
  ])('refuses a manifest whose %s was changed after signing', (_what, edit) => {
    expect(codeOf(() => verifyManifest(tampered(edit), { now: T0 }))).toBe('MANIFEST_SIGNATURE_INVALID')
  })

  it("refuses another key's signature under this DID, and a key_id that names another key", () => {
    const forged = tampered((m) => {
      m.signature.signature = doc(T0, mallory).federation_manifest.signature.signature
    })
    expect(codeOf(() => verifyManifest(forged, { now: T0 }))).toBe('MANIFEST_SIGNATURE_INVALID')
    const otherKeyId = tampered((m) => (m.signature.key_id = `${mallory.did}#key-1`))
    expect(codeOf(() => verifyManifest(otherKeyId, { now: T0 }))).toBe('MANIFEST_SIGNATURE_INVALID')
  })

  it('tells a valid manifest of another DID apart (MANIFEST_DID_MISMATCH)', () => {
    expect(codeOf(() => verifyManifest(doc(T0, mallory), { expectedDid: alice.did, now: T0 }))).toBe('MANIFEST_DID_MISMATCH')
  })

  it('flags an expired manifest, and refuses it with strict', () => {
    const late = T0 + MANIFEST_VALIDITY_MS + 1
    expect(verifyManifest(doc(), { now: late }).expired).toBe(true)
    expect(codeOf(() => verifyManifest(doc(), { now: late, strict: true }))).toBe('MANIFEST_EXPIRED')
    expect(verifyManifest(doc(), { now: late - 2, strict: true }).expired).toBe(false)
  })

  it('refuses a manifest signed days in the future', () => {
    expect(codeOf(() => verifyManifest(doc(T0 + 86_400_000), { now: T0 }))).toBe('MANIFEST_SIGNATURE_INVALID')
  })

  it.each([
    ['null', null],
    ['a string', 'syncropel'],
    ['another object', { object: 'identity', did: alice.did }],
    ['no manifest', { object: 'syncropel_well_known' }],
    ['a manifest without signature', tampered((m) => delete m.signature)],
    ['a short signature', tampered((m) => (m.signature.signature = 'AAAA'))],
    ['a did that is not a did:key', tampered((m) => (m.daemon.did = 'did:web:alice.dev'))],
    ['a policy outside SPEC', tampered((m) => (m.consent_policy.accepts_pair_requests = 'sometimes'))],
  ])('refuses %s as MANIFEST_MALFORMED', (_what, value) => {
    expect(codeOf(() => verifyManifest(value, { now: T0 }))).toBe('MANIFEST_MALFORMED')
  })
})

describe('ManifestSigner', () => {
  it('signs once per origin and again when the signature is a day old', () => {
    let now = T0
    const signer = new ManifestSigner({
      keypair: alice,
      version: '0.1.0',
      namespaces: ['default'],
      acceptsPairRequests: 'manual',
      now: () => now,
    })
    const a = signer.forOrigin('http://127.0.0.1:9100')
    expect(signer.forOrigin('http://127.0.0.1:9100')).toBe(a)
    expect(signer.forOrigin('http://localhost:9100').federation_manifest.federation.pair_endpoint).toBe(
      'http://localhost:9100/v1/federation/pair',
    )
    now = T0 + MANIFEST_RESIGN_MS + 1
    const b = signer.forOrigin('http://127.0.0.1:9100')
    expect(b).not.toBe(a)
    expect(b.federation_manifest.signature.signed_at).toBe(new Date(now).toISOString())
    expect(verifyManifest(b, { expectedDid: alice.did, now }).expired).toBe(false)
  })

  it('names advertise_url whatever origin the caller used', () => {
    const signer = new ManifestSigner({
      keypair: alice,
      version: '0.1.0',
      namespaces: [],
      acceptsPairRequests: 'invite',
      advertiseUrl: 'https://hub.example.com/',
    })
    const m = signer.forOrigin('http://127.0.0.1:9100').federation_manifest
    expect(m.federation.sync_change_endpoint).toBe('https://hub.example.com/v1/sync/changes')
  })
})
