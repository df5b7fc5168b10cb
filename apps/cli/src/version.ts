import { readFileSync } from 'node:fs'

/**
 * The version of the installed `@spl/cli`. Read from the package's own package.json, one level
 * above this file: dist/version.js from tsc and the bundled dist/*.js chunks both sit in dist/.
 */
export const CLI_VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string })
  .version

/** What `spl version` prints: `spl X.Y.Z`, or the version object with `--json`. */
export function versionText(json: boolean): string {
  return json ? JSON.stringify({ object: 'version', version: CLI_VERSION, node: process.version }, null, 2) : `spl ${CLI_VERSION}`
}
