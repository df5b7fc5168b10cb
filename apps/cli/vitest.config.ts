import { defineProject } from 'vitest/config'

export default defineProject({
  test: {
    name: 'cli',
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    // The kill -9 suite is the `crash` project of vitest.workspace.ts.
    exclude: ['test/crash.e2e.test.ts', '**/node_modules/**'],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    // End-to-end files start real daemons: run them one at a time on this 2-core machine.
    fileParallelism: false,
    // No mDNS packets from tests on this machine's own network: discovery tests run in namespaces.
    env: { SPL_MDNS: 'off' },
  },
})
