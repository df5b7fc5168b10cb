// What the two esbuild builds share: the CLI's (apps/cli/build.mjs) and the daemon's one-file
// build (apps/daemon/build.mjs).
import { readFileSync } from 'node:fs'

/** Some bundled CommonJS dependencies call require(); give an ESM bundle one. */
export const requireBanner = {
  js: "import { createRequire as __splRequire } from 'node:module'; const require = __splRequire(import.meta.url);",
}

/**
 * zod's `z` and `z.core` namespaces re-export its ~60 translated message catalogues (340 kB of
 * source a bundle would parse on every start); spl never switches zod's locale, so that export is
 * dropped.
 * @type {import('esbuild').Plugin}
 */
export const zodWithoutLocales = {
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
