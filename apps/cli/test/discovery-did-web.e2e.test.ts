import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import https from 'node:https'
import os from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { decodeDidKey } from '@spl/identity'
import { SplClient } from '@spl/transport/client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createNetNs, type NetNs } from '../../../test-utils/netns.js'
import { ok, type RunResult, SPL_BIN, spl, TestDaemon } from '../../../test-utils/test-daemon.js'

// did:web over real HTTPS (SPEC 8, issue 10). The resolving daemon A runs inside a network
// namespace whose /etc/netns/<ns>/hosts maps alice.dev (and friends) to the root end of the veth
// pair; `ip netns exec` bind-mounts that file over /etc/hosts for every process it starts, so
// A, the CLI talking to it and the independent resolvers all see it. A TLS server in this
// process (root namespace, port 443 on the veth address) serves the documents `spl identity
// publish-did-web` of a real daemon B wrote, with a certificate of a test CA made by openssl
// and trusted through NODE_EXTRA_CA_CERTS. B itself listens on the veth address too. Nothing
// leaves this machine: the namespace has no route but the veth /30.

const INTEROP = fileURLToPath(new URL('./did-interop.mjs', import.meta.url))
const PROBE = fileURLToPath(new URL('./did-web-probe.mjs', import.meta.url))

let ns: NetNs
let dir: string
let caFile: string
let tls: https.Server
let peer: TestDaemon
let homeA: string
let pidA = 0
/** A's admin API, reached over the veth pair with its admin token (faster than a CLI process per query). */
let apiA: SplClient

/** What the TLS server serves (path → status and body) and every GET it answered. */
const served = new Map<string, { status: number; body: string }>()
const requests: { host: string; path: string }[] = []
const docGets = (p = '/.well-known/did.json', host = 'alice.dev') => requests.filter((r) => r.path === p && r.host === host).length

/** Runs `spl …` inside the namespace on A's home (NODE_EXTRA_CA_CERTS = the test CA). */
function nsSpl(args: string[]): Promise<RunResult> {
  return ns.exec('env', [`SYNCROPEL_HOME=${homeA}`, `NODE_EXTRA_CA_CERTS=${caFile}`, 'SPL_MDNS=off', process.execPath, SPL_BIN, ...args], {
    timeoutMs: 60_000,
  })
}

interface DiscoveredOut {
  did: string
  url: string
  aka?: string[]
  sources: string[]
  verified: boolean
  verify_error?: { code: string; message: string }
}
interface DiscoverOut {
  peers: DiscoveredOut[]
  failures: { method: string; code: string; message: string; fix?: string }[]
}

/** `spl fleet sync peers discover --method did-web --domain D --json` from inside the namespace. */
async function discoverCli(domain?: string): Promise<DiscoverOut> {
  const r = ok(
    await nsSpl(['fleet', 'sync', 'peers', 'discover', '--method', 'did-web', ...(domain ? ['--domain', domain] : []), '--json']),
    'discover',
  )
  return JSON.parse(r.stdout) as DiscoverOut
}

/** The same query through A's admin API: GET /v1/discovery/peers?method=did-web&domain=D. */
function discover(domain?: string): Promise<DiscoverOut> {
  const q = new URLSearchParams({ method: 'did-web', ...(domain ? { domain } : {}) })
  return apiA.get<DiscoverOut>(`/v1/discovery/peers?${q}`)
}

interface ProbeOut {
  ok: boolean
  didKey?: string
  fromCache?: boolean
  fetchedAt?: number
  fetches?: number
  code?: string
  message?: string
}

/** did-web-probe.mjs inside the namespace: @spl/discovery's resolver with its HTTPS fetch, on a clock the test moves. */
function startProbe() {
  const child = ns.spawn('env', [`NODE_EXTRA_CA_CERTS=${caFile}`, process.execPath, PROBE], { stdio: ['pipe', 'pipe', 'pipe'] })
  const waiting: { resolve: (v: ProbeOut) => void; reject: (e: Error) => void }[] = []
  let stderr = ''
  child.stderr?.on('data', (d) => (stderr += d))
  createInterface({ input: child.stdout! }).on('line', (l) => waiting.shift()?.resolve(JSON.parse(l) as ProbeOut))
  child.on('exit', (code) => {
    for (const w of waiting.splice(0)) w.reject(new Error(`the probe exited (${code}): ${stderr}`))
  })
  return {
    send: (cmd: string) =>
      new Promise<ProbeOut>((resolve, reject) => {
        waiting.push({ resolve, reject })
        child.stdin?.write(`${cmd}\n`)
      }),
    stop: () => child.kill(),
  }
}

/** `spl identity publish-did-web` on B's home; the document it wrote. */
async function publish(domain: string): Promise<string> {
  const file = path.join(dir, `did-${requests.length}-${Math.random().toString(36).slice(2)}.json`)
  ok(await peer.spl('identity', 'publish-did-web', '--domain', domain, '--endpoint', peer.url, '--output', file), 'publish-did-web')
  return readFileSync(file, 'utf8')
}

/** A root-namespace daemon reachable from the namespace (listening on the veth address). */
function startPeer(home?: string, port?: number): Promise<TestDaemon> {
  return TestDaemon.start({ host: ns.hostAddr, ...(home ? { home } : {}), ...(port ? { port } : {}) })
}

/** B gets a new key (spl init --force) and comes back on the same URL. */
async function rotatePeer(): Promise<string> {
  const old = peer.did
  const port = Number(new URL(peer.url).port)
  await peer.stop()
  ok(await spl(peer.home, ['init', '--force']), 'init --force')
  peer = await startPeer(peer.home, port)
  expect(peer.did).not.toBe(old)
  return old
}

function openssl(args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] })
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'spl-didweb-e2e-'))
  ns = createNetNs()
  const etc = `/etc/netns/${ns.name}`
  mkdirSync(etc, { recursive: true })
  // bob.dev reaches the TLS server too, but its certificate does not name it; down.dev has nothing on 443.
  writeFileSync(
    path.join(etc, 'hosts'),
    `127.0.0.1 localhost\n::1 localhost\n${ns.hostAddr} alice.dev\n${ns.hostAddr} bob.dev\n127.0.0.1 down.dev\n`,
  )
  // A test CA and a certificate for alice.dev signed by it.
  openssl([
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
    '-days',
    '2',
    '-subj',
    '/CN=spl test CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ])
  openssl([
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    'srv.key',
    '-out',
    'srv.csr',
    '-subj',
    '/CN=alice.dev',
  ])
  writeFileSync(path.join(dir, 'srv.ext'), 'subjectAltName=DNS:alice.dev\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n')
  openssl([
    'x509',
    '-req',
    '-in',
    'srv.csr',
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'srv.crt',
    '-days',
    '2',
    '-extfile',
    'srv.ext',
  ])
  caFile = path.join(dir, 'ca.crt')
  tls = https.createServer({ key: readFileSync(path.join(dir, 'srv.key')), cert: readFileSync(path.join(dir, 'srv.crt')) }, (req, res) => {
    const p = new URL(req.url ?? '/', 'https://x').pathname
    requests.push({ host: (req.headers.host ?? '').replace(/:443$/, ''), path: p })
    const answer = served.get(p) ?? { status: 404, body: '{"error":"not found"}' }
    res.writeHead(answer.status, { 'content-type': 'application/json' }).end(answer.body)
  })
  await new Promise<void>((resolve, reject) => {
    tls.once('error', reject)
    tls.listen(443, ns.hostAddr, resolve)
  })
  peer = await startPeer()
  // A: initialised here (files only), run inside the namespace.
  homeA = path.join(dir, 'a')
  ok(await spl(homeA, ['init']), 'spl init A')
  // On every address of the namespace (its loopback and its veth end, nothing else).
  ok(await nsSpl(['serve', '--daemon', '--port', '0', '--host', '0.0.0.0']), 'spl serve A in the namespace')
  const info = JSON.parse(readFileSync(path.join(homeA, 'run', 'daemon.json'), 'utf8'))
  pidA = info.pid
  apiA = new SplClient(`http://${ns.nsAddr}:${new URL(info.url).port}`, readFileSync(path.join(homeA, 'admin.token'), 'utf8').trim())
}, 60_000)

afterAll(async () => {
  if (homeA) await nsSpl(['serve', '--stop']).catch(() => undefined)
  try {
    if (pidA) process.kill(pidA, 'SIGKILL')
  } catch {
    // already gone
  }
  await peer?.[Symbol.asyncDispose]()
  if (tls) {
    tls.closeAllConnections()
    await new Promise((r) => tls.close(r))
  }
  if (ns) {
    await ns.remove()
    rmSync(`/etc/netns/${ns.name}`, { recursive: true, force: true })
  }
  if (dir) rmSync(dir, { recursive: true, force: true })
}, 60_000)

// Each step runs a few real `spl` processes (about a second each).
describe('did:web discovery over real HTTPS', { timeout: 60_000 }, () => {
  it('spl identity publish-did-web writes the W3C document of the home key, and says where it goes', async () => {
    const r = ok(await peer.spl('identity', 'publish-did-web', '--domain', 'alice.dev', '--endpoint', peer.url, '--json'), 'publish --json')
    const out = JSON.parse(r.stdout)
    expect(out).toMatchObject({
      object: 'did_web_document',
      did: 'did:web:alice.dev',
      did_key: peer.did,
      upload_url: 'https://alice.dev/.well-known/did.json',
      endpoint: peer.url,
      config_line: 'web_domain = "alice.dev"',
    })
    expect(out.document.verificationMethod[0]).toEqual({
      id: 'did:web:alice.dev#key-1',
      type: 'Ed25519VerificationKey2020',
      controller: 'did:web:alice.dev',
      publicKeyMultibase: peer.did.slice('did:key:'.length),
    })
    expect(out.document.service).toEqual([{ id: '#spl', type: 'SyncropelDaemon', serviceEndpoint: peer.url }])
    const text = ok(await peer.spl('identity', 'publish-did-web', '--domain', 'alice.dev', '--output', path.join(dir, 'x.json')), 'publish')
    expect(text.stdout).toContain('https://alice.dev/.well-known/did.json')
    expect(text.stdout).toContain('web_domain = "alice.dev"')
  })

  it('resolves did:web:alice.dev over HTTPS from the namespace and verifies the daemon it names', async () => {
    served.set('/.well-known/did.json', { status: 200, body: await publish('alice.dev') })
    const res = await discoverCli('alice.dev')
    expect(res.failures).toEqual([])
    expect(res.peers).toHaveLength(1)
    expect(res.peers[0]).toMatchObject({ did: peer.did, url: peer.url, aka: ['did:web:alice.dev'], sources: ['did-web'], verified: true })
    expect(docGets()).toBe(1)
    // The text form lists it and ends with the command that pairs.
    const text = ok(await nsSpl(['fleet', 'sync', 'peers', 'discover', '--method', 'did-web', '--domain', 'alice.dev']), 'discover text')
    expect(text.stdout).toContain(peer.did)
    expect(text.stdout).toContain(`spl fleet sync add ${peer.did}`)
  })

  it('answers from the cache; spl fleet sync peers flush makes the next query fetch again', async () => {
    const before = docGets()
    expect((await discover('did:web:alice.dev')).peers[0]).toMatchObject({ did: peer.did, verified: true })
    expect(docGets()).toBe(before)
    const flushed = ok(await nsSpl(['fleet', 'sync', 'peers', 'flush', '--json']), 'flush')
    expect(JSON.parse(flushed.stdout)).toMatchObject({ object: 'discovery_flush', flushed: true })
    expect((await discover('alice.dev')).peers[0]).toMatchObject({ did: peer.did, verified: true })
    expect(docGets()).toBe(before + 1)
  })

  it('tells a path form, "not found", a network error, a TLS failure and a malformed document apart', async () => {
    served.set('/u/bob/did.json', { status: 200, body: await publish('did:web:alice.dev:u:bob') })
    served.set('/u/garbage/did.json', { status: 200, body: '<html>not json</html>' })
    const pathForm = await discover('did:web:alice.dev:u:bob')
    expect(pathForm.peers[0]).toMatchObject({ did: peer.did, aka: ['did:web:alice.dev:u:bob'], verified: true })
    expect(docGets('/u/bob/did.json')).toBe(1)
    const failure = async (domain: string | undefined) => {
      const r = await discover(domain)
      expect(r.peers).toEqual([])
      expect(r.failures).toHaveLength(1)
      return r.failures[0]!
    }
    expect(await failure('did:web:alice.dev:u:nobody')).toMatchObject({ method: 'did-web', code: 'DID_NOT_FOUND' })
    expect(docGets('/u/nobody/did.json')).toBe(1)
    expect(await failure('down.dev')).toMatchObject({ code: 'DID_RESOLVE_FAILED', message: expect.stringContaining('CONNECT_REFUSED') })
    const bob = await failure('bob.dev')
    expect(bob.code).toBe('DID_RESOLVE_FAILED')
    // The certificate names alice.dev only: bob.dev was refused before any request was made.
    expect(docGets('/.well-known/did.json', 'bob.dev')).toBe(0)
    expect(await failure('did:web:alice.dev:u:garbage')).toMatchObject({ code: 'DID_DOCUMENT_INVALID' })
    expect(await failure('https://alice.dev')).toMatchObject({ code: 'DID_WEB_INVALID', fix: expect.stringContaining('did:web') })
    expect(await failure(undefined)).toMatchObject({ code: 'DID_WEB_DOMAIN_REQUIRED', fix: expect.stringContaining('--domain') })
  })

  it('a rotated key is picked up after one signature failure (one re-fetch of the document)', async () => {
    // A's cache holds alice.dev's document naming B's key (from the test before).
    const before = docGets()
    const old = await rotatePeer()
    served.set('/.well-known/did.json', { status: 200, body: await publish('alice.dev') })
    const res = await discoverCli('alice.dev')
    expect(res.peers).toHaveLength(1)
    expect(res.peers[0]).toMatchObject({ did: peer.did, url: peer.url, aka: ['did:web:alice.dev'], verified: true })
    expect(res.peers.some((p) => p.did === old)).toBe(false)
    expect(docGets()).toBe(before + 1)
    // The new document is the cached one now.
    expect((await discover('alice.dev')).peers[0]).toMatchObject({ did: peer.did, verified: true })
    expect(docGets()).toBe(before + 1)
  })

  it('a document that still names the old key is fetched again once and the peer stays unverified', async () => {
    const stale = peer.did
    const before = docGets()
    await rotatePeer()
    // The domain still serves the document of the key B just dropped.
    const res = await discover('alice.dev')
    expect(res.peers).toHaveLength(1)
    expect(res.peers[0]).toMatchObject({ did: stale, verified: false, verify_error: { code: 'MANIFEST_DID_MISMATCH' } })
    expect(docGets()).toBe(before + 1)
    // Uploading the new document and flushing gets it verified.
    served.set('/.well-known/did.json', { status: 200, body: await publish('alice.dev') })
    ok(await nsSpl(['fleet', 'sync', 'peers', 'flush']), 'flush')
    expect((await discover('alice.dev')).peers[0]).toMatchObject({ did: peer.did, verified: true })
  })

  it('the cache over HTTPS on a moved clock: fresh 1 h, then stale and refreshed in the background; dropped on "not found"; kept through a network error until it expires after a day', async () => {
    const HOUR = 3600 * 1000
    const probe = startProbe()
    const tls8443 = https.createServer(
      { key: readFileSync(path.join(dir, 'srv.key')), cert: readFileSync(path.join(dir, 'srv.crt')) },
      (req, res) => {
        requests.push({ host: req.headers.host ?? '', path: req.url ?? '' })
        res.writeHead(200, { 'content-type': 'application/json' }).end(doc8443)
      },
    )
    let doc8443 = ''
    try {
      const homeC = path.join(dir, 'c')
      ok(await spl(homeC, ['init']), 'spl init C')
      const fileC = path.join(dir, 'clock-c.json')
      ok(
        await spl(homeC, [
          'identity',
          'publish-did-web',
          '--domain',
          'did:web:alice.dev:u:clock',
          '--endpoint',
          'http://192.0.2.1:9100',
          '--output',
          fileC,
        ]),
        'publish C',
      )
      const didC = JSON.parse(readFileSync(fileC, 'utf8')).alsoKnownAs[0] as string
      const gets = () => docGets('/u/clock/did.json')
      served.set('/u/clock/did.json', { status: 200, body: await publish('did:web:alice.dev:u:clock') })
      const did = 'did:web:alice.dev:u:clock'

      expect(await probe.send(`resolve ${did}`)).toMatchObject({ ok: true, didKey: peer.did, fromCache: false })
      expect(gets()).toBe(1)
      await probe.send(`advance ${HOUR - 60_000}`)
      expect(await probe.send(`resolve ${did}`)).toMatchObject({ ok: true, didKey: peer.did, fromCache: true })
      expect(gets()).toBe(1)
      // An hour old: stale. The old document is answered at once and one fetch refreshes it.
      served.set('/u/clock/did.json', { status: 200, body: readFileSync(fileC, 'utf8') })
      await probe.send('advance 60000')
      expect(await probe.send(`resolve ${did}`)).toMatchObject({ ok: true, didKey: peer.did, fromCache: true })
      await probe.send('settle')
      expect(gets()).toBe(2)
      expect(await probe.send(`resolve ${did}`)).toMatchObject({ ok: true, didKey: didC, fromCache: true })
      expect(gets()).toBe(2)
      // The domain withdraws the document: the refresh's 404 drops the stale copy.
      served.delete('/u/clock/did.json')
      await probe.send(`advance ${HOUR}`)
      expect(await probe.send(`resolve ${did}`)).toMatchObject({ ok: true, didKey: didC, fromCache: true })
      await probe.send('settle')
      expect(await probe.send(`resolve ${did}`)).toMatchObject({ ok: false, code: 'DID_NOT_FOUND' })
      expect(gets()).toBe(4)

      // alice.dev:8443 answers once, then nothing listens there any more.
      doc8443 = await publish('alice.dev:8443')
      await new Promise<void>((resolve) => tls8443.listen(8443, ns.hostAddr, resolve))
      expect(await probe.send('resolve alice.dev:8443')).toMatchObject({ ok: true, didKey: peer.did, fromCache: false })
      const fetched = (await probe.send('settle')).fetches!
      tls8443.closeAllConnections()
      await new Promise((r) => tls8443.close(r))
      await probe.send(`advance ${2 * HOUR}`)
      expect(await probe.send('resolve alice.dev:8443')).toMatchObject({ ok: true, didKey: peer.did, fromCache: true })
      // The background refresh was tried and failed on the network: the stale copy stays.
      expect((await probe.send('settle')).fetches).toBe(fetched + 1)
      expect(await probe.send('resolve alice.dev:8443')).toMatchObject({ ok: true, didKey: peer.did, fromCache: true })
      await probe.send('settle')
      await probe.send(`advance ${22 * HOUR}`)
      const expired = await probe.send('resolve alice.dev:8443')
      expect(expired).toMatchObject({ ok: false, code: 'DID_RESOLVE_FAILED' })
      expect(expired.message).toContain('CONNECT_REFUSED')
      expect(requests.filter((r) => r.host === 'alice.dev:8443')).toHaveLength(1)
    } finally {
      probe.stop()
      if (tls8443.listening) {
        tls8443.closeAllConnections()
        tls8443.close()
      }
    }
  })

  it('our did:web document and our did:key resolve with the independent did-resolver, web-did-resolver and key-did-resolver', async () => {
    const r = await ns.exec('env', [`NODE_EXTRA_CA_CERTS=${caFile}`, process.execPath, INTEROP, 'did:web:alice.dev', peer.did])
    expect(r.code, r.stderr).toBe(0)
    const out = JSON.parse(r.stdout)
    const web = out['did:web:alice.dev']
    expect(web.didResolutionMetadata).toEqual({ contentType: 'application/did+ld+json' })
    expect(web.didDocument.id).toBe('did:web:alice.dev')
    const key = out[peer.did]
    expect(key.didResolutionMetadata.error).toBeUndefined()
    expect(key.didDocument.id).toBe(peer.did)
    // The same Ed25519 key: the fragment key-did-resolver names, and its base58 bytes, are our publicKeyMultibase.
    const multibase: string = web.didDocument.verificationMethod[0].publicKeyMultibase
    const vm = key.didDocument.verificationMethod[0]
    expect(vm.id).toBe(`${peer.did}#${multibase}`)
    expect(Buffer.from(base58(vm.publicKeyBase58)).toString('hex')).toBe(Buffer.from(decodeDidKey(`did:key:${multibase}`)).toString('hex'))
    expect(web.didDocument.service[0]).toEqual({ id: '#spl', type: 'SyncropelDaemon', serviceEndpoint: peer.url })
    // The independent resolver really went to https://alice.dev.
    expect(requests.at(-1)).toEqual({ host: 'alice.dev', path: '/.well-known/did.json' })
  })
})

/** base58btc (Bitcoin alphabet) to bytes. */
function base58(text: string): Uint8Array {
  const alphabet = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'
  let n = 0n
  for (const c of text) {
    const i = alphabet.indexOf(c)
    if (i < 0) throw new Error(`not base58: ${c}`)
    n = n * 58n + BigInt(i)
  }
  const bytes: number[] = []
  while (n > 0n) {
    bytes.unshift(Number(n & 0xffn))
    n >>= 8n
  }
  for (const c of text) {
    if (c !== '1') break
    bytes.unshift(0)
  }
  return Uint8Array.from(bytes)
}
