import type { ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createNetNs, createNetNsPair, type NetNsPair, type NsRunner, nsFetch } from '../../../test-utils/netns.js'
import { ok, SPL_BIN, spl } from '../../../test-utils/test-daemon.js'

// SPEC 8 mDNS with real `spl` daemons, each inside its own network namespace of a veth pair: the
// only place these tests send multicast. Everything in the root namespace keeps SPL_MDNS=off.

const PORT = 9100
const TEST_INTERVAL_MS = 1000

interface NsDaemon {
  ns: NsRunner
  home: string
  did: string
  child: ChildProcess
  /** Resolves once the process exited. */
  exited: Promise<void>
  log: () => string
}

const homes: string[] = []
const children = new Set<ChildProcess>()

function newHome(): string {
  const home = mkdtempSync(path.join(os.tmpdir(), 'spl-mdns-'))
  homes.push(home)
  return home
}

/** `spl init` in the root namespace (no network), then the [sync.discovery] keys of the test. */
async function initHome(
  options: { handle?: string; broadcast?: boolean; intervalMs?: number; listen?: boolean } = {},
): Promise<{ home: string; did: string }> {
  const home = newHome()
  ok(await spl(home, ['init', ...(options.handle ? ['--handle', options.handle] : [])]), 'spl init')
  const file = path.join(home, 'config.toml')
  let text = readFileSync(file, 'utf8')
  const set = (key: string, value: string) => {
    const re = new RegExp(`^${key} = .*$`, 'm')
    text = re.test(text)
      ? text.replace(re, `${key} = ${value}`)
      : text.replace(/^\[sync\.discovery\]$/m, `[sync.discovery]\n${key} = ${value}`)
  }
  expect(text).toMatch(/^\[sync\.discovery\]$/m)
  if (options.broadcast !== undefined) set('mdns_broadcast', String(options.broadcast))
  if (options.listen !== undefined) set('mdns_listen', String(options.listen))
  if (options.intervalMs !== undefined) set('mdns_interval_ms', String(options.intervalMs))
  writeFileSync(file, text)
  const did = /did:key:z6Mk[1-9A-HJ-NP-Za-km-z]+/.exec(text)![0]
  return { home, did }
}

/** `spl serve --host 0.0.0.0` in the foreground inside `ns`, mDNS on (SPL_MDNS=on only here). */
async function serveInNs(ns: NsRunner, home: string, did: string, options: { port?: number; mdns?: 'on' | 'off' } = {}): Promise<NsDaemon> {
  const port = options.port ?? PORT
  const child = ns.spawn(process.execPath, [SPL_BIN, 'serve', '--host', '0.0.0.0', '--port', String(port)], {
    env: { ...process.env, SYNCROPEL_HOME: home, SPL_MDNS: options.mdns ?? 'on', SPL_LOG_LEVEL: 'debug' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  children.add(child)
  let out = ''
  child.stdout?.on('data', (d) => (out += d))
  child.stderr?.on('data', (d) => (out += d))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  void exited.then(() => children.delete(child))
  const daemonLog = path.join(home, 'logs', 'daemon.log')
  const log = () => out + (existsSync(daemonLog) ? readFileSync(daemonLog, 'utf8') : '')
  for (let i = 0; ; i++) {
    const r = await ns.exec('curl', ['-sS', '--max-time', '2', '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${port}/health`])
    if (r.stdout === '200') break
    if (child.exitCode !== null || i > 200) throw new Error(`spl serve in ${ns.name} did not come up:\n${log()}`)
    await sleep(50)
  }
  return { ns, home, did, child, exited, log }
}

/** `spl …` inside the namespace (the CLI reaches its daemon at 127.0.0.1 there). */
function splIn(ns: NsRunner, home: string, args: string[]) {
  return ns.exec('env', [`SYNCROPEL_HOME=${home}`, 'SPL_MDNS=off', process.execPath, SPL_BIN, ...args], { timeoutMs: 60_000 })
}

interface PeerOut {
  did: string
  url: string
  handle?: string
  verified: boolean
  verify_error?: { code: string }
  sources: string[]
  paired: boolean
}

async function discoverMdns(d: NsDaemon, timeoutMs: number): Promise<PeerOut[]> {
  const r = await splIn(d.ns, d.home, ['fleet', 'sync', 'peers', 'discover', '--method', 'mdns', '--timeout', String(timeoutMs), '--json'])
  if (r.code !== 0) throw new Error(`discover exited ${r.code}: ${r.stdout}${r.stderr}`)
  return (JSON.parse(r.stdout) as { peers: PeerOut[] }).peers
}

/** The roster as GET /v1/discovery/mdns shows it (no query sent). */
async function roster(d: NsDaemon): Promise<PeerOut[]> {
  const r = await nsFetch(d.ns, `http://127.0.0.1:${PORT}/v1/discovery/mdns`)
  expect(r.status, r.body).toBe(200)
  return (JSON.parse(r.body) as { peers: PeerOut[] }).peers
}

/** Polls `check` (a bounded number of times, `everyMs` apart) until it returns true. */
async function until(what: string, check: () => Promise<boolean>, attempts = 100, everyMs = 100): Promise<void> {
  for (let i = 0; i < attempts; i++) {
    if (await check()) return
    await sleep(everyMs)
  }
  throw new Error(`still not true after ${attempts} tries: ${what}`)
}

async function stop(d: NsDaemon, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill(signal)
  await d.exited
}

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL')
  await sleep(50)
  for (const h of homes) rmSync(h, { recursive: true, force: true })
})

describe('mDNS between two namespaces (SPEC 8)', { timeout: 60_000 }, () => {
  let pair: NetNsPair
  let alice: NsDaemon
  let bob: NsDaemon

  beforeAll(async () => {
    pair = createNetNsPair()
    // Alice announces with the default interval (30 s): whatever bob learns quickly came from a
    // query answer or a goodbye, not from her periodic announcements.
    const a = await initHome({ handle: 'alice', broadcast: true })
    const b = await initHome({ handle: 'bob' })
    alice = await serveInNs(pair.a, a.home, a.did)
    bob = await serveInNs(pair.b, b.home, b.did)
  }, 60_000)

  afterAll(async () => {
    for (const d of [alice, bob]) if (d) await stop(d, 'SIGKILL')
    await pair?.remove()
  }, 60_000)

  it('a broadcaster is listed, verified, by `spl fleet sync peers discover --method mdns --timeout 1000`', async () => {
    const peers = await discoverMdns(bob, 1000)
    expect(peers).toEqual([
      expect.objectContaining({
        did: alice.did,
        url: `http://${pair.a.addr}:${PORT}`,
        handle: 'alice',
        verified: true,
        sources: ['mdns'],
        paired: false,
      }),
    ])
    // Bob only listens: alice's roster does not have him.
    expect(await roster(alice)).toEqual([])
    // The human form ends with the add line for the verified peer.
    const text = await splIn(bob.ns, bob.home, ['fleet', 'sync', 'peers', 'discover', '--method', 'mdns', '--timeout', '1000'])
    expect(text.stdout).toContain(`spl fleet sync add ${alice.did} <THREAD_ID>`)
  })

  it('GET /v1/discovery/mdns shows the roster with the listener state, without sending a query', async () => {
    const r = await nsFetch(bob.ns, `http://127.0.0.1:${PORT}/v1/discovery/mdns`)
    const body = JSON.parse(r.body) as { listen: boolean; broadcast: boolean; interval_ms: number; peers: PeerOut[] }
    expect(body).toMatchObject({ listen: true, broadcast: false, interval_ms: 30_000 })
    expect(body.peers.map((p) => [p.did, p.verified])).toEqual([[alice.did, true]])
    // From the other namespace (not loopback, no token) the roster is an admin door.
    expect((await nsFetch(alice.ns, `http://${pair.b.addr}:${PORT}/v1/discovery/mdns`)).status).toBe(401)
  })

  it('stopping the broadcaster removes the entry at once (goodbye), long before its 75 s TTL', async () => {
    await stop(alice, 'SIGTERM')
    expect(alice.log()).toMatch(/mdns: announcing alice\._syncropel\._tcp\.local/)
    await until('bob dropped alice', async () => (await roster(bob)).length === 0, 30)
    expect(bob.log()).toContain('alice._syncropel._tcp.local said goodbye')
  })

  it('a SIGKILLed broadcaster expires after two missed announcements', async () => {
    const c = await initHome({ handle: 'carol', broadcast: true, intervalMs: TEST_INTERVAL_MS })
    const carol = await serveInNs(pair.a, c.home, c.did)
    await until('bob sees carol', async () => (await roster(bob)).some((p) => p.did === carol.did))
    await stop(carol, 'SIGKILL')
    // No goodbye: still listed right after the kill (its TTL is 3 s) …
    expect((await roster(bob)).map((p) => p.did)).toEqual([carol.did])
    // … and gone once two announcements (and half an interval) went missing.
    await until('carol expired', async () => (await roster(bob)).length === 0)
    expect(bob.log()).toContain('carol._syncropel._tcp.local expired')
    expect(bob.log()).not.toContain('carol._syncropel._tcp.local said goodbye')
  })
})

/** A private system bus and avahi-daemon inside `ns` (avahi-browse/-publish talk to it over D-Bus). */
async function startAvahi(ns: NsRunner, ifname: string): Promise<{ env: string[]; stop: () => Promise<void> }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'spl-avahi-'))
  homes.push(dir)
  const bus = `unix:path=${dir}/bus`
  writeFileSync(
    path.join(dir, 'dbus.conf'),
    `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>system</type><listen>${bus}</listen><auth>EXTERNAL</auth>
<policy context="default"><allow user="*"/><allow own="*"/><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/></policy></busconfig>\n`,
  )
  writeFileSync(
    path.join(dir, 'avahi.conf'),
    `[server]\nuse-ipv4=yes\nuse-ipv6=no\nenable-dbus=yes\nallow-interfaces=${ifname}\nhost-name=avahi-${ifname}\n[wide-area]\nenable-wide-area=no\n[publish]\npublish-hinfo=no\npublish-workstation=no\n`,
  )
  const dbus = ns.spawn('dbus-daemon', ['--nofork', `--config-file=${dir}/dbus.conf`], { stdio: 'ignore' })
  children.add(dbus)
  await until('the private bus listens', async () => existsSync(`${dir}/bus`), 100, 50)
  // `ip netns exec` gives a private mount namespace: a tmpfs /run there keeps avahi's pid file off the host.
  const avahi = ns.spawn(
    'sh',
    [
      '-c',
      `mount -t tmpfs none /run && mkdir -p /run/avahi-daemon && exec avahi-daemon --no-drop-root --no-chroot --no-rlimits -f ${dir}/avahi.conf`,
    ],
    { env: { ...process.env, DBUS_SYSTEM_BUS_ADDRESS: bus }, stdio: ['ignore', 'pipe', 'pipe'] },
  )
  children.add(avahi)
  let log = ''
  avahi.stdout?.on('data', (d) => (log += d))
  avahi.stderr?.on('data', (d) => (log += d))
  await until('avahi-daemon started', async () => {
    if (avahi.exitCode !== null) throw new Error(`avahi-daemon exited ${avahi.exitCode}:\n${log}`)
    return log.includes('Server startup complete')
  })
  return {
    env: [`DBUS_SYSTEM_BUS_ADDRESS=${bus}`],
    stop: async () => {
      for (const c of [avahi, dbus]) {
        c.kill('SIGTERM')
        children.delete(c)
      }
    },
  }
}

describe('interop with avahi, an independent mDNS implementation', { timeout: 60_000 }, () => {
  let pair: NetNsPair
  let avahi: { env: string[]; stop: () => Promise<void> }
  let dora: NsDaemon

  beforeAll(async () => {
    pair = createNetNsPair()
    avahi = await startAvahi(pair.b, pair.b.ifname)
    const d = await initHome({ handle: 'dora', broadcast: true })
    dora = await serveInNs(pair.a, d.home, d.did)
  }, 60_000)

  afterAll(async () => {
    if (dora) await stop(dora, 'SIGKILL')
    await avahi?.stop()
    await pair?.remove()
  }, 60_000)

  it('avahi-browse -rpt _syncropel._tcp resolves our instance with its TXT did', async () => {
    let line: string | undefined
    await until(
      'avahi-browse lists dora',
      async () => {
        const r = await pair.b.exec('env', [...avahi.env, 'avahi-browse', '-rpt', '_syncropel._tcp'])
        line = r.stdout.split('\n').find((l) => l.startsWith('=') && l.includes(';dora;'))
        return line !== undefined
      },
      20,
      200,
    )
    // =;iface;IPv4;name;type;domain;host;address;port;txt
    const f = line!.split(';')
    expect(f.slice(3, 6)).toEqual(['dora', '_syncropel._tcp', 'local'])
    expect(f[7]).toBe(pair.a.addr)
    expect(f[8]).toBe(String(PORT))
    expect(f[9]).toContain(`"did=${dora.did}"`)
    expect(f[9]).toContain('"v=1"')
    expect(f[9]).toContain('"handle=dora"')
    expect(f[9]).toContain('"path=/"')
  })

  it('our listener sees a service avahi-publish-service announces, unverified (nothing answers there)', async () => {
    const someone = await initHome()
    const pub = pair.b.spawn(
      'env',
      [
        ...avahi.env,
        'avahi-publish-service',
        '-s',
        'from-avahi',
        '_syncropel._tcp',
        '9400',
        `did=${someone.did}`,
        'ns=default',
        'v=1',
        'path=/',
      ],
      {
        stdio: 'ignore',
      },
    )
    children.add(pub)
    try {
      await until('dora lists the avahi service', async () => (await roster(dora)).some((p) => p.did === someone.did))
      const entry = (await roster(dora)).find((p) => p.did === someone.did)!
      expect(entry).toMatchObject({ url: `http://${pair.b.addr}:9400`, verified: false })
    } finally {
      pub.kill('SIGTERM')
      children.delete(pub)
    }
    // avahi-publish-service withdrew it on exit: avahi said goodbye.
    await until('the avahi service is gone', async () => !(await roster(dora)).some((p) => p.did === someone.did), 50)
  })

  it('a forged announcement (a real DID in TXT, the attacker URL) stays unverified and fleet sync add refuses it', async () => {
    // The victim: a real daemon elsewhere (its DID is public); the attacker: a real spl daemon in
    // the avahi namespace (mDNS off) whose manifest is signed by its own key, announced by avahi
    // under the victim's DID.
    const victim = await initHome({ handle: 'victim' })
    const m = await initHome()
    const mallory = await serveInNs(pair.b, m.home, m.did, { port: 9300, mdns: 'off' })
    const forged = pair.b.spawn(
      'env',
      [
        ...avahi.env,
        'avahi-publish-service',
        '-s',
        'victim',
        '_syncropel._tcp',
        '9300',
        `did=${victim.did}`,
        'handle=victim',
        'ns=default',
        'v=1',
        'path=/',
      ],
      { stdio: 'ignore' },
    )
    children.add(forged)
    try {
      await until('dora lists the forged entry', async () => (await roster(dora)).some((p) => p.did === victim.did))
      const listed = (await discoverMdns(dora, 1000)).find((p) => p.did === victim.did)!
      expect(listed).toMatchObject({ url: `http://${pair.b.addr}:9300`, verified: false, verify_error: { code: 'MANIFEST_DID_MISMATCH' } })
      const add = await splIn(dora.ns, dora.home, ['fleet', 'sync', 'add', victim.did, 'th_demo'])
      expect(add.code, add.stdout + add.stderr).not.toBe(0)
      expect(add.stdout + add.stderr).toContain('PEER_UNVERIFIED')
      // No pair was made (discovery never creates one, and this sighting is refused).
      const list = await splIn(dora.ns, dora.home, ['fleet', 'sync', 'list', '--json'])
      expect(list.code, list.stderr).toBe(0)
      expect(list.stdout).not.toContain(victim.did)
    } finally {
      forged.kill('SIGTERM')
      children.delete(forged)
      await stop(mallory, 'SIGKILL')
    }
  })
})

describe('spl doctor and the multicast route', { timeout: 60_000 }, () => {
  it('warns when broadcasting without a multicast route, passes with one', async () => {
    // createNetNs: a namespace with only its link route (no default, no 224.0.0.0/4).
    await using bare = createNetNs()
    const h = await initHome({ broadcast: true })
    const d = await serveInNs(bare, h.home, h.did)
    try {
      const r = await splIn(bare, h.home, ['doctor', '--json'])
      const checks = JSON.parse(r.stdout).checks as { name: string; status: string; fix?: string }[]
      const mdns = checks.find((c) => c.name === 'mdns multicast route')
      expect(mdns).toMatchObject({ status: 'warn', fix: expect.stringContaining('ip route add 224.0.0.0/4') })
      expect(r.code).toBe(1)
      // The failed announcements were logged with their cause; the daemon is still up.
      expect(d.log()).toMatch(/mdns: (query|announcement) failed \(ENETUNREACH\)/)
      expect((await nsFetch(bare, `http://127.0.0.1:${PORT}/health`)).status).toBe(200)
      ok(await bare.exec('ip', ['route', 'add', '224.0.0.0/4', 'dev', 'lo']), 'ip route add')
      const again = JSON.parse((await splIn(bare, h.home, ['doctor', '--json'])).stdout).checks as { name: string; status: string }[]
      expect(again.find((c) => c.name === 'mdns multicast route')).toMatchObject({ status: 'pass' })
    } finally {
      await stop(d, 'SIGKILL')
    }
  })
})
