import { REGISTRATION_TYP, type RegistrationInit, signDelete, signRegistration } from '@spl/discovery'
import { Keypair, signJwt } from '@spl/identity'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { prng } from '../../../../test-utils/prng.js'
import { type Answer, type AppUnderTest, answerOf, appUnderTest, expectErrorEnvelope } from '../../test/harness.js'

const DIRECTORY_ON = '[directory]\nenabled = true'
const kp = (n: number) => Keypair.fromSeed(new Uint8Array(32).fill(n))
const alice = kp(11)
const bob = kp(12)
const carol = kp(13)
const mallory = kp(14)

/** A request without the admin token: the directory's doors are open. */
async function open(
  d: AppUnderTest,
  method: string,
  p: string,
  init: { body?: string; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const res = await d.app.request(p, {
    method,
    headers: { ...(init.body === undefined ? {} : { 'content-type': 'application/json' }), ...init.headers },
    ...(init.body === undefined ? {} : { body: init.body }),
  })
  return answerOf(res)
}

const register = (d: AppUnderTest, registration: unknown) =>
  open(d, 'POST', '/directory/register', { body: JSON.stringify({ registration }) })
const reg = (who: Keypair, init: Partial<RegistrationInit> = {}) =>
  signRegistration(who, { url: `http://127.0.0.1:${9000 + who.publicKey[0]!}`, namespaces: ['acme'], ...init })

describe('directory doors (SPEC 8, did:sync)', () => {
  let d: AppUnderTest
  let mirror: AppUnderTest
  let off: AppUnderTest
  beforeAll(async () => {
    ;[d, mirror, off] = await Promise.all([appUnderTest({ config: DIRECTORY_ON }), appUnderTest({ config: DIRECTORY_ON }), appUnderTest()])
  })
  afterAll(async () => {
    await Promise.all([d.close(), mirror.close(), off.close()])
  })

  it('answers DIRECTORY_DISABLED (404) on every door when [directory] enabled is off', async () => {
    for (const [method, p, body] of [
      ['POST', '/directory/register', JSON.stringify({ registration: await reg(alice) })],
      ['POST', '/directory/import', '{"entries":[]}'],
      ['GET', '/directory/namespaces/acme'],
      ['GET', `/directory/resolve/${alice.did}`],
      ['GET', '/directory/handle/alice'],
      ['GET', '/directory/export'],
      ['DELETE', `/directory/${alice.did}`],
    ] as const) {
      expectErrorEnvelope(await open(off, method, p, body === undefined ? {} : { body }), 404, 'DIRECTORY_DISABLED')
    }
  })

  it('registers without the admin token (201), re-registers (200, replaced), and looks up by DID, handle and namespace', async () => {
    const first = await register(d, await reg(alice, { handle: 'alice', namespaces: ['acme', 'acme/ops'] }))
    expect(first.status).toBe(201)
    expect(first.json).toMatchObject({ object: 'directory_registration', replaced: false, entry: { did: alice.did, handle: 'alice' } })
    const jwt = await reg(alice, { handle: 'alice', namespaces: ['acme', 'acme/ops'], now: Date.now() + 1000 })
    const again = await register(d, jwt)
    expect(again.status).toBe(200)
    expect(again.json).toMatchObject({ replaced: true, entry: { jwt } })

    const byDid = await open(d, 'GET', `/directory/resolve/${alice.did}`)
    expect(byDid.json).toMatchObject({
      object: 'directory_entry',
      did: alice.did,
      url: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/),
      handle: 'alice',
      jwt,
    })
    expect((await open(d, 'GET', '/directory/handle/alice')).json).toEqual(byDid.json)
    expect((await open(d, 'GET', '/directory/handle/did:sync:alice')).json).toEqual(byDid.json)
    expect((await open(d, 'GET', '/directory/resolve/did:sync:alice')).json).toEqual(byDid.json)
    // A namespace with a slash is URL-encoded in the path, as in /v1/namespaces/{ns}.
    const ns = await open(d, 'GET', '/directory/namespaces/acme%2Fops')
    expect(ns.status).toBe(200)
    expect(ns.json).toMatchObject({ object: 'list', namespace: 'acme/ops', entries: [{ did: alice.did }] })
    expect((await open(d, 'GET', '/directory/namespaces/nobody')).json).toMatchObject({ entries: [] })
    expectErrorEnvelope(await open(d, 'GET', `/directory/resolve/${bob.did}`), 404, 'DIRECTORY_ENTRY_NOT_FOUND')
    expectErrorEnvelope(await open(d, 'GET', '/directory/handle/nobody'), 404, 'DIRECTORY_ENTRY_NOT_FOUND')
    expectErrorEnvelope(await open(d, 'GET', '/directory/handle/Not%20A%20Handle'), 400, 'HANDLE_INVALID')
  })

  it('refuses bad registrations with 4xx codes and stores nothing of them', async () => {
    const now = Math.floor(Date.now() / 1000)
    const cases: [string, Promise<Answer>, number, string][] = [
      [
        'a registration signed by another key',
        register(
          d,
          await signJwt(mallory, REGISTRATION_TYP, {
            iss: carol.did,
            did: carol.did,
            url: 'http://127.0.0.1:1',
            namespaces: ['acme'],
            iat: now,
            exp: now + 60,
          }),
        ),
        401,
        'REGISTRATION_SIGNATURE_INVALID',
      ],
      [
        'a DID registering another',
        register(
          d,
          await signJwt(mallory, REGISTRATION_TYP, {
            did: carol.did,
            url: 'http://127.0.0.1:1',
            namespaces: ['acme'],
            iat: now,
            exp: now + 60,
          }),
        ),
        400,
        'REGISTRATION_INVALID',
      ],
      [
        'an expired registration',
        register(
          d,
          await signJwt(carol, REGISTRATION_TYP, {
            did: carol.did,
            url: 'http://127.0.0.1:1',
            namespaces: ['acme'],
            iat: now - 100,
            exp: now - 10,
          }),
        ),
        400,
        'REGISTRATION_EXPIRED',
      ],
      ['a taken handle', register(d, await reg(carol, { handle: 'alice' })), 409, 'HANDLE_TAKEN'],
      [
        'a bad handle',
        register(
          d,
          await signJwt(carol, REGISTRATION_TYP, {
            did: carol.did,
            url: 'http://127.0.0.1:1',
            namespaces: ['acme'],
            handle: 'Carol!',
            iat: now,
            exp: now + 60,
          }),
        ),
        400,
        'REGISTRATION_INVALID',
      ],
      [
        'a registration of 8.5 KiB',
        register(d, await signJwt(carol, REGISTRATION_TYP, { did: carol.did, pad: 'x'.repeat(6300) })),
        413,
        'REGISTRATION_TOO_LARGE',
      ],
      [
        'a body of 1 MiB',
        open(d, 'POST', '/directory/register', { body: JSON.stringify({ registration: 'x'.repeat(1 << 20) }) }),
        413,
        'REGISTRATION_TOO_LARGE',
      ],
      ['a number', register(d, 42), 400, 'REGISTRATION_INVALID'],
      ['garbage', register(d, 'eyJ.eyJ.x'), 400, 'REGISTRATION_INVALID'],
      ['no registration', open(d, 'POST', '/directory/register', { body: '{}' }), 400, 'REGISTRATION_INVALID'],
      ['an array body', open(d, 'POST', '/directory/register', { body: '[1,2]' }), 400, 'REGISTRATION_INVALID'],
      ['malformed JSON', open(d, 'POST', '/directory/register', { body: '{"registration":' }), 400, 'INVALID_JSON'],
      [
        'text/plain',
        open(d, 'POST', '/directory/register', { body: 'x', headers: { 'content-type': 'text/plain' } }),
        415,
        'UNSUPPORTED_MEDIA_TYPE',
      ],
    ]
    for (const [what, p, status, code] of cases) {
      const a = await p
      expect(a.status, what).toBe(status)
      expectErrorEnvelope(a, status, code)
    }
    expectErrorEnvelope(await open(d, 'GET', `/directory/resolve/${carol.did}`), 404, 'DIRECTORY_ENTRY_NOT_FOUND')
    expect((await open(d, 'GET', '/directory/handle/alice')).json).toMatchObject({ did: alice.did })
  })

  it('deletes only on the owner’s signature', async () => {
    await register(d, await reg(bob, { handle: 'bob' }))
    const path = `/directory/${encodeURIComponent(bob.did)}`
    expectErrorEnvelope(await open(d, 'DELETE', path), 401, 'DELETE_UNAUTHORIZED')
    expectErrorEnvelope(await open(d, 'DELETE', path, { headers: { authorization: 'Bearer not.a.jwt' } }), 401, 'DELETE_UNAUTHORIZED')
    expectErrorEnvelope(
      await open(d, 'DELETE', path, { headers: { authorization: `Bearer ${await signDelete(mallory)}` } }),
      403,
      'DELETE_FORBIDDEN',
    )
    // The admin token is no signature of bob's.
    expectErrorEnvelope(await open(d, 'DELETE', path, { headers: { authorization: `Bearer ${d.token}` } }), 401, 'DELETE_UNAUTHORIZED')
    expect((await open(d, 'GET', '/directory/handle/bob')).status).toBe(200)
    const del = await open(d, 'DELETE', path, { headers: { authorization: `Bearer ${await signDelete(bob, { now: Date.now() + 1000 })}` } })
    expect(del.json).toEqual({ object: 'directory_deletion', did: bob.did, deleted: true })
    expectErrorEnvelope(await open(d, 'GET', '/directory/handle/bob'), 404, 'DIRECTORY_ENTRY_NOT_FOUND')
  })

  it('export → import into a second directory gives the same answers', async () => {
    await register(d, await reg(carol, { handle: 'carol', namespaces: ['beta'] }))
    const exported = await open(d, 'GET', '/directory/export')
    expect(exported.json).toMatchObject({ object: 'directory_export' })
    const entries = (exported.json as { entries: string[] }).entries
    expect(entries).toHaveLength(2)
    const imported = await open(mirror, 'POST', '/directory/import', { body: JSON.stringify({ entries }) })
    expect(imported.json).toEqual({ object: 'directory_import', added: 2, replaced: 0, unchanged: 0, skipped: [] })
    for (const p of [
      '/directory/namespaces/acme',
      '/directory/namespaces/beta',
      '/directory/namespaces/acme%2Fops',
      '/directory/handle/carol',
      '/directory/handle/alice',
      `/directory/resolve/${alice.did}`,
      `/directory/resolve/${carol.did}`,
      `/directory/resolve/${bob.did}`,
    ]) {
      expect((await open(mirror, 'GET', p)).json, p).toEqual((await open(d, 'GET', p)).json)
    }
    const again = await open(mirror, 'GET', '/directory/export')
    expect((again.json as { entries: string[] }).entries).toEqual(entries)
    // Import checks each entry: a forged one is skipped, with its index and code.
    const bad = await open(mirror, 'POST', '/directory/import', { body: JSON.stringify({ entries: ['nope', entries[0]] }) })
    expect(bad.json).toMatchObject({ added: 0, unchanged: 1, skipped: [{ index: 0, code: 'REGISTRATION_INVALID' }] })
    expectErrorEnvelope(await open(mirror, 'POST', '/directory/import', { body: '{"entries":"x"}' }), 400, 'INVALID_REQUEST')
    expectErrorEnvelope(
      await open(mirror, 'POST', '/directory/import', { body: JSON.stringify({ entries: Array(1001).fill('x') }) }),
      400,
      'INVALID_REQUEST',
    )
  })

  it('pages the export and a namespace with limit/after', async () => {
    const one = await open(d, 'GET', '/directory/export?limit=1')
    const next = (one.json as { next?: string }).next
    expect(next).toBeDefined()
    const rest = await open(d, 'GET', `/directory/export?limit=1&after=${encodeURIComponent(next!)}`)
    expect((rest.json as { entries: string[] }).entries).toHaveLength(1)
    expectErrorEnvelope(await open(d, 'GET', '/directory/export?limit=0'), 400, 'INVALID_REQUEST')
    expectErrorEnvelope(await open(d, 'GET', '/directory/namespaces/acme?limt=3'), 400, 'INVALID_REQUEST')
  })

  it('never answers 5xx to a seeded fuzz of 400 requests at the doors', async () => {
    const rand = prng(20)
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!
    const good = await reg(kp(30))
    const [h, p, s] = good.split('.')
    const values: unknown[] = [
      null,
      true,
      -1,
      1e308,
      '',
      '..',
      good,
      `${h}.${p}.`,
      `${h}.${s}.${p}`,
      `${p}.${h}.${s}`,
      good.toUpperCase(),
      `${good}x`,
      { jwt: good },
      [good],
      '\u0000',
      '☃'.repeat(3000),
      { __proto__: { registration: good } },
    ]
    const bodies = () =>
      pick([
        () => JSON.stringify({ registration: pick(values) }),
        () => JSON.stringify({ entries: Array.from({ length: Math.floor(rand() * 4) }, () => pick(values)) }),
        () => JSON.stringify(pick(values)),
        () => '{"registration": "' + 'a'.repeat(Math.floor(rand() * 20000)),
        () => '\u{1F600}{',
        () => '{"__proto__":{"registration":1},"constructor":{"prototype":{}}}',
      ])()
    // Header values must be bytes: fetch refuses anything else before the daemon sees it.
    const headerValues = values.filter((v): v is string => typeof v === 'string' && /^[\x20-\x7e]*$/.test(v))
    const paths = ['/directory/register', '/directory/import']
    const gets = [
      '/directory/resolve/%ZZ',
      '/directory/resolve/did:key:z6Mk',
      '/directory/handle/%00',
      `/directory/namespaces/${'a/'.repeat(500)}`,
      '/directory/export?after=%00',
    ]
    for (let i = 0; i < 400; i++) {
      const a =
        rand() < 0.75
          ? await open(d, 'POST', pick(paths), { body: bodies() })
          : rand() < 0.5
            ? await open(d, 'GET', pick(gets))
            : await open(d, 'DELETE', `/directory/${pick(['x', alice.did, '%00', 'did:key:z6Mk'])}`, {
                headers: { authorization: `Bearer ${pick(headerValues)}` },
              })
      expect(a.status, JSON.stringify(a.json).slice(0, 200)).toBeLessThan(500)
      if (a.status >= 400) expectErrorEnvelope(a)
    }
    // Still serving, and alice is still there.
    expect((await open(d, 'GET', '/directory/handle/alice')).json).toMatchObject({ did: alice.did })
  })
})
