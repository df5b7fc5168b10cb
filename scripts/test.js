// Runs every vitest project once and ends with one plain summary line ("tests: N passed, N failed")
// that CI reads; the exit code is vitest's.
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync, rmSync } from 'node:fs'

const out = '.vitest-results.json'
rmSync(out, { force: true })
const args = [
  'vitest',
  'run',
  '--config',
  'vitest.workspace.ts',
  '--reporter=default',
  '--reporter=json',
  `--outputFile=${out}`,
  ...process.argv.slice(2),
]
const r = spawnSync('npx', args, { stdio: 'inherit' })
if (existsSync(out)) {
  const res = JSON.parse(readFileSync(out, 'utf8'))
  const skipped = res.numPendingTests + res.numTodoTests
  console.log(`tests: ${res.numPassedTests} passed, ${res.numFailedTests} failed${skipped ? `, ${skipped} skipped` : ''}`)
  rmSync(out, { force: true })
}
process.exit(r.status ?? 1)
