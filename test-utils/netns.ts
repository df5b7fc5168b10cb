// A second "host" for tests: a Linux network namespace joined to this one by a veth pair, so a
// test can reach a daemon from a non-loopback address (SPEC 7.1) without using the machine's
// own network. Discovery and pairing tests use it for mDNS and two-host cases.
import { type ChildProcess, execFileSync, type SpawnOptions, spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'

const NEED_ROOT = 'network namespaces need root and iproute2 (apt-get install iproute2); CI runs as root'

export interface ExecResult {
  code: number
  stdout: string
  stderr: string
}

/** What runs commands inside a namespace (every helper here gives one). */
export interface NsRunner {
  /** The namespace's name (`ip netns list`). */
  readonly name: string
  /** Runs `cmd args…` inside the namespace and waits for it. */
  exec(cmd: string, args: string[], options?: { timeoutMs?: number }): Promise<ExecResult>
  /** Starts `cmd args…` inside the namespace. */
  spawn(cmd: string, args: string[], options?: SpawnOptions): ChildProcess
}

export interface NetNs extends NsRunner {
  /** The address of the veth end in this (the root) namespace. */
  readonly hostAddr: string
  /** The address of the veth end inside the namespace. */
  readonly nsAddr: string
  /** Deletes the namespace (and with it the veth pair); safe to call twice. */
  remove(): Promise<void>
  [Symbol.asyncDispose](): Promise<void>
}

/** One end of a namespace pair. */
export interface PairedNs extends NsRunner {
  /** This namespace's address (on its veth end). */
  readonly addr: string
  /** The address of the other namespace. */
  readonly peerAddr: string
  /** The veth interface inside this namespace (its multicast route points there). */
  readonly ifname: string
}

/** Two namespaces joined to each other (not to this one) by a veth pair. */
export interface NetNsPair {
  readonly a: PairedNs
  readonly b: PairedNs
  /** Deletes both namespaces (and the veth pair); safe to call twice. */
  remove(): Promise<void>
  [Symbol.asyncDispose](): Promise<void>
}

const live = new Set<string>()
let exitHookInstalled = false

function ip(args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] })
}

function removeSync(name: string): void {
  live.delete(name)
  // Deleting the namespace destroys the veth end inside it, and so the pair.
  spawnSync('ip', ['netns', 'delete', name], { stdio: 'ignore' })
}

/** A random /30 in 10.213.0.0/16: its .1 and .2 addresses. */
function freshSlash30(): [string, string] {
  const [b1 = 0, b2 = 0] = randomBytes(2)
  const net = b2 & 0xfc
  return [`10.213.${b1}.${net + 1}`, `10.213.${b1}.${net + 2}`]
}

/** `ip netns add name`, remembered for cleanup at exit. */
function addNs(name: string): void {
  if (process.getuid?.() !== 0) throw new Error(`${NEED_ROOT} (running as uid ${process.getuid?.()})`)
  try {
    ip(['netns', 'add', name])
  } catch (err) {
    throw new Error(`${NEED_ROOT}: ip netns add failed: ${err instanceof Error ? err.message : String(err)}`)
  }
  live.add(name)
  if (!exitHookInstalled) {
    exitHookInstalled = true
    process.once('exit', () => {
      for (const n of [...live]) removeSync(n)
    })
  }
}

/** Runs commands inside the namespace `name`. */
function runnerFor(name: string): NsRunner {
  const nsSpawn = (cmd: string, args: string[], options: SpawnOptions = {}): ChildProcess =>
    spawn('ip', ['netns', 'exec', name, cmd, ...args], options)
  return {
    name,
    spawn: nsSpawn,
    exec(cmd, args, options = {}) {
      return new Promise((resolve) => {
        const child = nsSpawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: options.timeoutMs ?? 30_000 })
        let stdout = ''
        let stderr = ''
        child.stdout?.on('data', (d) => (stdout += d))
        child.stderr?.on('data', (d) => (stderr += d))
        child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }))
      })
    },
  }
}

/** Creates a namespace with a veth pair on a fresh 10.213.x.y/30; throws when it cannot (not root, no `ip`). */
export function createNetNs(): NetNs {
  const id = randomBytes(3).toString('hex')
  const name = `spl-test-${id}`
  const hostIf = `vsh${id}`
  const nsIf = `vsn${id}`
  // Host side .1, namespace side .2.
  const [hostAddr, nsAddr] = freshSlash30()
  addNs(name)
  try {
    ip(['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf])
    ip(['link', 'set', nsIf, 'netns', name])
    ip(['addr', 'add', `${hostAddr}/30`, 'dev', hostIf])
    ip(['link', 'set', hostIf, 'up'])
    ip(['-n', name, 'addr', 'add', `${nsAddr}/30`, 'dev', nsIf])
    ip(['-n', name, 'link', 'set', nsIf, 'up'])
    ip(['-n', name, 'link', 'set', 'lo', 'up'])
  } catch (err) {
    removeSync(name)
    spawnSync('ip', ['link', 'delete', hostIf], { stdio: 'ignore' })
    throw new Error(`${NEED_ROOT}: setting up ${name} failed: ${err instanceof Error ? err.message : String(err)}`)
  }

  const remove = async (): Promise<void> => removeSync(name)
  return { ...runnerFor(name), hostAddr, nsAddr, remove, [Symbol.asyncDispose]: remove }
}

/**
 * Two namespaces joined to each other by a veth pair on a fresh 10.213.x.y/30 (`a` has .1, `b`
 * .2), each with `lo` up and a multicast route `224.0.0.0/4 dev <veth>`: a LAN of two hosts for
 * mDNS, cut off from this machine's network. Throws when it cannot (not root, no `ip`).
 */
export function createNetNsPair(): NetNsPair {
  const id = randomBytes(3).toString('hex')
  const names = [`spl-test-${id}a`, `spl-test-${id}b`] as const
  const ifs = [`vpa${id}`, `vpb${id}`] as const
  const addrs = freshSlash30()
  const remove = async (): Promise<void> => {
    for (const n of names) removeSync(n)
  }
  addNs(names[0])
  try {
    addNs(names[1])
    ip(['link', 'add', ifs[0], 'netns', names[0], 'type', 'veth', 'peer', 'name', ifs[1], 'netns', names[1]])
    for (const i of [0, 1] as const) {
      ip(['-n', names[i], 'addr', 'add', `${addrs[i]}/30`, 'dev', ifs[i]])
      ip(['-n', names[i], 'link', 'set', ifs[i], 'up'])
      ip(['-n', names[i], 'link', 'set', 'lo', 'up'])
      ip(['-n', names[i], 'route', 'add', '224.0.0.0/4', 'dev', ifs[i]])
    }
  } catch (err) {
    // Deleting the namespaces destroys the veth ends inside them.
    for (const n of names) removeSync(n)
    throw new Error(`${NEED_ROOT}: setting up ${names.join(' + ')} failed: ${err instanceof Error ? err.message : String(err)}`)
  }
  const end = (i: 0 | 1): PairedNs => ({ ...runnerFor(names[i]), addr: addrs[i], peerAddr: addrs[1 - i]!, ifname: ifs[i] })
  return { a: end(0), b: end(1), remove, [Symbol.asyncDispose]: remove }
}

export interface NsHttpResponse {
  status: number
  /** The Content-Type header ('' when none). */
  type: string
  body: string
}

/** Makes one HTTP request with curl from inside `ns` (the caller is then a non-loopback peer). */
export async function nsFetch(
  ns: NsRunner,
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<NsHttpResponse> {
  // The status and content type come after the body, one per line.
  const args = ['-sS', '--max-time', '20', '-o', '-', '-w', '\n%{content_type}\n%{http_code}', '-X', init.method ?? 'GET']
  for (const [k, v] of Object.entries(init.headers ?? {})) args.push('-H', `${k}: ${v}`)
  if (init.body !== undefined) args.push('--data-binary', init.body)
  args.push(url)
  const r = await ns.exec('curl', args)
  if (r.code !== 0) throw new Error(`curl ${url} from ${ns.name} failed (${r.code}): ${r.stderr}`)
  const lines = r.stdout.split('\n')
  const status = Number(lines.pop())
  const type = lines.pop() ?? ''
  return { status, type, body: lines.join('\n') }
}
