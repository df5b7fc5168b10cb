import { expect, it } from 'vitest'
import { runReadmeExample } from '../../../test-utils/readme-example.js'

it('the README usage example runs', async () => {
  const code = await runReadmeExample(new URL('../README.md', import.meta.url), (spec) =>
    spec === '@spl/identity' ? import('./index.js') : spec === '@spl/identity/noble' ? import('./noble.js') : import(spec),
  )
  expect(code).toContain('verifyDidJwt')
})
