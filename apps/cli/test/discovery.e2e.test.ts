import { appendFileSync, mkdtempSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { MANIFEST_VALIDITY_MS, signManifest, type WellKnownDocument } from '@spl/discovery'
import { Keypair } from '@spl/identity'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ok, spl, TestDaemon } from '../../../test-utils/test-daemon.js'

// Issue 10: the signed manifest (`spl discover`), static discovery, and `spl fleet sync add`
// resolving a peer's URL through discovery, with real `spl` processes on loopback. mDNS,
// did:web and the directory have their own files.

/** A loopback server answering fixed JSON per path (a peer that lies, or is not spl at all). */
async function fakePeer(routes: Record<string, unknown>): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const body = routes[req.url ?? '']
    if (body === undefined) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"object":"error","code":"NOT_FOUND","message":"no"}')
      return
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body))
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return { url, close: () => new Promise((r) => server.close(() => r())) }
}

const FORGED_DID = Keypair.generate().did
let a: TestDaemon
let b: TestDaemon
let liar: Awaited<ReturnType<typeof fakePeer>>

beforeAll(async () => {
  b = await TestDaemon.start()
  const manifest = await (await fetch(`${b.url}/.well-known/syncropel`)).json()
  // A server that relays B's real manifest while its /v1/identity names someone else.
  liar = await fakePeer({ '/.well-known/syncropel': manifest, '/v1/identity': { did: FORGED_DID } })
  // A: static peers (SPEC 8): B as it is, and B's URL listed under a DID it does not have.
  const home = mkdtempSync(path.join(os.tmpdir(), 'spl-disc-'))
  ok(await spl(home, ['init']), 'spl init')
  appendFileSync(
    path.join(home, 'config.toml'),
    `\n[[sync.discovery.static]]\ndid = "${b.did}"\nurl = "${b.url}"\nhandle = "bob"\n` +
      `\n[[sync.discovery.static]]\ndid = "${FORGED_DID}"\nurl = "${b.url}"\n`,
  )
  a = await TestDaemon.start({ home })
})

afterAll(async () => {
  await a?.stop()
  await b?.stop()
  await liar?.close()
})

describe('spl discover --peer-url (SPEC 8 signed manifest)', () => {
  it('verifies a real daemon and exits 0', async () => {
    const r = ok(await spl(a.home, ['discover', '--peer-url', b.url]), 'spl discover')
    expect(r.stdout).toContain(`✓ ${b.url} is ${b.did}`)
    const j = JSON.parse(ok(await spl(a.home, ['discover', '--peer-url', b.url, '--json', '--strict']), 'discover --json').stdout)
    expect(j).toMatchObject({ object: 'manifest_check', verified: true, did: b.did, expired: false })
    expect(j.manifest.federation.sync_change_endpoint).toBe(`${b.url}/v1/sync/changes`)
  })

  it('a tampered field: exit 1, MANIFEST_SIGNATURE_INVALID', async () => {
    const real = (await (await fetch(`${b.url}/.well-known/syncropel`)).json()) as WellKnownDocument
    real.federation_manifest.federation.sync_change_endpoint = 'http://127.0.0.1:1/v1/sync/changes'
    const peer = await fakePeer({ '/.well-known/syncropel': real })
    try {
      const r = await spl(a.home, ['discover', '--peer-url', peer.url])
      expect(r.code).toBe(1)
      expect(r.stderr).toMatch(/^Error: MANIFEST_SIGNATURE_INVALID: .* Fix: /m)
    } finally {
      await peer.close()
    }
  })

  it('a DID other than the one expected: exit 1, MANIFEST_DID_MISMATCH (by --did, and by what /v1/identity answers)', async () => {
    const byFlag = await spl(a.home, ['discover', '--peer-url', b.url, '--did', a.did])
    expect(byFlag.code).toBe(1)
    expect(byFlag.stderr).toContain(`MANIFEST_DID_MISMATCH: the manifest is signed by ${b.did}, not by ${a.did}`)
    const relayed = await spl(a.home, ['discover', '--peer-url', liar.url, '--json'])
    expect(relayed.code).toBe(1)
    expect(JSON.parse(relayed.stderr)).toMatchObject({ object: 'error', code: 'MANIFEST_DID_MISMATCH' })
  })

  it('an expired manifest: a warning and exit 0, or exit 1 MANIFEST_EXPIRED with --strict', async () => {
    const old = signManifest({
      keypair: Keypair.generate(),
      version: '0.1.0',
      url: 'http://127.0.0.1:1',
      namespaces: [],
      acceptsPairRequests: 'invite',
      now: Date.now() - MANIFEST_VALIDITY_MS - 60_000,
    })
    const peer = await fakePeer({ '/.well-known/syncropel': old })
    try {
      const lax = ok(await spl(a.home, ['discover', '--peer-url', peer.url]), 'discover expired')
      expect(lax.stderr).toContain('warning: the manifest expired')
      const strict = await spl(a.home, ['discover', '--peer-url', peer.url, '--strict'])
      expect(strict.code).toBe(1)
      expect(strict.stderr).toContain('MANIFEST_EXPIRED: the manifest expired at')
    } finally {
      await peer.close()
    }
  })

  it('nothing there, or not an spl daemon: exit 1 with MANIFEST_UNREACHABLE / MANIFEST_NOT_FOUND / MANIFEST_MALFORMED', async () => {
    const down = await spl(a.home, ['discover', '--peer-url', 'http://127.0.0.1:1'])
    expect(down.code).toBe(1)
    expect(down.stderr).toContain('MANIFEST_UNREACHABLE')
    const other = await fakePeer({ '/.well-known/syncropel': { object: 'something_else' } })
    try {
      expect((await spl(a.home, ['discover', '--peer-url', `${other.url}/nothing-here`])).stderr).toContain('MANIFEST_NOT_FOUND')
      expect((await spl(a.home, ['discover', '--peer-url', other.url])).stderr).toContain('MANIFEST_MALFORMED')
    } finally {
      await other.close()
    }
  })
})

describe('static discovery and fleet sync add without --peer-url', () => {
  it('lists static peers merged by DID, verified only where the manifest proves the DID, and ends with the add line', async () => {
    const r = ok(await spl(a.home, ['fleet', 'sync', 'peers', 'discover', '--method', 'static']), 'peers discover')
    const lines = r.stdout.trim().split('\n')
    expect(lines[0]).toBe('static (2)')
    expect(r.stdout).toContain(`✓ bob  ${b.did}  ${b.url}`)
    expect(r.stdout).toContain(`? ${FORGED_DID}  ${b.url}  not verified: MANIFEST_DID_MISMATCH`)
    expect(lines.at(-1)).toBe(`  spl fleet sync add ${b.did} <THREAD_ID>`)
    const j = JSON.parse(ok(await spl(a.home, ['fleet', 'sync', 'peers', 'discover', '--json']), 'peers discover --json').stdout)
    expect(j.peers.map((p: { did: string; verified: boolean }) => [p.did, p.verified])).toEqual([
      [b.did, true],
      [FORGED_DID, false],
    ])
  })

  it('refuses an unverified sighting and creates no pair', async () => {
    const r = await spl(a.home, ['fleet', 'sync', 'add', FORGED_DID, 'th_disc'])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/^Error: PEER_UNVERIFIED: .* Fix: check it with spl discover --peer-url/m)
    expect((await a.api.get<{ data: unknown[] }>('/v1/sync/pairs?all=true')).data).toEqual([])
    const none = await spl(a.home, ['fleet', 'sync', 'add', Keypair.generate().did, 'th_disc'])
    expect(none.code).toBe(1)
    expect(none.stderr).toContain('PEER_URL_REQUIRED')
  })

  it('resolves a verified peer, says which source it used, and records flow', async () => {
    const r = ok(await spl(a.home, ['fleet', 'sync', 'add', b.did, 'th_disc']), 'fleet sync add')
    expect(r.stderr).toContain(`to ${b.url} via static (manifest verified)`)
    const id = await b.emit('th_disc', 'found, then pulled')
    for (let i = 0; i < 100 && !(await a.threadRecordIds('th_disc')).includes(id); i++) await sleep(100)
    expect(await a.threadRecordIds('th_disc')).toContain(id)
    const j = JSON.parse(ok(await spl(a.home, ['fleet', 'sync', 'peers', 'discover', '--method', 'static', '--json']), 'discover').stdout)
    expect(j.peers.find((p: { did: string }) => p.did === b.did)).toMatchObject({ paired: true })
  })
})
