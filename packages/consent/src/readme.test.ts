import { readFileSync } from 'node:fs'
import { expect, it } from 'vitest'

/**
 * Runs the README's usage example. Its `import … from '…'` lines become lookups in a table of
 * modules (`@spl/consent` is this package's source), the rest runs as an async function body.
 */
async function runReadmeExample(readme: URL, self: string, selfPath: string): Promise<string> {
  const text = readFileSync(readme, 'utf8')
  const usage = text.slice(text.indexOf('## Usage'))
  const code = /```ts\n([\s\S]*?)```/.exec(usage)?.[1]
  if (!code) throw new Error('no ts block under ## Usage')
  const modules: Record<string, Record<string, unknown>> = {}
  const body = await replaceAsync(code, /^import\s+(.+?)\s+from\s+'([^']+)'\s*$/gm, async (_m, clause, spec) => {
    const specifier: string = spec === self ? selfPath : spec
    modules[spec] = (await import(specifier)) as Record<string, unknown>
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

it('the README usage example runs', async () => {
  const code = await runReadmeExample(new URL('../README.md', import.meta.url), '@spl/consent', './index.js')
  expect(code).toContain('consentFilter')
})
