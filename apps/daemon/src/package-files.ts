import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

// Files the daemon reads from its own package, found relative to this module. It sits one level
// under the package root in src/ and in dist/, and so does the one-file build (dist/daemon.js, see
// build.mjs), which inlines it: keep this module at that depth.
const root = new URL('../', import.meta.url)

/** The daemon package version. */
export const VERSION: string = (JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as { version: string }).version

/** The web console's files, shipped in the package beside dist/. */
export const ASSETS_DIR = fileURLToPath(new URL('ui-assets/', root))
