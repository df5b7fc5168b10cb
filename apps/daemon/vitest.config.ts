import { defineProject } from 'vitest/config'

export default defineProject({
  test: {
    name: 'daemon',
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 20_000,
    // No mDNS packets from tests on this machine's own network: discovery tests run in namespaces.
    env: { SPL_MDNS: 'off' },
  },
})
