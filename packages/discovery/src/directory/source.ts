// The `did-sync` discovery source: the peers a did:sync directory lists in a namespace. An entry
// is its DID's signed claim of a URL; Discovery still fetches the manifest there before it says
// `verified`.
import { SplError } from '@spl/identity'
import type { FoundPeer, PeerSource } from '../source.js'
import { DirectoryClient } from './client.js'
import { DID_SYNC_PREFIX } from './registration.js'

export interface DirectorySourceComponents {
  /** `[sync.discovery] directory_url`: the directory asked when a query names none ('' = none). */
  directoryUrl?: string | undefined
  /** The namespace listed when a query names none (the daemon's home namespace). */
  namespace?: string | undefined
  now?: () => number
}

/** The `did-sync` source over `components.directoryUrl` (or the query's `directory`). */
export function directorySource(components: DirectorySourceComponents = {}): PeerSource {
  return {
    method: 'did-sync',
    async start() {},
    async stop() {},
    async find(query) {
      const directory = query.directory || components.directoryUrl
      if (!directory) {
        throw new SplError('DIRECTORY_NOT_CONFIGURED', 'no did:sync directory to ask', {
          fix: 'pass --directory URL or set [sync.discovery] directory_url in config.toml',
        })
      }
      const namespace = query.namespace ?? components.namespace
      if (!namespace) throw new SplError('NAMESPACE_REQUIRED', 'did:sync discovery lists one namespace', { fix: 'pass --namespace NS' })
      const client = new DirectoryClient(directory, {
        timeoutMs: Math.max(query.timeoutMs, 1000),
        signal: query.signal,
        ...(components.now ? { now: components.now } : {}),
      })
      const entries = await client.byNamespace(namespace)
      return entries.map(
        (e): FoundPeer => ({
          did: e.did,
          url: e.url,
          handle: e.handle,
          namespace,
          ...(e.handle ? { aka: [`${DID_SYNC_PREFIX}${e.handle}`] } : {}),
          source: 'did-sync',
          // When the directory last heard from it: the registration's time.
          last_seen: e.iat * 1000,
        }),
      )
    },
  }
}
