import { execFile } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, expect, it } from 'vitest'

// Issue 14: `pnpm changeset version` bumps every @spl/* package together (one fixed group) and
// writes their CHANGELOGs. Run on a copy of the workspace's manifests, so the checkout is untouched.

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const tmp = mkdtempSync(path.join(os.tmpdir(), 'spl-changesets-'))
afterAll(() => rmSync(tmp, { recursive: true, force: true }))

const manifestDirs = ['packages', 'apps'].flatMap((d) =>
  readdirSync(path.join(ROOT, d))
    .map((n) => path.join(d, n))
    .filter((p) => existsSync(path.join(ROOT, p, 'package.json'))),
)
const version = (dir: string) => (JSON.parse(readFileSync(path.join(tmp, dir, 'package.json'), 'utf8')) as { version: string }).version

it('a changeset for one package bumps all of them and writes each CHANGELOG; workspace: ranges stay', async () => {
  for (const f of ['package.json', 'pnpm-workspace.yaml']) cpSync(path.join(ROOT, f), path.join(tmp, f))
  cpSync(path.join(ROOT, '.changeset', 'config.json'), path.join(tmp, '.changeset', 'config.json'), { recursive: true })
  for (const d of manifestDirs) {
    mkdirSync(path.join(tmp, d), { recursive: true })
    cpSync(path.join(ROOT, d, 'package.json'), path.join(tmp, d, 'package.json'))
  }
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(tmp, 'node_modules'))
  const before = version('packages/identity')
  writeFileSync(path.join(tmp, '.changeset', 'quick-fix.md'), '---\n"@spl/identity": minor\n---\n\nSign faster.\n')
  const r = await new Promise<{ code: number; out: string }>((resolve) =>
    execFile(
      process.execPath,
      [path.join(ROOT, 'node_modules', '@changesets', 'cli', 'bin.js'), 'version'],
      { cwd: tmp },
      (err, stdout, stderr) => resolve({ code: err ? 1 : 0, out: `${stdout}${stderr}` }),
    ),
  )
  expect(r.code, r.out).toBe(0)
  const [major, minor] = before.split('.').map(Number)
  const next = `${major}.${minor! + 1}.0`
  for (const d of manifestDirs) {
    expect({ d, v: version(d) }).toEqual({ d, v: next })
    expect(readFileSync(path.join(tmp, d, 'CHANGELOG.md'), 'utf8')).toContain(`## ${next}`)
  }
  expect(readFileSync(path.join(tmp, 'packages/identity/CHANGELOG.md'), 'utf8')).toContain('Sign faster.')
  expect(readFileSync(path.join(tmp, 'apps/cli/package.json'), 'utf8')).toContain('"@spl/daemon": "workspace:*"')
  expect(existsSync(path.join(tmp, '.changeset', 'quick-fix.md'))).toBe(false)
})
