// `pnpm fuzz` (issue 18): the big runs of the seeded fuzzer, with a summary.
//   1. in process (apps/daemon/test/fuzz.test.ts): 10,000 cases per door of openapi.json and of
//      unknown paths, through app.request();
//   2. on a socket (apps/cli/test/fuzz-socket.e2e.test.ts): 1,000 cases per door against a real
//      `spl serve`, plus what only a socket shows (oversized headers, bad request lines, smuggling
//      shapes, slow partial requests held open) and the server's own timeout of a slow client.
// Prints per door: cases tried, failures, time; exits 1 when any case failed.
//
//   pnpm fuzz                                (builds first; a random seed, printed)
//   node scripts/fuzz.js --seed 18 --cases 2000 --socket-cases 200
//   node scripts/fuzz.js --only process      (or --only socket)
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'

const { values: args } = parseArgs({
  options: {
    seed: { type: 'string' },
    cases: { type: 'string' },
    'socket-cases': { type: 'string' },
    only: { type: 'string' },
  },
})
const seed = String(args.seed ?? process.env.SPL_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31))
const cases = String(args.cases ?? 10_000)
const socketCases = String(args['socket-cases'] ?? 1000)
const dir = mkdtempSync(path.join(os.tmpdir(), 'spl-fuzz-'))

/** Runs one vitest file with the fuzz environment; returns its exit code and the report it wrote. */
function run(project, file, extraEnv) {
  const report = path.join(dir, `${project}.json`)
  const r = spawnSync('npx', ['vitest', 'run', '--config', 'vitest.workspace.ts', '--project', project, file], {
    stdio: 'inherit',
    env: { ...process.env, SPL_FUZZ_SEED: seed, SPL_FUZZ_REPORT: report, SPL_MDNS: 'off', ...extraEnv },
  })
  return { code: r.status ?? 1, report: existsSync(report) ? JSON.parse(readFileSync(report, 'utf8')) : null }
}

const pad = (s, n) => String(s).padEnd(n)
const num = (n) => Number(n).toLocaleString('en-US')

function print(title, report) {
  console.log(`\n${title}`)
  if (!report) {
    console.log('  (no report: the run did not finish; see the output above)')
    return
  }
  const w = Math.max(...report.perDoor.map((d) => d.door.length), 10)
  console.log(`  ${pad('door', w)}  ${pad('cases', 8)} ${pad('failures', 8)} time`)
  for (const d of report.perDoor)
    console.log(`  ${pad(d.door, w)}  ${pad(num(d.cases), 8)} ${pad(d.failures, 8)} ${(d.ms / 1000).toFixed(1)} s`)
  console.log(
    `  ${num(report.totalCases)} cases over ${report.perDoor.length} doors, ${report.failures.length} failures, ${(report.ms / 1000).toFixed(1)} s` +
      (report.split
        ? ` (requests ${(report.split.req / 1000).toFixed(1)} s, checks ${(report.split.check / 1000).toFixed(1)} s, state probes ${(report.split.probe / 1000).toFixed(1)} s)`
        : ''),
  )
  for (const f of report.failures.slice(0, 20)) console.log(`\n  FAIL ${f.case}\n    answer ${f.answer}\n    ${f.problems.join(' | ')}`)
  if (report.failures.length > 20) console.log(`  … and ${report.failures.length - 20} more (full list in the output above)`)
}

console.log(`spl fuzz — seed ${seed} (replay with --seed ${seed}); ${cases} cases per door in process, ${socketCases} on a socket`)
const t0 = Date.now()
const results = []
if (args.only !== 'socket') {
  const r = run('daemon', 'apps/daemon/test/fuzz.test.ts', { SPL_FUZZ_CASES: cases })
  results.push(['in process (app.request)', r])
}
if (args.only !== 'process') {
  const r = run('cli', 'apps/cli/test/fuzz-socket.e2e.test.ts', { SPL_FUZZ_SOCKET_CASES: socketCases, SPL_FUZZ_SLOW_TIMEOUT: '1' })
  results.push(['on a socket (a real spl serve)', r])
}
console.log(`\n=== spl fuzz summary — seed ${seed}, ${((Date.now() - t0) / 1000).toFixed(0)} s ===`)
for (const [title, r] of results) print(title, r.report)
rmSync(dir, { recursive: true, force: true })
const failed = results.some(([, r]) => r.code !== 0 || !r.report || r.report.failures.length > 0)
console.log(`\n${failed ? 'FAIL' : 'ok'}`)
process.exit(failed ? 1 : 0)
