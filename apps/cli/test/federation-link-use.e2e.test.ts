// Issue 11, what a link gives the pairs around it (SPEC 9.2, 6.4): `spl fleet sync add` and
// `spl sync` take a link id and pull with the link's token, and under serve_policy = "paired"
// a linked peer is served while a stranger gets 403 PEER_NOT_PAIRED.
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ok, spl, TestDaemon } from '../../../test-utils/test-daemon.js'

interface PairOut {
  pair_id: string
  peer_url: string
  state: string
  last_error: { code: string; message: string } | null
}

const homes: string[] = []
let a: TestDaemon
let b: TestDaemon
let stranger: TestDaemon
let linkId: string

async function startWith(config: string, servePolicy: 'open' | 'paired' = 'open'): Promise<TestDaemon> {
  const home = mkdtempSync(path.join(os.tmpdir(), 'spl-linkuse-'))
  homes.push(home)
  ok(await spl(home, ['init']), 'spl init')
  const file = path.join(home, 'config.toml')
  writeFileSync(file, readFileSync(file, 'utf8').replace('serve_policy = "open"', `serve_policy = "${servePolicy}"`))
  if (config) appendFileSync(file, `\n${config}\n`)
  return TestDaemon.start({ home })
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const v = await probe()
    if (v !== undefined) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(100)
  }
}

beforeAll(async () => {
  // B serves only peers it knows, and takes pairing requests without an operator.
  b = await startWith('[federation]\naccept_pair_requests = "auto"', 'paired')
  a = await startWith('')
  stranger = await startWith('')
  // A link without threads: no pairs yet, only the tokens.
  const r = ok(await a.spl('federation', 'pair', b.url, '--json'), 'federation pair')
  linkId = JSON.parse(r.stdout).link.link_id
})

afterAll(async () => {
  for (const d of [a, b, stranger]) await d?.stop()
  for (const h of homes) rmSync(h, { recursive: true, force: true })
})

describe('a peer link, used by pairs', () => {
  it('fleet sync add takes the link id: the URL comes from the link and the linked peer is served under "paired"', async () => {
    const r = ok(await a.spl('fleet', 'sync', 'add', linkId, 'th_link'), 'fleet sync add <link>')
    expect(r.stdout).toContain(`pulling th_link from`)
    const id = await b.emit('th_link', 'served to a linked peer')
    await until('the record on A', async () => ((await a.threadRecordIds('th_link')).includes(id) ? true : undefined))
    const pairs = await a.api.get<{ data: PairOut[] }>('/v1/sync/pairs')
    expect(pairs.data.find((p) => p.peer_url === b.url)).toMatchObject({ state: 'running', last_error: null })
  })

  it('spl sync <thread> from <link id> catches up once with the link', async () => {
    const id = await b.emit('th_once', 'one catch-up')
    const r = ok(await a.spl('sync', 'th_once', 'from', linkId), 'spl sync from <link>')
    expect(r.code).toBe(0)
    expect(await a.threadRecordIds('th_once')).toContain(id)
  })

  it('a stranger (no link, no binding, no pair held by B towards it) gets 403 PEER_NOT_PAIRED', async () => {
    await b.emit('th_link', 'not for strangers')
    ok(await stranger.spl('fleet', 'sync', 'add', '--peer-url', b.url, b.did, 'th_link'), 'stranger add')
    const failing = await until('the stranger pair failing', async () => {
      const p = (await stranger.api.get<{ data: PairOut[] }>('/v1/sync/pairs')).data[0]
      return p?.state === 'failing' ? p : undefined
    })
    expect(failing.last_error?.message).toContain('PEER_NOT_PAIRED')
    expect(await stranger.threadRecordIds('th_link')).toEqual([])
  })
})
