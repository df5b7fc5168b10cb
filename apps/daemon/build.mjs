// The daemon as one file: after `tsc --build` (which checks the types and emits dist/ module by
// module, for the tests and the declarations), esbuild bundles dist/index.js with the workspace
// packages and the pure-JavaScript dependencies it imports into dist/daemon.js, the package's
// entry point. Loading one minified file instead of ~900 ES modules takes ~15 MB less memory
// (kysely alone is hundreds of modules, each kept with its source and module record) and ~0.3 s
// less start-up: see docs/performance.md.
//
// Left outside: better-sqlite3 (native code), and what the code loads on first use with
// createRequire (pg, pino-pretty, bonjour-service), which esbuild does not follow; they resolve
// from this package's own dependencies. dist/daemon.js sits one level under the package root, as
// src/package-files.ts expects (package.json, ui-assets/).
import { build } from 'esbuild'
import { requireBanner, zodWithoutLocales } from '../../scripts/esbuild-common.mjs'

await build({
  entryPoints: ['dist/index.js'],
  outfile: 'dist/daemon.js',
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['better-sqlite3'],
  banner: requireBanner,
  plugins: [zodWithoutLocales],
  minify: process.env.SPL_BUILD_MINIFY !== '0',
  // Class and function names stay: they are in stack traces, logs and error names.
  keepNames: true,
  sourcemap: 'linked',
  legalComments: 'none',
  logLevel: 'warning',
})
