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
          env: { SPL_MDNS: 'off' },
          // A group of its own (groups run one after another), so no other file shares its cores;
          // the cli files (no file parallelism) run as vitest's last, sequential group.
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
})
