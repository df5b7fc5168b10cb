import { adminCommand } from '../admin-command.js'

/** `spl fleet sync peers flush`: POST /v1/discovery/flush (SPEC 8: the did:web cache can be flushed). */
export const FleetSyncPeersFlushCommand = adminCommand({
  path: ['fleet', 'sync', 'peers', 'flush'],
  usage: {
    description: 'Forget cached did:web documents and manifest verdicts',
    details: `
      The daemon keeps a did:web document for an hour (then refreshes it in the background, and
      drops it after a day) and remembers which manifests it verified. After a peer moved or
      changed its key, flush so that the next \`spl fleet sync peers discover\` asks again.
      Nothing else changes: pairs, records and the mDNS roster are kept.
    `,
    examples: [
      [
        'Flush, then resolve a domain afresh',
        'spl fleet sync peers flush && spl fleet sync peers discover --method did-web --domain alice.dev',
      ],
      ['As JSON', 'spl fleet sync peers flush --json'],
    ],
  },
  call: (api) => api.post<{ object: 'discovery_flush'; flushed: boolean }>('/v1/discovery/flush'),
  human: () => 'Discovery caches flushed: the next discover fetches did:web documents and manifests again.',
})
