// Two real daemons sharing a large thread (issue 13's tests): A's store is seeded with `n`
// signed records before it starts (as bench/catchup.js seeds it), B pulls the thread from A.
import { initHome, keypairOfHome, type SignedBenchRecord, seedHome, signedRecords } from '../bench/lib.js'
import { ok, TestDaemon } from './test-daemon.js'
import { until } from './until.js'

/** Records of `thread` held by `d` (from /v1/threads: the records listing pages at 10,000). */
export async function countOn(d: TestDaemon, thread: string): Promise<number> {
  const threads = await d.api.get<{ data: { thread: string; records: number }[] }>('/v1/threads')
  return threads.data.find((t) => t.thread === thread)?.records ?? 0
}

export interface SeededPair {
  a: TestDaemon
  b: TestDaemon
  pairId: string
  seeded: SignedBenchRecord[]
}

/**
 * Seeds A with `n` records of `thread`, starts A, lets `beforeB` run on A (more records, namespaces),
 * starts B (its config.toml edited by `configB` first) and waits until B has pulled at least `n`.
 */
export async function seededPair(options: {
  prefix: string
  thread: string
  n: number
  beforeB?: (a: TestDaemon) => Promise<void>
  configB?: (text: string) => string
}): Promise<SeededPair> {
  const homeA = await initHome(`${options.prefix}-a-`)
  const seeded = await signedRecords(await keypairOfHome(homeA), options.thread, options.n)
  await seedHome(homeA, seeded)
  const a = await TestDaemon.start({ home: homeA })
  await options.beforeB?.(a)
  const homeB = await initHome(`${options.prefix}-b-`)
  if (options.configB) {
    const { readFileSync, writeFileSync } = await import('node:fs')
    const file = `${homeB}/config.toml`
    writeFileSync(file, options.configB(readFileSync(file, 'utf8')))
  }
  const b = await TestDaemon.start({ home: homeB })
  const add = ok(await b.spl('fleet', 'sync', 'add', a.did, options.thread, '--peer-url', a.url, '--json'), 'fleet sync add')
  const pairId = (JSON.parse(add.stdout) as { pair_id: string }).pair_id
  await until('B caught up', async () => ((await countOn(b, options.thread)) >= options.n ? true : undefined), 120_000, 200)
  return { a, b, pairId, seeded }
}
