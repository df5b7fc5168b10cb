import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ok, SPL_BIN, sh, spl, TestDaemon } from '../../../test-utils/test-daemon.js'

// Issue 14 "Behave like a good CLI", through the real binary: one-line mistakes with exit 2,
// no crash when piped into head, colour only for terminals, shell completion.

const ESC = '\u001b['
const THREADS = ['th_alpha', 'th_beta', 'th_gamma']

let a: TestDaemon
let b: TestDaemon
let pairIds: string[]
const scratch: string[] = []
/** A temporary directory removed after the file. */
function scratchDir(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'spl-scratch-'))
  scratch.push(d)
  return d
}

beforeAll(async () => {
  ;[a, b] = await Promise.all([TestDaemon.start(), TestDaemon.start()])
  for (const t of THREADS) await a.emit(t, `first of ${t}`)
  // Enough output that `| head -1` closes the pipe while spl still writes (a pipe holds 64 KiB).
  for (let i = 0; i < 300; i++) await a.emit('th_alpha', `record ${i} ${'x'.repeat(200)}`)
  pairIds = []
  for (const t of THREADS) {
    const p = await b.api.post<{ pair_id: string }>('/v1/sync/pairs', { peer_did: a.did, peer_url: a.url, thread_id: t })
    pairIds.push(p.pair_id)
  }
})

afterAll(async () => {
  await Promise.all([a?.[Symbol.asyncDispose](), b?.[Symbol.asyncDispose]()])
  for (const d of scratch) rmSync(d, { recursive: true, force: true })
})

describe('mistakes are one line and exit 2', () => {
  it('a mistyped command: UNKNOWN_COMMAND with the command meant', async () => {
    const r = await spl(a.home, ['stauts'])
    expect(r.code).toBe(2)
    expect(r.stdout).toBe('')
    expect(r.stderr.trimEnd().split('\n')).toEqual([expect.stringMatching(/^Error: UNKNOWN_COMMAND: .* Did you mean spl status\?$/)])
    const deep = await spl(a.home, ['fleet', 'sync', 'lsit'])
    expect(deep.code).toBe(2)
    expect(deep.stderr).toMatch(/^Error: UNKNOWN_COMMAND: .* Did you mean spl fleet sync list\?\n$/)
    const help = await spl(a.home, ['help', 'thread', 'list'])
    expect(help.code).toBe(0)
    expect(help.stdout).toContain('$ spl thread list')
    const far = await spl(a.home, ['xyzzy'])
    expect(far.code).toBe(2)
    expect(far.stderr).toMatch(/^Error: UNKNOWN_COMMAND: 'spl xyzzy' is not a command\. Fix: spl --help\n$/)
  })

  it('usage mistakes: USAGE with the right form, never INTERNAL', async () => {
    const cases: [string[], RegExp][] = [
      [['sync', 'th_x', 'to', a.url], /^Error: USAGE: the form is: spl sync <THREAD> from <PEER>\. Fix: spl sync --help\n$/],
      [['thread', 'list', '--bogus'], /^Error: USAGE: Unsupported option name \("--bogus"\)\. The form is: spl thread list \[--json\]\. /],
      [['serve', '--port', 'abc'], /^Error: USAGE: Invalid value for --port: .* The form is: spl serve /],
      [['thread', 'records'], /^Error: USAGE: .* The form is: spl thread records \[--json\] <thread>\. Fix: spl thread records --help\n$/],
      [['intend', 'hello'], /^Error: USAGE: missing --thread\. The form is: spl intend .*Fix: spl intend --help\n$/],
      [['thread'], /^Error: USAGE: 'spl thread' needs a subcommand: spl thread records, spl thread list\. /],
      [['completion', 'tcsh'], /^Error: USAGE: the form is: spl completion bash\|zsh\|fish \(not 'tcsh'\)\. /],
    ]
    for (const [args, want] of cases) {
      const r = await spl(a.home, args)
      expect({ args, code: r.code, stderr: r.stderr }).toEqual({ args, code: 2, stderr: expect.stringMatching(want) })
      expect(r.stderr).not.toContain('INTERNAL')
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1)
    }
  })

  it('spl serve --daemon on a home never initialised: NOT_INITIALIZED … Fix: spl init, nothing created', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'spl-noinit-'))
    scratch.push(dir)
    const home = path.join(dir, 'home')
    for (const args of [['serve', '--daemon'], ['serve']]) {
      const r = await spl(home, args)
      expect(r.code).toBe(1)
      expect(r.stderr).toBe(`Error: NOT_INITIALIZED: ${home} has no spl identity yet. Fix: spl init\n`)
    }
    expect(existsSync(home)).toBe(false)
    expect(readdirSync(dir)).toEqual([])
  })
})

describe('piped into head', () => {
  it('never crashes: no EPIPE, no stack trace, exit 0 (10 runs of each)', async () => {
    const script = `
      for i in $(seq 10); do
        spl fleet sync list | head -1 >/dev/null
        spl thread records th_alpha | head -1 >/dev/null
        spl thread records th_alpha --json | head -c 10 >/dev/null
        spl --help | head -1 >/dev/null
      done
      echo finished`
    const r = await sh(script, { SYNCROPEL_HOME: b.home })
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(r.stdout.trim()).toBe('finished')
  })

  it('the whole output still arrives when the reader reads it all', async () => {
    const r = await sh('spl thread records th_alpha | wc -l', { SYNCROPEL_HOME: a.home })
    expect(Number(r.stdout.trim())).toBe(301)
  })
})

describe('colour', () => {
  const help = (env: Record<string, string>) => spl(a.home, ['--help'], env)
  /** `spl --help` inside a pseudo-terminal (util-linux `script`). */
  const helpOnTty = (env: Record<string, string>) =>
    spawnSync('script', ['-qec', `"${process.execPath}" "${SPL_BIN}" --help`, '/dev/null'], {
      env: { ...process.env, SYNCROPEL_HOME: a.home, TERM: 'xterm-256color', NO_COLOR: '', FORCE_COLOR: '', ...env },
      encoding: 'utf8',
    }).stdout

  it('none when stdout is not a terminal, none with NO_COLOR, some with FORCE_COLOR', async () => {
    const plain = await help({ NO_COLOR: '', FORCE_COLOR: '' })
    expect(plain.code).toBe(0)
    expect(plain.stdout).toContain('spl thread list')
    expect(plain.stdout).toContain('spl completion')
    expect(plain.stdout).not.toContain('__complete') // the scripts' helper is not listed
    expect(plain.stdout).not.toContain(ESC)
    expect((await help({ NO_COLOR: '1', FORCE_COLOR: '' })).stdout).not.toContain(ESC)
    expect((await help({ FORCE_COLOR: '1', NO_COLOR: '' })).stdout).toContain(ESC)
    expect((await help({ FORCE_COLOR: '0', NO_COLOR: '' })).stdout).not.toContain(ESC)
  })

  it('on a terminal: colour, unless NO_COLOR', () => {
    expect(helpOnTty({})).toContain(ESC)
    expect(helpOnTty({ NO_COLOR: '1' })).not.toContain(ESC)
  })

  it("spl serve in the foreground on a terminal: the log's colours follow NO_COLOR too", async () => {
    const home = scratchDir()
    ok(await spl(home, ['init']), 'spl init')
    /** The first seconds of `spl serve --port 0` in a pseudo-terminal, until it says it listens. */
    const serveOnTty = (extra: Record<string, string>) =>
      new Promise<string>((resolve) => {
        const env: NodeJS.ProcessEnv = { ...process.env, SYNCROPEL_HOME: home, TERM: 'xterm-256color', ...extra }
        delete env['FORCE_COLOR']
        // A person's terminal: with CI set, node reports 2 colours for a tty (getColorDepth), as .ci/run sets it.
        delete env['CI']
        if (!extra['NO_COLOR']) delete env['NO_COLOR']
        const child = spawn('script', ['-qec', `"${process.execPath}" "${SPL_BIN}" serve --port 0`, '/dev/null'], { env })
        let out = ''
        const done = () => {
          clearTimeout(limit)
          child.kill('SIGTERM')
          resolve(out)
        }
        const limit = setTimeout(done, 20_000)
        child.stdout.on('data', (d) => {
          out += d
          if (out.includes('Ctrl-C to stop') && out.includes('listening')) done()
        })
      })
    const coloured = await serveOnTty({})
    expect(coloured).toContain('listening')
    expect(coloured).toContain(ESC)
    const plain = await serveOnTty({ NO_COLOR: '1' })
    expect(plain).toContain('listening')
    expect(plain).not.toContain(ESC)
  })
})

describe('shell completion', () => {
  /** What bash's completion function offers for the words typed (the last may be partial). */
  async function bashComplete(home: string, ...words: string[]): Promise<string[]> {
    const arr = ['spl', ...words].map((w) => `'${w}'`).join(' ')
    const r = await sh(
      `source <(spl completion bash)
       COMP_WORDS=(${arr}); COMP_CWORD=${words.length}
       _spl_complete
       printf '%s\\n' "\${COMPREPLY[@]}"`,
      { SYNCROPEL_HOME: home },
    )
    if (r.code !== 0) throw new Error(r.stderr)
    return r.stdout.split('\n').filter(Boolean)
  }

  it('bash: commands, subcommands, options, pair ids and thread ids', async () => {
    expect(await bashComplete(b.home, 'sta')).toEqual(['status'])
    expect(await bashComplete(b.home, 'fleet', 'sync', 'pa')).toEqual(['pause'])
    expect(await bashComplete(b.home, 'thread', '')).toEqual(['list', 'records'])
    expect((await bashComplete(b.home, 'serve', '--d')).sort()).toEqual(['--daemon', '--database'])
    expect(await bashComplete(b.home, 'serve', '--dae')).toEqual(['--daemon'])
    expect(await bashComplete(b.home, 'fleet', 'sync', 'pause', '')).toEqual([...pairIds].sort())
    expect(await bashComplete(b.home, 'fleet', 'sync', 'status', pairIds[0]!.slice(0, 6))).toContain(pairIds[0])
    expect(await bashComplete(a.home, 'thread', 'records', 'th_')).toEqual([...THREADS].sort())
    expect(await bashComplete(a.home, 'thread', 'records', '--json', 'th_g')).toEqual(['th_gamma'])
    expect(await bashComplete(a.home, 'sync', 'th_b')).toEqual(['th_beta'])
  })

  const has = (shell: string) => !spawnSync(shell, ['-c', 'exit 0']).error

  it.skipIf(!has('zsh'))('zsh: the same candidates, through the completion function (compadd stubbed)', async () => {
    const z = async (home: string, ...words: string[]) => {
      const arr = ['spl', ...words].map((w) => `'${w}'`).join(' ')
      const r = await sh(
        `zsh -c 'autoload -Uz compinit; compinit -u -d "$TMPDIR_Z/zcompdump"; source <(spl completion zsh)
compadd() { [[ $1 == -a ]] && print -l -- \${(P)2} }
words=(${arr.replaceAll("'", '"')}); CURRENT=${words.length + 1}; _spl'`,
        { SYNCROPEL_HOME: home, TMPDIR_Z: scratchDir() },
      )
      if (r.code !== 0) throw new Error(r.stderr)
      return r.stdout.split('\n').filter(Boolean)
    }
    expect(await z(b.home, 'fleet', 'sync', 'pa')).toEqual(['pause'])
    expect(await z(b.home, 'fleet', 'sync', 'resume', '')).toEqual([...pairIds].sort())
    expect(await z(a.home, 'thread', 'records', 'th_b')).toEqual(['th_beta'])
    expect(await z(a.home, 'thread', 'list', '--')).toEqual(['--help', '--json'])
  })

  it.skipIf(!has('fish'))('fish: the same candidates, through complete -C', async () => {
    const f = async (home: string, line: string) => {
      const r = await sh(`fish -c 'spl completion fish | source; complete -C "${line}"'`, { SYNCROPEL_HOME: home })
      if (r.code !== 0) throw new Error(r.stderr)
      return r.stdout.split('\n').filter(Boolean)
    }
    expect(await f(b.home, 'spl sta')).toEqual(['status'])
    // fish orders candidates itself (a natural sort: 2a… before 193e…): compare as sets.
    expect((await f(b.home, 'spl fleet sync pause ')).sort()).toEqual([...pairIds].sort())
    expect(await f(a.home, 'spl thread records th_g')).toEqual(['th_gamma'])
    expect(await f(b.home, 'spl serve --dae')).toEqual(['--daemon'])
  })

  it('zsh and fish scripts parse (zsh -n, fish -n, where installed) and ask spl __complete', async () => {
    for (const shell of ['zsh', 'fish']) {
      const r = await spl(a.home, ['completion', shell])
      expect(r.code).toBe(0)
      expect(r.stdout).toContain('spl __complete --')
      expect(r.stdout).toContain(shell === 'zsh' ? 'compdef _spl spl' : 'complete -c spl')
      if (has(shell)) {
        const file = path.join(scratchDir(), `spl.${shell}`)
        writeFileSync(file, r.stdout)
        const check = spawnSync(shell, ['-n', file], { encoding: 'utf8' })
        expect(check.status, check.stderr).toBe(0)
      }
    }
  })

  it('no daemon: commands still complete, ids are simply not offered', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'spl-nodaemon-'))
    scratch.push(dir)
    expect(await bashComplete(dir, 'fleet', 'sync', 'pause', '')).toEqual([])
    expect(await bashComplete(dir, 'vers')).toEqual(['version'])
  })
})
