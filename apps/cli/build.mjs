// Bundles the CLI for a fast start: src/bin.ts and every command module it imports lazily become
// dist/bin.js plus chunks beside it (dist/chunk-*.js), so that `spl version` parses a few hundred
// kB instead of resolving and loading hundreds of files. Runs after `tsc --build` (which checks
// the types and emits dist/index.js and the modules for library users) and overwrites its
// dist/bin.js. The daemon (`@spl/daemon`, loaded by `spl serve` only) stays a normal import:
// it carries native code (better-sqlite3) and files found beside its own modules.
import { chmodSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { build } from 'esbuild'

const dist = new URL('./dist/', import.meta.url)

// zod's `z` and `z.core` namespaces re-export its ~60 translated message catalogues (340 kB of source the
// bundle would parse on every start); spl never switches zod's locale, so that export is dropped.
/** @type {import('esbuild').Plugin} */
const zodWithoutLocales = {
  name: 'zod-without-locales',
  setup(b) {
    b.onLoad({ filter: /zod[\\/]v4[\\/](classic[\\/]external|core[\\/]index)\.js$/ }, (args) => {
      const source = readFileSync(args.path, 'utf8')
      const line = 'export * as locales from "../locales/index.js";'
      if (!source.includes(line)) throw new Error(`zod-without-locales: '${line}' not found in ${args.path}`)
      return {
        contents: source.replace(line, 'export const locales = {};'),
        loader: 'js',
        resolveDir: new URL('.', `file://${args.path}`).pathname,
      }
    })
  },
}

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
  // Some bundled CommonJS dependencies call require(); give the ESM bundle one.
  banner: { js: "import { createRequire as __splRequire } from 'node:module'; const require = __splRequire(import.meta.url);" },
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
