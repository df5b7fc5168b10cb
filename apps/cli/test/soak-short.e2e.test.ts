import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

// Issue 18: the short run of `pnpm soak` that `pnpm test` keeps, so that the script itself cannot
// rot: kill -9 ×5 of a puller during catch-ups (moving to the next thread when one is done) and
// 20 s of a flapping source (stopped, killed, its port refused, black-holed or reset by the proxy
// the puller goes through) while it emits. Both must end with lost = duplicated = 0. The cursor
// invariants after each kill are the crash suite's (crash.e2e.test.ts), not repeated here.

const SOAK = fileURLToPath(new URL('../../../scripts/soak.js', import.meta.url))

interface PhaseResult {
  records: number
  stored: number
  lost: number
  duplicated: number
  foreign: number
}
interface SoakResult {
  seed: number
  kill: PhaseResult & { kills: number; threads: number; records_at_kills: number[] }
  flap: PhaseResult & { flaps: Record<string, number>; acked: number; lost_at_source: number; pair_state: string }
}

function runSoak(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [SOAK, ...args], { env: { ...process.env, SPL_MDNS: 'off' } })
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (out += d))
    child.on('close', (code) => resolve({ code: code ?? 1, out }))
  })
}

describe('pnpm soak, short (issue 18)', () => {
  it('kill -9 ×5 during catch-ups and 20 s of a flapping source: nothing lost, nothing twice', { timeout: 600_000 }, async () => {
    const seed = process.env['SPL_SOAK_SEED'] ?? String(Math.floor(Math.random() * 2 ** 31))
    console.log(`[soak-short] seed ${seed} (replay with node scripts/soak.js --kills 5 --records 5000 --flap-seconds 20 --seed ${seed})`)
    const { code, out } = await runSoak(['--kills', '5', '--records', '5000', '--flap-seconds', '20', '--seed', seed, '--json'])
    const line = out.split('\n').find((l) => l.startsWith('SOAK_RESULT '))
    expect(line, out.slice(-3000)).toBeDefined()
    const r = JSON.parse(line!.slice('SOAK_RESULT '.length)) as SoakResult
    console.log(
      out
        .split('\n')
        .filter((l) => /phase:|summary|lost/.test(l))
        .join('\n'),
    )

    // The kills happened, each during a catch-up, and every record of every thread is on B once.
    expect(r.kill.kills).toBe(5)
    // A kill is made only when the thread was still catching up a moment before; the last page
    // can land between that look and the SIGKILL (2 of 100 in the full run), so most, not all.
    expect(r.kill.records_at_kills.filter((n) => n < 5000).length).toBeGreaterThanOrEqual(3)
    expect(r.kill.records).toBe(r.kill.threads * 5000)
    expect(r.kill.lost).toBe(0)
    expect(r.kill.duplicated).toBe(0)
    expect(r.kill.foreign).toBe(0)
    expect(r.kill.stored).toBe(r.kill.records)

    // The source flapped while it emitted; what it acknowledged is in its store and on B, once.
    expect(Object.values(r.flap.flaps).reduce((s, v) => s + v, 0)).toBeGreaterThan(0)
    expect(r.flap.acked).toBeGreaterThan(10)
    expect(r.flap.lost_at_source).toBe(0)
    expect(r.flap.lost).toBe(0)
    expect(r.flap.duplicated).toBe(0)
    expect(r.flap.foreign).toBe(0)
    expect(r.flap.stored).toBe(r.flap.records)
    expect(code, out.slice(-2000)).toBe(0)
  })
})
