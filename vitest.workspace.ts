import { defineConfig } from 'vitest/config'

// The one file that defines the test projects (vitest 4 reads it only through --config).
export default defineConfig({
  test: {
    projects: ['packages/*', 'apps/*'],
  },
})
