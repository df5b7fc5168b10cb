// `pnpm release --registry URL`: builds the workspace, packs every @spl/* package with `pnpm pack`
// (which rewrites `workspace:*` to the versions being released), checks each tarball, and
// publishes them in dependency order with `npm publish <tarball>`. See docs/releasing.md.
//
//   pnpm release --registry http://127.0.0.1:4873   build, pack, check, publish
//   pnpm release --dry-run                          build, pack, check; publish nothing
//   node scripts/release.js --no-build --out DIR    (already built; keep the tarballs in DIR)
//
// The registry's credentials come from npm's own configuration (an `_authToken` line for the
// registry in ~/.npmrc or in the file NPM_CONFIG_USERCONFIG names); this script never handles them.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

/** The workspace's publishable packages (@spl/*, not private), dependencies before dependants. */
export function publishablePackages() {
  const dirs = ['packages', 'apps'].flatMap((d) =>
    readdirSync(path.join(ROOT, d))
      .map((n) => path.join(ROOT, d, n))
      .filter((p) => existsSync(path.join(p, 'package.json'))),
  )
  const pkgs = dirs
    .map((dir) => ({ dir, json: JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) }))
    .filter((p) => p.json.name?.startsWith('@spl/') && !p.json.private)
  const byName = new Map(pkgs.map((p) => [p.json.name, p]))
  const ordered = []
  const seen = new Set()
  const visit = (p) => {
    if (seen.has(p.json.name)) return
    seen.add(p.json.name)
    for (const dep of Object.keys({ ...p.json.dependencies, ...p.json.peerDependencies })) {
      const d = byName.get(dep)
      if (d) visit(d)
    }
    ordered.push(p)
  }
  for (const p of pkgs.sort((a, b) => a.json.name.localeCompare(b.json.name))) visit(p)
  return ordered
}

/** The problems of one packed tarball: `workspace:` left, files the manifest names but lacks. */
export function checkTarball(file) {
  const list = execFileSync('tar', ['-tzf', file], { encoding: 'utf8' }).split('\n').filter(Boolean)
  const has = (p) => list.includes(`package/${p.replace(/^\.\//, '')}`)
  const text = execFileSync('tar', ['-xzOf', file, 'package/package.json'], { encoding: 'utf8' })
  const json = JSON.parse(text)
  const problems = []
  if (text.includes('workspace:'))
    problems.push(`package.json still has 'workspace:' (${text.match(/"[^"]+": "workspace:[^"]*"/g)?.join(', ')})`)
  for (const field of ['license', 'engines', 'exports', 'types', 'files']) if (!json[field]) problems.push(`no "${field}"`)
  if (!has('README.md')) problems.push('no README.md')
  const targets = []
  const walk = (v) => {
    if (typeof v === 'string') targets.push(v)
    else if (v && typeof v === 'object') for (const x of Object.values(v)) walk(x)
  }
  walk(json.exports)
  walk(json.bin)
  if (json.types) targets.push(json.types)
  if (json.main) targets.push(json.main)
  for (const t of targets) if (!has(t)) problems.push(`${t} is named in package.json but not in the tarball`)
  if (list.some((f) => /\.test\.(js|ts|d\.ts)$/.test(f))) problems.push('test files are packed')
  return { name: json.name, version: json.version, files: list.length, problems }
}

function parseArgs(argv) {
  const opts = { registry: undefined, dryRun: false, build: true, out: undefined }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--registry') opts.registry = argv[++i]
    else if (a.startsWith('--registry=')) opts.registry = a.slice('--registry='.length)
    else if (a === '--dry-run') opts.dryRun = true
    else if (a === '--no-build') opts.build = false
    else if (a === '--out') opts.out = argv[++i]
    else throw new Error(`unknown argument '${a}' (use --registry URL, --dry-run, --no-build, --out DIR)`)
  }
  if (!opts.dryRun && !opts.registry) throw new Error('say where to publish: --registry URL (or --dry-run)')
  return opts
}

function main() {
  const opts = parseArgs(process.argv.slice(2))
  const run = (cmd, args, cwd = ROOT) => execFileSync(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' })
  if (opts.build) {
    console.log('» building')
    execFileSync('pnpm', ['build'], { cwd: ROOT, stdio: 'inherit' })
  }
  const out = opts.out ? path.resolve(opts.out) : mkdtempSync(path.join(os.tmpdir(), 'spl-release-'))
  mkdirSync(out, { recursive: true })
  const packed = []
  for (const p of publishablePackages()) {
    const before = new Set(readdirSync(out))
    run('pnpm', ['pack', '--pack-destination', out], p.dir)
    const file = readdirSync(out).find((f) => f.endsWith('.tgz') && !before.has(f))
    if (!file) throw new Error(`pnpm pack of ${p.json.name} wrote no tarball`)
    packed.push({ name: p.json.name, file: path.join(out, file) })
  }
  let failed = false
  for (const p of packed) {
    const c = checkTarball(p.file)
    console.log(`» ${c.name}@${c.version}: ${c.files} files${c.problems.length ? `, PROBLEMS: ${c.problems.join('; ')}` : ', ok'}`)
    if (c.problems.length) failed = true
  }
  if (failed) {
    console.error('release: the packed packages are not publishable (above); nothing was published')
    process.exit(1)
  }
  console.log(`» tarballs in ${out}`)
  if (opts.dryRun) return
  for (const p of packed) {
    // An absolute path: npm reads a bare `name.tgz` as a GitHub shorthand.
    run('npm', ['publish', p.file, '--registry', opts.registry, '--access', 'public', '--tag', 'latest'])
    console.log(`» published ${path.basename(p.file)} to ${opts.registry}`)
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    main()
  } catch (err) {
    console.error(`release: ${err instanceof Error ? err.message : String(err)}`)
    process.exit(1)
  }
}
