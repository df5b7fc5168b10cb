import { defineConfig } from 'vitest/config'

// The one file that defines the test projects (vitest 4 reads it only through --config).
export default defineConfig({
  test: {
    projects: [
      'packages/*',
      'apps/*',
      {
        // The kill -9 suite takes minutes: its own project, so it can be run (or left out) by name.
        test: {
          name: 'crash',
          root: 'apps/cli',
          include: ['test/crash.e2e.test.ts'],
          testTimeout: 300_000,
          hookTimeout: 60_000,
          // After every other project (groups run in order), so its timing is not shared with them.
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
})
