import { expect, it } from 'vitest'
import { runReadmeExample } from '../../../test-utils/readme-example.js'

it('the README usage example runs', async () => {
  const code = await runReadmeExample(new URL('../README.md', import.meta.url), (spec) =>
    spec === '@spl/federation' ? import('./index.js') : import(spec),
  )
  expect(code).toContain('FederationStore')
})
