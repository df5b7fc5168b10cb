import { appendFileSync, mkdtempSync } from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { DirectoryClient, REGISTRATION_TYP, signDelete, signRegistration } from '@spl/discovery'
import { Keypair, signJwt } from '@spl/identity'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ok, spl, TestDaemon } from '../../../test-utils/test-daemon.js'

// Issue 10, the did:sync directory: real `spl` daemons on loopback, two of them serving a
// directory ([directory] enabled = true), three registering in two namespaces with
// `spl directory register`, and a daemon's discovery listing them verified.

/** A daemon on a fresh home whose config.toml gets `extra` before it starts. */
async function daemonWith(extra: string): Promise<TestDaemon> {
  const home = mkdtempSync(path.join(os.tmpdir(), 'spl-dir-'))
  ok(await spl(home, ['init']), 'spl init')
  appendFileSync(path.join(home, 'config.toml'), `\n${extra}\n`)
  return TestDaemon.start({ home })
}

interface Answer {
  status: number
  json: Record<string, unknown>
}

async function call(method: string, url: string, init: { body?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
  const res = await fetch(url, {
    method,
    headers: { ...(init.body === undefined ? {} : { 'content-type': 'application/json' }), ...init.headers },
    ...(init.body === undefined ? {} : { body: init.body }),
  })
  const text = await res.text()
  let json: Record<string, unknown>
  try {
    json = JSON.parse(text) as Record<string, unknown>
  } catch {
    json = { text }
  }
  return { status: res.status, json }
}

/**
 * POSTs a JSON body of `size` bytes with node:http and reads the answer even when the daemon
 * answers 413 and closes before the body is sent (fetch reports that as EPIPE, not the answer).
 */
function bigPost(url: string, size: number): Promise<Answer> {
  const body = Buffer.alloc(size, 'x')
  body.write('{"registration":"', 0)
  body.write('"}', size - 2)
  return new Promise((resolve, reject) => {
    let answered = false
    const req = http.request(
      url,
      { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': String(size) } },
      (res) => {
        answered = true
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString()) }))
      },
    )
    req.on('error', (err) => {
      if (!answered) reject(err)
    })
    req.end(body)
  })
}

/** A 4xx with the error envelope of SPEC 7.6 and `code`. */
function expectRefused(a: Answer, status: number, code: string): void {
  expect(a.status, JSON.stringify(a.json).slice(0, 300)).toBe(status)
  expect(a.json).toMatchObject({ object: 'error', code, message: expect.any(String) })
}

/** What GET /v1/discovery/peers answers (the fields these tests read). */
interface PeersAnswer {
  failures: unknown[]
  peers: { did: string; url: string; verified: boolean; sources: string[]; aka?: string[] }[]
}

const dids = (entries: unknown) => (entries as { did: string }[]).map((e) => e.did).sort()

let dir: TestDaemon
let mirror: TestDaemon
let alice: TestDaemon
let bob: TestDaemon
let carol: TestDaemon

beforeAll(async () => {
  ;[dir, mirror] = await Promise.all([daemonWith('[directory]\nenabled = true'), daemonWith('[directory]\nenabled = true')])
  ;[alice, bob, carol] = await Promise.all([TestDaemon.start(), TestDaemon.start(), TestDaemon.start()])
})

afterAll(async () => {
  await Promise.all([dir, mirror, alice, bob, carol].map((d) => d?.[Symbol.asyncDispose]()))
})

describe('did:sync directory (SPEC 8) between real daemons', () => {
  it('spl directory register: three daemons in two namespaces, listed by namespace, resolved by handle and DID', async () => {
    const r = ok(
      await alice.spl('directory', 'register', '--directory', dir.url, '--namespace', 'acme', '--handle', 'alice', '--json'),
      'register alice',
    )
    expect(JSON.parse(r.stdout)).toMatchObject({
      object: 'directory_registration',
      replaced: false,
      did: alice.did,
      url: alice.url,
      namespaces: ['acme'],
      handle: 'alice',
    })
    ok(
      await bob.spl('directory', 'register', '--directory', dir.url, '--namespace', 'acme', '--namespace', 'beta', '--handle', 'bob'),
      'register bob',
    )
    const text = ok(
      await carol.spl('directory', 'register', '--directory', dir.url, '--namespace', 'beta', '--expires', '7d'),
      'register carol',
    )
    expect(text.stdout).toContain(`registered ${carol.did}`)

    expect(dids((await call('GET', `${dir.url}/directory/namespaces/acme`)).json['entries'])).toEqual([alice.did, bob.did].sort())
    expect(dids((await call('GET', `${dir.url}/directory/namespaces/beta`)).json['entries'])).toEqual([bob.did, carol.did].sort())
    expect((await call('GET', `${dir.url}/directory/handle/alice`)).json).toMatchObject({ did: alice.did, url: alice.url })
    expect((await call('GET', `${dir.url}/directory/resolve/did:sync:bob`)).json).toMatchObject({ did: bob.did })
    expect((await call('GET', `${dir.url}/directory/resolve/${carol.did}`)).json).toMatchObject({ handle: null, namespaces: ['beta'] })

    // Re-registering replaces: alice moves to beta too.
    const again = ok(
      await alice.spl(
        'directory',
        'register',
        '--directory',
        dir.url,
        '--namespace',
        'acme',
        '--namespace',
        'beta',
        '--handle',
        'alice',
        '--json',
      ),
      're-register alice',
    )
    expect(JSON.parse(again.stdout)).toMatchObject({ replaced: true, namespaces: ['acme', 'beta'] })
    expect(dids((await call('GET', `${dir.url}/directory/namespaces/beta`)).json['entries'])).toEqual(
      [alice.did, bob.did, carol.did].sort(),
    )

    // The client checks every entry against its own signature.
    const client = new DirectoryClient(dir.url)
    expect((await client.byHandle('did:sync:alice'))?.did).toBe(alice.did)
    expect((await client.byNamespace('acme')).map((e) => e.did).sort()).toEqual([alice.did, bob.did].sort())
  })

  it('refuses a registration signed by another key, and a handle held by another DID', async () => {
    const mallory = Keypair.generate()
    const now = Math.floor(Date.now() / 1000)
    const forged = await signJwt(mallory, REGISTRATION_TYP, {
      iss: alice.did,
      did: alice.did,
      url: 'http://127.0.0.1:1',
      namespaces: ['acme'],
      iat: now,
      exp: now + 3600,
    })
    expectRefused(
      await call('POST', `${dir.url}/directory/register`, { body: JSON.stringify({ registration: forged }) }),
      401,
      'REGISTRATION_SIGNATURE_INVALID',
    )
    expect((await call('GET', `${dir.url}/directory/resolve/${alice.did}`)).json).toMatchObject({ url: alice.url })

    const taken = await carol.spl('directory', 'register', '--directory', dir.url, '--namespace', 'beta', '--handle', 'alice')
    expect(taken.code).toBe(1)
    expect(taken.stderr).toContain('HANDLE_TAKEN')
    expect((await call('GET', `${dir.url}/directory/handle/alice`)).json).toMatchObject({ did: alice.did })
  })

  it('an expired registration is gone from every answer', async () => {
    const brief = Keypair.generate()
    const jwt = await signRegistration(brief, { url: 'http://127.0.0.1:2', namespaces: ['acme'], handle: 'brief', lifetimeS: 2 })
    expect((await call('POST', `${dir.url}/directory/register`, { body: JSON.stringify({ registration: jwt }) })).status).toBe(201)
    expect(dids((await call('GET', `${dir.url}/directory/namespaces/acme`)).json['entries'])).toContain(brief.did)
    // Wait until its exp has passed (exp is in whole seconds), then nothing names it.
    const exp = JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()).exp as number
    while (Date.now() < exp * 1000 + 50) await sleep(100)
    expectRefused(await call('GET', `${dir.url}/directory/resolve/${brief.did}`), 404, 'DIRECTORY_ENTRY_NOT_FOUND')
    expectRefused(await call('GET', `${dir.url}/directory/handle/brief`), 404, 'DIRECTORY_ENTRY_NOT_FOUND')
    expect(dids((await call('GET', `${dir.url}/directory/namespaces/acme`)).json['entries'])).not.toContain(brief.did)
    expect(await new DirectoryClient(dir.url).export()).not.toContain(jwt)
    // And it cannot be registered again.
    expectRefused(
      await call('POST', `${dir.url}/directory/register`, { body: JSON.stringify({ registration: jwt }) }),
      400,
      'REGISTRATION_EXPIRED',
    )
  })

  it('export → spl directory import into a second directory gives the same answers', async () => {
    const r = ok(await alice.spl('directory', 'import', '--from', dir.url, '--directory', mirror.url, '--json'), 'import')
    expect(JSON.parse(r.stdout)).toMatchObject({ object: 'directory_import', read: 3, added: 3, replaced: 0, unchanged: 0, skipped: [] })
    for (const p of [
      '/directory/namespaces/acme',
      '/directory/namespaces/beta',
      '/directory/handle/alice',
      '/directory/handle/bob',
      `/directory/resolve/${alice.did}`,
      `/directory/resolve/${bob.did}`,
      `/directory/resolve/${carol.did}`,
      '/directory/resolve/did:sync:bob',
    ]) {
      const [here, there] = await Promise.all([call('GET', `${dir.url}${p}`), call('GET', `${mirror.url}${p}`)])
      expect(there.status, p).toBe(200)
      expect(there.json, p).toEqual(here.json)
    }
    expect((await new DirectoryClient(mirror.url).export()).sort()).toEqual((await new DirectoryClient(dir.url).export()).sort())
    // A second import changes nothing.
    const again = ok(await alice.spl('directory', 'import', '--from', dir.url, '--directory', mirror.url, '--json'), 'import again')
    expect(JSON.parse(again.stdout)).toMatchObject({ added: 0, unchanged: 3 })
  })

  it('GET /v1/discovery/peers?method=did-sync and spl fleet sync peers discover list the namespace, verified', async () => {
    for (const directory of [dir.url, mirror.url]) {
      const q = new URLSearchParams({ method: 'did-sync', namespace: 'acme', directory, timeout_ms: '5000' })
      const res = await carol.api.get<PeersAnswer>(`/v1/discovery/peers?${q}`)
      expect(res.failures).toEqual([])
      const peers = res.peers
      expect(peers.map((p) => p.did).sort()).toEqual([alice.did, bob.did].sort())
      for (const p of peers) {
        expect(p, p.did).toMatchObject({ verified: true, sources: ['did-sync'] })
      }
      expect(peers.find((p) => p.did === alice.did)).toMatchObject({ url: alice.url, aka: ['did:sync:alice'], handle: 'alice' })
    }
    const r = ok(
      await carol.spl(
        'fleet',
        'sync',
        'peers',
        'discover',
        '--method',
        'did-sync',
        '--namespace',
        'beta',
        '--directory',
        dir.url,
        '--json',
      ),
      'discover',
    )
    const found = JSON.parse(r.stdout) as { peers: { did: string; verified: boolean }[] }
    expect(found.peers.map((p) => [p.did, p.verified]).sort()).toEqual(
      [
        [alice.did, true],
        [bob.did, true],
        [carol.did, true],
      ].sort(),
    )
  })

  it('an entry whose URL answers with another DID stays unverified', async () => {
    // A DID registers bob's URL as its own: the directory stores the claim, discovery does not believe it.
    const impostor = Keypair.generate()
    const jwt = await signRegistration(impostor, { url: bob.url, namespaces: ['gamma'] })
    expect((await call('POST', `${dir.url}/directory/register`, { body: JSON.stringify({ registration: jwt }) })).status).toBe(201)
    const q = new URLSearchParams({ method: 'did-sync', namespace: 'gamma', directory: dir.url, timeout_ms: '5000' })
    const res = await carol.api.get<PeersAnswer>(`/v1/discovery/peers?${q}`)
    expect(res.peers).toHaveLength(1)
    expect(res.peers[0]).toMatchObject({ did: impostor.did, verified: false, verify_error: { code: 'MANIFEST_DID_MISMATCH' } })
  })

  it('fuzzed doors: malformed JSON, a huge body, bad JWTs, wrong types → 4xx with a code, and the daemon lives on', async () => {
    const reg = `${dir.url}/directory/register`
    const cases: [Promise<Answer>, number, string][] = [
      [call('POST', reg, { body: '{"registration": "abc' }), 400, 'INVALID_JSON'],
      [call('POST', reg, { body: '\u0000\u0001' }), 400, 'INVALID_JSON'],
      [bigPost(reg, 2 << 20), 413, 'REGISTRATION_TOO_LARGE'],
      [bigPost(`${dir.url}/directory/import`, 17 << 20), 413, 'PAYLOAD_TOO_LARGE'],
      [call('POST', reg, { body: JSON.stringify({ registration: 'a.b.c' }) }), 400, 'REGISTRATION_INVALID'],
      [call('POST', reg, { body: JSON.stringify({ registration: ['a.b.c'] }) }), 400, 'REGISTRATION_INVALID'],
      [call('POST', reg, { body: JSON.stringify({ registration: { iss: alice.did } }) }), 400, 'REGISTRATION_INVALID'],
      [call('POST', reg, { body: 'null' }), 400, 'REGISTRATION_INVALID'],
      [
        call('POST', reg, { body: 'registration=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } }),
        415,
        'UNSUPPORTED_MEDIA_TYPE',
      ],
      [call('POST', `${dir.url}/directory/import`, { body: '{"entries": {"0": "x"}}' }), 400, 'INVALID_REQUEST'],
      [call('GET', `${dir.url}/directory/namespaces/acme?limit=-4`), 400, 'INVALID_REQUEST'],
      [call('GET', `${dir.url}/directory/handle/${'x'.repeat(500)}`), 400, 'HANDLE_INVALID'],
      [
        call('DELETE', `${dir.url}/directory/${encodeURIComponent(bob.did)}`, { headers: { authorization: 'Bearer e30.e30.e30' } }),
        401,
        'DELETE_UNAUTHORIZED',
      ],
    ]
    for (const [p, status, code] of cases) expectRefused(await p, status, code)
    const health = await call('GET', `${dir.url}/health`)
    expect(health).toMatchObject({ status: 200, json: { status: 'ok', did: dir.did } })
    expect((await call('GET', `${dir.url}/directory/handle/bob`)).json).toMatchObject({ did: bob.did })
  })

  it('a delete needs the owner’s signature: another key is refused, spl directory unregister works', async () => {
    const doorOf = `${dir.url}/directory/${encodeURIComponent(carol.did)}`
    expectRefused(await call('DELETE', doorOf), 401, 'DELETE_UNAUTHORIZED')
    expectRefused(
      await call('DELETE', doorOf, { headers: { authorization: `Bearer ${await signDelete(Keypair.generate())}` } }),
      403,
      'DELETE_FORBIDDEN',
    )
    // Nor is the directory's own admin token a signature of that DID.
    expectRefused(await call('DELETE', doorOf, { headers: { authorization: `Bearer ${dir.token}` } }), 401, 'DELETE_UNAUTHORIZED')
    expect((await call('GET', `${dir.url}/directory/resolve/${carol.did}`)).status).toBe(200)
    const r = ok(await carol.spl('directory', 'unregister', '--directory', dir.url, '--json'), 'unregister')
    expect(JSON.parse(r.stdout)).toEqual({ object: 'directory_deletion', directory: dir.url, did: carol.did, deleted: true })
    expectRefused(await call('GET', `${dir.url}/directory/resolve/${carol.did}`), 404, 'DIRECTORY_ENTRY_NOT_FOUND')
    expect(dids((await call('GET', `${dir.url}/directory/namespaces/beta`)).json['entries'])).toEqual([alice.did, bob.did].sort())
    const twice = await carol.spl('directory', 'unregister', '--directory', dir.url)
    expect(twice.code).toBe(1)
    expect(twice.stderr).toContain('DIRECTORY_ENTRY_NOT_FOUND')
    // The mirror still has carol's old registration; importing it back is refused: she deleted after signing it.
    const back = ok(await alice.spl('directory', 'import', '--from', mirror.url, '--directory', dir.url, '--json'), 'import back')
    expect(JSON.parse(back.stdout)).toMatchObject({ unchanged: 2, skipped: [{ did: carol.did, code: 'REGISTRATION_STALE' }] })
    expectRefused(await call('GET', `${dir.url}/directory/resolve/${carol.did}`), 404, 'DIRECTORY_ENTRY_NOT_FOUND')
  })

  it('a daemon without [directory] enabled answers DIRECTORY_DISABLED, and the client says so', async () => {
    expectRefused(await call('GET', `${alice.url}/directory/export`), 404, 'DIRECTORY_DISABLED')
    const r = await carol.spl('directory', 'register', '--directory', alice.url)
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('DIRECTORY_DISABLED')
  })
})
