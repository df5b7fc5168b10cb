import { readFileSync } from 'node:fs'

/**
 * Runs the first ```ts block under `## Usage` of a package README, so the documented example is
 * tested as written. Its `import … from '…'` lines become lookups in a table of modules that
 * `load` fills (called from the test file, so specifiers resolve from the package, and the
 * package's own name can map to its source); the rest runs as an async function body.
 * Returns the code that ran.
 */
export async function runReadmeExample(readme: URL, load: (specifier: string) => Promise<unknown>): Promise<string> {
  const text = readFileSync(readme, 'utf8')
  const usage = text.slice(text.indexOf('## Usage'))
  const code = /```ts\n([\s\S]*?)```/.exec(usage)?.[1]
  if (!code) throw new Error('no ts block under ## Usage')
  const modules: Record<string, Record<string, unknown>> = {}
  const body = await replaceAsync(code, /^import\s+(.+?)\s+from\s+'([^']+)'\s*$/gm, async (_m, clause, spec) => {
    modules[spec] = (await load(spec)) as Record<string, unknown>
    const from = `__modules[${JSON.stringify(spec)}]`
    return clause.startsWith('{') ? `const ${clause} = ${from}` : `const ${clause} = ${from}.default`
  })
  const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor as new (
    ...args: string[]
  ) => (modules: Record<string, unknown>) => Promise<void>
  await new AsyncFunction('__modules', body)(modules)
  return code
}

async function replaceAsync(s: string, re: RegExp, fn: (match: string, clause: string, spec: string) => Promise<string>): Promise<string> {
  const parts: Promise<string>[] = []
  s.replace(re, (m: string, clause: string, spec: string) => {
    parts.push(fn(m, clause, spec))
    return m
  })
  const done = await Promise.all(parts)
  let i = 0
  return s.replace(re, () => done[i++]!)
}
