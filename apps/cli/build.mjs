// Bundles the CLI for a fast start: src/bin.ts and every command module it imports lazily become
// dist/bin.js plus chunks beside it (dist/chunk-*.js), so that `spl version` parses a few hundred
// kB instead of resolving and loading hundreds of files. Runs after `tsc --build` (which checks
// the types and emits dist/index.js and the modules for library users) and overwrites its
// dist/bin.js. The daemon (`@spl/daemon`, loaded by `spl serve`, `spl export`/`import` and
// `spl storage migrate` only) stays an import of its own package, which ships its own one-file
// build (apps/daemon/build.mjs): it carries native code (better-sqlite3) and reads files of its package.
import { chmodSync, readdirSync, rmSync } from 'node:fs'
import { build } from 'esbuild'
import { requireBanner, zodWithoutLocales } from '../../scripts/esbuild-common.mjs'

const dist = new URL('./dist/', import.meta.url)

// esbuild's `external: ['@spl/daemon']` would also leave '@spl/daemon/home' unbundled; only the
// package's root entry (the server) must stay outside.
/** @type {import('esbuild').Plugin} */
const daemonRootExternal = {
  name: 'daemon-root-external',
  setup(b) {
    b.onResolve({ filter: /^@spl\/daemon$/ }, (args) => ({ path: args.path, external: true }))
  },
}

const result = await build({
  entryPoints: ['src/bin.ts'],
  outdir: 'dist',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  chunkNames: 'chunk-[hash]',
  external: ['better-sqlite3', 'pg', 'pg-native', 'pino-pretty'],
  banner: requireBanner,
  plugins: [daemonRootExternal, zodWithoutLocales],
  minify: true,
  legalComments: 'none',
  logLevel: 'warning',
  metafile: true,
})
chmodSync(new URL('bin.js', dist), 0o755)
// Chunks of earlier builds go only after the new ones are written (names are content hashes, so
// an unchanged build keeps its files): a spl started meanwhile never misses a chunk.
const fresh = new Set(Object.keys(result.metafile.outputs).map((o) => o.split('/').pop()))
for (const f of readdirSync(dist)) if (/^chunk-.*\.js$/.test(f) && !fresh.has(f)) rmSync(new URL(f, dist))
