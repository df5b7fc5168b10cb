import { readFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { serve } from '@hono/node-server'
import { Keypair } from '@spl/identity'
import { inlineChecker, signRecord } from '@spl/records'
import { ChangeFeed, changeFeedHandler, MemorySyncStore, SubscriberStats, SyncEngine, ThreadNotifier } from '@spl/sync-engine'
import { PeerClient } from '@spl/transport'
import { Hono } from 'hono'
import { expect, it } from 'vitest'

it('the README example: two in-process engines sync over HTTP with in-memory stores', async () => {
  // README example begins
  /** One service: an identity, an in-memory store, and its change feed served over HTTP. */
  async function startService() {
    const keypair = Keypair.generate()
    const store = new MemorySyncStore() // a pair store, a record sink and a change source in one
    const notifier = new ThreadNotifier()
    const feed = new ChangeFeed({
      keypair,
      store,
      registry: { bindingOf: () => null, grants: () => [] }, // no namespace bindings, no grants
      notifier,
      subscribers: new SubscriberStats(),
      servePolicy: 'open',
      pullsFrom: () => false,
      isTokenRevoked: () => false,
    })
    const app = new Hono()
    const handler = changeFeedHandler(feed)
    app.get('/v1/sync/changes', (c) => handler(c.req.raw))
    const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
      const s = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve(s))
    })
    const { port } = server.address() as AddressInfo
    return { keypair, store, notifier, server, url: `http://127.0.0.1:${port}` }
  }

  /** Signs a record as the service, stores it, and wakes the long polls waiting on its thread. */
  async function emit(service: Awaited<ReturnType<typeof startService>>, thread: string, text: string) {
    const actor = service.keypair.did
    const clock = service.store.nextClock(actor, thread)
    const signed = signRecord(service.keypair, { parents: [], thread, actor, act: 'KNOW', body: { text }, clock, data_type: 'SCALAR' })
    await service.store.appendLocal(signed)
    service.notifier.notify(thread)
    return signed.id
  }

  const a = await startService()
  const b = await startService()
  // B pulls from A: its engine writes pairs and records into B's store.
  const engine = new SyncEngine({
    localDid: b.keypair.did,
    pairs: b.store,
    sink: b.store,
    transport: new PeerClient(b.keypair),
    checker: inlineChecker,
    namespaces: { namespaceGate: () => null }, // every namespace is usable here
  })
  await engine.start()
  try {
    const thread = 'th_demo'
    const first = [await emit(a, thread, 'hello'), await emit(a, thread, 'from A')]
    const { pair } = await engine.addPair({ peer_did: a.keypair.did, peer_url: a.url, thread_id: thread })
    const idsOnB = async () => (await b.store.listAfter(thread, 0, 1000)).map((row) => row.id)
    await expect.poll(idsOnB).toEqual(first)
    await expect.poll(() => engine.getPair(pair.pair_id).state).toBe('running')

    // B now holds a long poll open on A; a record emitted later arrives through it.
    await expect.poll(() => a.notifier.waiting).toBe(1)
    const started = Date.now()
    const later = await emit(a, thread, 'a moment later')
    await expect.poll(idsOnB).toEqual([...first, later])
    expect(Date.now() - started).toBeLessThan(5000) // far less than the 25 s long-poll timeout
    expect(engine.getPair(pair.pair_id).totals).toMatchObject({ records_stored: 3, duplicates: 0 })
  } finally {
    await engine.stop()
    for (const s of [a, b]) {
      s.server.close()
      if ('closeAllConnections' in s.server) s.server.closeAllConnections()
    }
  }
  // README example ends
})

it('the README shows exactly this example', () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
  const block = /## Embedding example[\s\S]*?```ts\n([\s\S]*?)```/.exec(readme)?.[1]
  expect(block, 'README.md has a ts block under "## Embedding example"').toBeDefined()
  const self = readFileSync(new URL(import.meta.url), 'utf8')
  const imports = self
    .split('\n')
    .filter((l) => l.startsWith('import ') && !l.includes("'vitest'") && !l.includes("'node:fs'"))
    .join('\n')
  const body = /\/\/ README example begins\n([\s\S]*?)\n\s*\/\/ README example ends/
    .exec(self)![1]!
    .split('\n')
    .map((l) => l.replace(/^ {2}/, ''))
    .join('\n')
  expect(block!.trim()).toBe(`${imports}\nimport { expect } from 'vitest'\n\n${body}`.trim())
})

it('@spl/sync-engine does not depend on better-sqlite3, and cannot load it', async () => {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as Record<
    string,
    Record<string, string> | undefined
  >
  for (const field of ['dependencies', 'devDependencies', 'peerDependencies', 'optionalDependencies']) {
    expect(Object.keys(pkg[field] ?? {}), field).not.toContain('better-sqlite3')
  }
  const name = 'better-sqlite3'
  await expect(import(/* @vite-ignore */ name)).rejects.toThrow()
  // As an embedder's Node process sees it from this package (pnpm's shims add a NODE_PATH to
  // the test runner; a plain process has none).
  const { spawnSync } = await import('node:child_process')
  const canImport = (spec: string) =>
    spawnSync(
      process.execPath,
      ['--input-type=module', '-e', `import(${JSON.stringify(spec)}).then(() => process.exit(0), () => process.exit(3))`],
      {
        cwd: new URL('..', import.meta.url),
        env: { ...process.env, NODE_PATH: '' },
      },
    ).status
  expect(canImport('kysely')).toBe(0) // the check can succeed: a real dependency loads
  expect(canImport('better-sqlite3')).toBe(3)
})
