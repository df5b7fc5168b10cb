import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs'
import net, { type AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { transform } from 'esbuild'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

// Issue 14 "Install from a registry": a real local registry (verdaccio 6.8, offline for the
// @spl scope, other packages through it from the machine's normal registry), the packed
// packages published to it by `scripts/release.js`, then installs the way users do them:
// `npm i -g @spl/cli`, `npm i @spl/identity`, `npm i @spl/sync-engine`. The slowest test of the
// suite: the global install compiles better-sqlite3 for the daemon (a minute or more).

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const VERDACCIO = path.join(ROOT, 'node_modules', '.bin', 'verdaccio')
const THREAD = 'th_federation_demo'

let tmp: string
let registry: string
let verdaccio: ChildProcess | undefined
let env: NodeJS.ProcessEnv
let released = ''

interface Run {
  code: number
  stdout: string
  stderr: string
}

function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeout?: number } = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      { cwd: opts.cwd ?? tmp, env: opts.env ?? env, timeout: opts.timeout ?? 300_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0
        resolve({ code, stdout: String(stdout), stderr: String(stderr) })
      },
    )
  })
}

function ok(r: Run, what: string): Run {
  if (r.code !== 0) throw new Error(`${what} exited ${r.code}\nstdout: ${r.stdout.slice(-4000)}\nstderr: ${r.stderr.slice(-4000)}`)
  return r
}

async function freePort(): Promise<number> {
  const s = net.createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const { port } = s.address() as AddressInfo
  await new Promise((r) => s.close(r))
  return port
}

/** Every file under `dir` whose name matches `re` (a shallow walk of node_modules is not enough). */
function findFiles(dir: string, re: RegExp, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name)
    const st = statSync(p, { throwIfNoEntry: false })
    if (!st) continue
    if (st.isDirectory()) findFiles(p, re, out)
    else if (re.test(name)) out.push(p)
  }
  return out
}

/** A scratch project that installs `packages` from the local registry; asserts no native module came with them. */
async function scratchProject(name: string, packages: string[]): Promise<string> {
  const dir = path.join(tmp, name)
  mkdirSync(dir)
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, version: '1.0.0', private: true, type: 'module' }))
  ok(await run('npm', ['install', ...packages], { cwd: dir }), `npm install ${packages.join(' ')}`)
  const modules = path.join(dir, 'node_modules')
  expect(existsSync(path.join(modules, 'better-sqlite3'))).toBe(false)
  expect(findFiles(modules, /\.node$/)).toEqual([])
  const tree = ok(await run('npm', ['ls', '--all', '--parseable'], { cwd: dir }), 'npm ls')
  expect(tree.stdout).not.toMatch(/better-sqlite3|node-gyp|prebuild-install|bindings/)
  return dir
}

/** The first ```ts block after `heading` in a README. */
function readmeBlock(readme: string, heading: string): string {
  const text = readFileSync(readme, 'utf8')
  const at = text.indexOf(heading)
  if (at < 0) throw new Error(`${readme} has no '${heading}'`)
  const code = /```ts\n([\s\S]*?)```/.exec(text.slice(at))?.[1]
  if (!code) throw new Error(`${readme} has no ts block under '${heading}'`)
  return code
}

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'spl-install-'))
  const port = await freePort()
  registry = `http://127.0.0.1:${port}/`
  // Other packages come from the registry this machine's npm already uses (a mirror, if any).
  const upstream = (await run('npm', ['config', 'get', 'registry'], { env: process.env })).stdout.trim() || 'https://registry.npmjs.org/'
  writeFileSync(
    path.join(tmp, 'verdaccio.yaml'),
    [
      `storage: ${path.join(tmp, 'storage')}`,
      'auth:',
      '  htpasswd:',
      `    file: ${path.join(tmp, 'htpasswd')}`,
      'uplinks:',
      '  upstream:',
      `    url: ${upstream}`,
      '    timeout: 60s',
      'packages:',
      // No proxy: @spl/* exists only here, never looked up upstream.
      "  '@spl/*':",
      '    access: $all',
      '    publish: $authenticated',
      "  '**':",
      '    access: $all',
      '    publish: $authenticated',
      '    proxy: upstream',
      'log: { type: stdout, format: pretty, level: warn }',
      '',
    ].join('\n'),
  )
  verdaccio = spawn(VERDACCIO, ['--config', path.join(tmp, 'verdaccio.yaml'), '--listen', `127.0.0.1:${port}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let log = ''
  verdaccio.stdout?.on('data', (d) => (log += d))
  verdaccio.stderr?.on('data', (d) => (log += d))
  const deadline = Date.now() + 60_000
  for (;;) {
    try {
      if ((await fetch(`${registry}-/ping`)).ok) break
    } catch {
      // not up yet
    }
    if (Date.now() > deadline || verdaccio.exitCode !== null) throw new Error(`verdaccio did not start:\n${log}`)
    await new Promise((r) => setTimeout(r, 200))
  }
  // A user for publishing (npm's adduser call), and an npmrc of our own: no other config applies.
  const user = await fetch(`${registry}-/user/org.couchdb.user:spl-release`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'spl-release', password: 'spl-release-password' }),
  })
  const { token } = (await user.json()) as { token: string }
  expect(token).toBeTruthy()
  const npmrc = path.join(tmp, 'npmrc')
  writeFileSync(
    npmrc,
    [
      `registry=${registry}`,
      `//127.0.0.1:${port}/:_authToken=${token}`,
      'fund=false',
      'audit=false',
      'update-notifier=false',
      // node-gyp builds better-sqlite3 against the installed headers instead of downloading them.
      ...(existsSync('/usr/include/node/node.h') ? ['nodedir=/usr'] : []),
      '',
    ].join('\n'),
  )
  env = {
    ...process.env,
    NPM_CONFIG_USERCONFIG: npmrc,
    npm_config_cache: path.join(tmp, 'npm-cache'),
    SPL_MDNS: 'off',
  }
  for (const k of Object.keys(env)) if (/^npm_(config_(?!cache$|userconfig$)|package_|lifecycle_)/i.test(k)) delete env[k]
  const r = ok(
    await run(
      process.execPath,
      [path.join(ROOT, 'scripts', 'release.js'), '--no-build', '--registry', registry, '--out', path.join(tmp, 'tarballs')],
      {
        cwd: ROOT,
        timeout: 240_000,
      },
    ),
    'scripts/release.js',
  )
  released = r.stdout
}, 300_000)

afterAll(async () => {
  verdaccio?.kill('SIGTERM')
  if (tmp) rmSync(tmp, { recursive: true, force: true })
})

describe('install from a registry', () => {
  it('release: every package packed without workspace: and published to the registry', async () => {
    for (const name of ['identity', 'records', 'consent', 'transport', 'sync-engine', 'discovery', 'federation', 'daemon', 'cli']) {
      expect(released).toContain(`» @spl/${name}@0.1.0: `)
      expect(released).toContain(`» published spl-${name}-0.1.0.tgz`)
      const doc = (await (await fetch(`${registry}@spl%2f${name}`)).json()) as {
        versions: Record<string, { dependencies?: Record<string, string> }>
      }
      expect(JSON.stringify(doc.versions['0.1.0']?.dependencies ?? {})).not.toContain('workspace:')
    }
    expect(released).not.toContain('PROBLEMS')
  })

  it('npm i -g @spl/cli --prefix <tmp>, then the seed walk-through with that spl: two homes, two daemons, records both ways', async () => {
    const prefix = path.join(tmp, 'global')
    ok(await run('npm', ['install', '-g', '@spl/cli', '--prefix', prefix], { timeout: 900_000 }), 'npm i -g @spl/cli')
    const bin = path.join(prefix, 'bin', 'spl')
    expect(realpathSync(bin).startsWith(realpathSync(prefix))).toBe(true)
    const [pa, pb] = [await freePort(), await freePort()]
    const homeA = path.join(tmp, 'spl-a')
    const homeB = path.join(tmp, 'spl-b')
    const shEnv: NodeJS.ProcessEnv = {
      ...env,
      PATH: `${path.join(prefix, 'bin')}:${process.env['PATH']}`,
      HOME_A: homeA,
      HOME_B: homeB,
      PA: String(pa),
      PB: String(pb),
    }
    delete shEnv['SPL_DAEMON_URL']
    const sh = (script: string) => run('bash', ['-euo', 'pipefail', '-c', script], { env: shEnv, timeout: 120_000 })
    try {
      const v = ok(await sh('command -v spl; spl version'), 'spl version')
      expect(v.stdout).toBe(`${bin}\nspl 0.1.0\n`)
      // 1. Start both daemons (the seed's ports are 9200/9250; free ones here, on loopback only).
      ok(
        await sh(`
export SYNCROPEL_HOME="$HOME_A"
spl init --force
spl serve --daemon --port "$PA" --host 127.0.0.1
export SYNCROPEL_HOME="$HOME_B"
spl init --force
spl serve --daemon --port "$PB" --host 127.0.0.1`),
        'start both daemons',
      )
      // 2.–4. Capture the DIDs, pair A → B on B, emit on A, observe on B.
      const walk = ok(
        await sh(`
export DID_A=$(curl -s http://127.0.0.1:$PA/v1/identity | jq -r '.did')
export DID_B=$(curl -s http://127.0.0.1:$PB/v1/identity | jq -r '.did')
SYNCROPEL_HOME="$HOME_B" spl fleet sync add --peer-url http://127.0.0.1:$PA "$DID_A" ${THREAD} >/dev/null
SYNCROPEL_HOME="$HOME_A" spl intend --thread ${THREAD} "hello from A"
for i in $(seq 100); do
  SYNCROPEL_HOME="$HOME_B" spl thread records ${THREAD} | grep -q 'hello from A' && break
  sleep 0.2
done
SYNCROPEL_HOME="$HOME_B" spl thread records ${THREAD}
# 5. Go bidirectional
SYNCROPEL_HOME="$HOME_A" spl fleet sync add --peer-url http://127.0.0.1:$PB "$DID_B" ${THREAD} >/dev/null
SYNCROPEL_HOME="$HOME_B" spl intend --thread ${THREAD} "hello from B"
for i in $(seq 100); do
  SYNCROPEL_HOME="$HOME_A" spl thread records ${THREAD} | grep -q 'hello from B' && break
  sleep 0.2
done
echo "--- on A"
SYNCROPEL_HOME="$HOME_A" spl thread records ${THREAD}
echo "--- B's pairs"
SYNCROPEL_HOME="$HOME_B" spl fleet sync list`),
        'the seed walk-through',
      )
      const [onB, onA] = walk.stdout.split('--- on A')
      expect(onB).toMatch(/hello from A/)
      expect(onA).toMatch(/hello from A[\s\S]*hello from B|hello from B[\s\S]*hello from A/)
      expect(walk.stdout.split("--- B's pairs")[1]).toMatch(/running/)
    } finally {
      await sh('SYNCROPEL_HOME="$HOME_A" spl serve --stop; SYNCROPEL_HOME="$HOME_B" spl serve --stop')
    }
  }, 1_200_000)

  it('a scratch project: npm i @spl/identity installs no native module, and its README example signs and verifies', async () => {
    const dir = await scratchProject('uses-identity', ['@spl/identity'])
    const code = readmeBlock(path.join(dir, 'node_modules', '@spl', 'identity', 'README.md'), '## Usage')
    expect(code).toContain('verifySignature')
    writeFileSync(path.join(dir, 'example.mjs'), code)
    ok(await run(process.execPath, ['example.mjs'], { cwd: dir, timeout: 60_000 }), 'the @spl/identity README example')
  }, 600_000)

  it('another: npm i @spl/sync-engine installs no native module, and the embedding example syncs two in-process engines', async () => {
    const dir = await scratchProject('embeds-sync-engine', ['@spl/sync-engine', '@hono/node-server'])
    const readme = path.join(dir, 'node_modules', '@spl', 'sync-engine', 'README.md')
    const ts = readmeBlock(readme, '## Embedding example')
    expect(ts).toContain('new SyncEngine(')
    // The block is TypeScript and uses vitest's `expect` (it is also the package's own test): strip
    // the types, and give it a small expect (poll, toEqual, toBe, toBeLessThan, toMatchObject).
    const { code } = await transform(ts, { loader: 'ts', format: 'esm', target: 'node20' })
    writeFileSync(path.join(dir, 'example.mjs'), code.replace(/from ['"]vitest['"]/, "from './expect.mjs'"))
    writeFileSync(path.join(dir, 'expect.mjs'), EXPECT_SHIM)
    const r = ok(await run(process.execPath, ['example.mjs'], { cwd: dir, timeout: 120_000 }), 'the @spl/sync-engine embedding example')
    expect(r.stderr).not.toMatch(/Error/)
  }, 600_000)
})

const EXPECT_SHIM = `import assert from 'node:assert/strict'
const checks = {
  toEqual: (got, want) => assert.deepStrictEqual(got, want),
  toBe: (got, want) => assert.strictEqual(got, want),
  toBeLessThan: (got, n) => assert.ok(got < n, 'expected ' + got + ' to be less than ' + n),
  toMatchObject: (got, want) => {
    for (const [k, v] of Object.entries(want)) assert.deepStrictEqual(got[k], v)
  },
}
export function expect(value) {
  return Object.fromEntries(Object.entries(checks).map(([name, check]) => [name, (want) => check(value, want)]))
}
expect.poll = (fn, { timeout = 20000 } = {}) =>
  Object.fromEntries(
    Object.entries(checks).map(([name, check]) => [
      name,
      async (want) => {
        const end = Date.now() + timeout
        for (;;) {
          try {
            return check(await fn(), want)
          } catch (err) {
            if (Date.now() > end) throw err
          }
          await new Promise((r) => setTimeout(r, 50))
        }
      },
    ]),
  )
`
