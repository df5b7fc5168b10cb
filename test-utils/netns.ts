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

export interface NetNs {
  /** The namespace's name (`ip netns list`). */
  readonly name: string
  /** The address of the veth end in this (the root) namespace. */
  readonly hostAddr: string
  /** The address of the veth end inside the namespace. */
  readonly nsAddr: string
  /** Runs `cmd args…` inside the namespace and waits for it. */
  exec(cmd: string, args: string[], options?: { timeoutMs?: number }): Promise<ExecResult>
  /** Starts `cmd args…` inside the namespace. */
  spawn(cmd: string, args: string[], options?: SpawnOptions): ChildProcess
  /** Deletes the namespace (and with it the veth pair); safe to call twice. */
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

/** Creates a namespace with a veth pair on a fresh 10.213.x.y/30; throws when it cannot (not root, no `ip`). */
export function createNetNs(): NetNs {
  if (process.getuid?.() !== 0) throw new Error(`${NEED_ROOT} (running as uid ${process.getuid?.()})`)
  const id = randomBytes(3).toString('hex')
  const name = `spl-test-${id}`
  const hostIf = `vsh${id}`
  const nsIf = `vsn${id}`
  // A random /30 in 10.213.0.0/16: host side .1, namespace side .2.
  const [b1 = 0, b2 = 0] = randomBytes(2)
  const base = `10.213.${b1}.${b2 & 0xfc}`
  const hostAddr = base.replace(/\d+$/, String((b2 & 0xfc) + 1))
  const nsAddr = base.replace(/\d+$/, String((b2 & 0xfc) + 2))
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

  const nsSpawn = (cmd: string, args: string[], options: SpawnOptions = {}): ChildProcess =>
    spawn('ip', ['netns', 'exec', name, cmd, ...args], options)
  const remove = async (): Promise<void> => removeSync(name)
  return {
    name,
    hostAddr,
    nsAddr,
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
    remove,
    [Symbol.asyncDispose]: remove,
  }
}

export interface NsHttpResponse {
  status: number
  /** The Content-Type header ('' when none). */
  type: string
  body: string
}

/** Makes one HTTP request with curl from inside `ns` (the caller is then a non-loopback peer). */
export async function nsFetch(
  ns: NetNs,
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
