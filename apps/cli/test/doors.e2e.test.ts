import { mkdtempSync, rmSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { Keypair } from '@spl/identity'
import { createRequestProof, PROOF_HEADER } from '@spl/transport'
import { type BrowserContext, chromium } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ok, TestDaemon } from '../../../test-utils/test-daemon.js'

// Issue 18, "who may act", end to end with real `spl serve --daemon` processes: a web page in a
// real (headless Chromium) browser cannot act as the operator, and an SPL-Proof is good once, at
// one place, briefly — across two daemons, across a restart, and after its expiry.

const CHROMIUM = '/usr/bin/chromium'

interface Counts {
  records: number
  grants: number
  namespaces: string[]
}

async function counts(d: TestDaemon, thread: string): Promise<Counts> {
  const recs = await d.api.get<{ data: unknown[] }>(`/v1/threads/${thread}/records?limit=10000`)
  const grants = await d.api.get<{ data: unknown[] }>('/v1/consent/grants?all=true')
  const ns = await d.api.get<{ data: { namespace: string }[] }>('/v1/namespaces')
  return { records: recs.data.length, grants: grants.data.length, namespaces: ns.data.map((n) => n.namespace).sort() }
}

/** Requests the daemon answered with `status` for `method` (any route), from its /metrics. */
async function answered(d: TestDaemon, method: string, status: number): Promise<number> {
  const text = await (await fetch(`${d.url}/metrics`, { headers: { authorization: `Bearer ${d.token}` } })).text()
  let n = 0
  for (const m of text.matchAll(/^spl_http_request_duration_seconds_count\{([^}]*)\} (\d+)$/gm)) {
    if (m[1]!.includes(`method="${method}"`) && m[1]!.includes(`status="${status}"`)) n += Number(m[2])
  }
  return n
}

describe('a web page in the operator’s browser is not the operator (headless Chromium)', () => {
  const THREAD = 'th_browser'
  let d: TestDaemon
  let evil: http.Server
  let evilOrigin: string
  let context: BrowserContext
  let profile: string

  beforeAll(async () => {
    d = await TestDaemon.start()
    // The attacker's page, on another origin: another port of the same loopback address, so no
    // private-network rule of the browser stands between it and the daemon.
    evil = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
      res.end(attackPage(d.url, THREAD))
    })
    await new Promise<void>((resolve) => evil.listen(0, '127.0.0.1', resolve))
    evilOrigin = `http://127.0.0.1:${(evil.address() as AddressInfo).port}`
    profile = mkdtempSync(path.join(os.tmpdir(), 'spl-chromium-'))
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        // evil.test is the rebinding name: it resolves to this machine; nothing else resolves at all.
        '--host-resolver-rules=MAP evil.test 127.0.0.1, MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost',
        // Chromium's own guard against public pages calling loopback (Private/Local Network Access)
        // is off, as in browsers that have none: the daemon must refuse by itself.
        '--disable-features=LocalNetworkAccessChecks,PrivateNetworkAccessSendPreflights,PrivateNetworkAccessRespectPreflightResults,BlockInsecurePrivateNetworkRequests',
      ],
    })
  })

  afterAll(async () => {
    await context?.close()
    await new Promise((resolve) => evil?.close(resolve))
    await d?.[Symbol.asyncDispose]()
    if (profile) rmSync(profile, { recursive: true, force: true })
  })

  it('a form post (text/plain JSON trick and urlencoded) and a no-cors text/plain fetch from another origin change nothing', async () => {
    const before = await counts(d, THREAD)
    const refusedBefore = (await answered(d, 'POST', 401)) + (await answered(d, 'POST', 415))
    const page = await context.newPage()
    await page.goto(`${evilOrigin}/`)
    await page.waitForFunction(() => (globalThis as unknown as { done?: boolean }).done === true)
    const results = await page.evaluate(() => (globalThis as unknown as { results: Record<string, string> }).results)
    await page.close()
    // None of the three acted, and the browser did send them all (the daemon refused them).
    expect(await counts(d, THREAD)).toEqual(before)
    expect(results['nocors']).toBe('sent')
    const refusedAfter = (await answered(d, 'POST', 401)) + (await answered(d, 'POST', 415))
    expect(refusedAfter - refusedBefore).toBeGreaterThanOrEqual(3)
    expect(before.grants).toBe(0)
    expect(before.namespaces).not.toContain('evil')
  })

  it('a DNS-rebinding page (its own origin resolves to 127.0.0.1) can neither read the store nor emit', async () => {
    const port = Number(new URL(d.url).port)
    const origin = `http://evil.test:${port}`
    const before = await counts(d, THREAD)
    // The page's document comes from "the attacker" (fulfilled here); its fetches go to the daemon.
    await context.route(`${origin}/rebind`, (route) =>
      route.fulfill({ status: 200, contentType: 'text/html', body: rebindingPage(THREAD) }),
    )
    const page = await context.newPage()
    await page.goto(`${origin}/rebind`)
    await page.waitForFunction(() => (globalThis as unknown as { done?: boolean }).done === true)
    const results = await page.evaluate(() => (globalThis as unknown as { results: Record<string, unknown> }).results)
    await page.close()
    expect(results).toMatchObject({ get: 401, post: 401, getCode: 'AUTH_REQUIRED' })
    expect(String(results['getMessage'])).toMatch(/Host evil\.test:\d+ does not name this daemon/)
    expect(await counts(d, THREAD)).toEqual(before)
  })

  it('the CLI keeps working unchanged against the same daemon', async () => {
    ok(await d.spl('intend', '--thread', THREAD, 'from the operator'), 'spl intend')
    expect((await counts(d, THREAD)).records).toBe(1)
    ok(await d.spl('status'), 'spl status')
  })
})

/** Tries a text/plain form post of a grant, a urlencoded form post and a no-cors fetch. */
function attackPage(daemon: string, thread: string): string {
  const record = JSON.stringify({ act: 'INTEND', thread, body: { text: 'from a web page' } })
  return `<!doctype html><html><body>
<iframe name="sink1" id="sink1"></iframe><iframe name="sink2" id="sink2"></iframe>
<form id="grant" method="POST" enctype="text/plain" target="sink1" action="${daemon}/v1/consent/grants">
  <input name='{"target_namespace":"public","purpose":"' value='x"}'>
</form>
<form id="ns" method="POST" target="sink2" action="${daemon}/v1/namespaces">
  <input name="namespace" value="evil">
</form>
<script>
window.results = {}
const loaded = (id) => new Promise((r) => document.getElementById(id).addEventListener('load', r, { once: true }))
async function run() {
  const a = loaded('sink1'); document.getElementById('grant').submit(); await a
  const b = loaded('sink2'); document.getElementById('ns').submit(); await b
  try {
    await fetch('${daemon}/v1/records', { method: 'POST', mode: 'no-cors', headers: { 'content-type': 'text/plain' }, body: ${JSON.stringify(record)} })
    results.nocors = 'sent'
  } catch (e) { results.nocors = String(e) }
  window.done = true
}
run()
</script></body></html>`
}

/** Same-origin reads and writes from a page whose name now resolves to the daemon. */
function rebindingPage(thread: string): string {
  const record = JSON.stringify({ act: 'INTEND', thread, body: { text: 'rebound' } })
  return `<!doctype html><html><body><script>
window.results = {}
async function run() {
  try {
    const g = await fetch('/v1/threads'); results.get = g.status
    const body = await g.json(); results.getCode = body.code; results.getMessage = body.message
    const p = await fetch('/v1/records', { method: 'POST', headers: { 'content-type': 'application/json' }, body: ${JSON.stringify(record)} })
    results.post = p.status
  } catch (e) { results.error = String(e) }
  window.done = true
}
run()
</script></body></html>`
}

describe('an SPL-Proof is good once, at one place, briefly (SPEC 7.4)', () => {
  let a: TestDaemon
  let b: TestDaemon
  const caller = Keypair.generate()
  const THREAD = 'th_proofs'

  beforeAll(async () => {
    a = await TestDaemon.start()
    b = await TestDaemon.start()
    await a.emit(THREAD, 'one')
  })
  afterAll(async () => {
    await a?.[Symbol.asyncDispose]()
    await b?.[Symbol.asyncDispose]()
  })

  const pathAndQuery = (tag: string) => `/v1/sync/changes?thread=${THREAD}&feed=normal&limit=10&x=${tag}`
  /** The feed's answer to `proof` for `pq`: status and code. */
  async function feed(d: TestDaemon, pq: string, proof: string): Promise<{ status: number; code?: string; message?: string }> {
    const res = await fetch(new URL(pq, d.url), { headers: { [PROOF_HEADER]: proof } })
    const json = (await res.json()) as { code?: string; message?: string }
    return { status: res.status, ...json }
  }

  it('a proof for A is accepted once at A and refused at B (aud); aud "*" is refused by both', async () => {
    const pq = pathAndQuery('two-daemons')
    const { token } = await createRequestProof(caller, { method: 'GET', pathAndQuery: pq, aud: a.did })
    expect((await feed(a, pq, token)).status).toBe(200)
    expect(await feed(b, pq, token)).toMatchObject({
      status: 401,
      code: 'PROOF_INVALID',
      message: expect.stringMatching(/not this instance/),
    })
    expect(await feed(a, pq, token)).toMatchObject({ status: 401, code: 'PROOF_INVALID', message: expect.stringMatching(/replay/) })
    const star = await createRequestProof(caller, { method: 'GET', pathAndQuery: pq, aud: '*' })
    expect(await feed(a, pq, star.token)).toMatchObject({ status: 401, message: expect.stringMatching(/aud "\*"/) })
    expect(await feed(b, pq, star.token)).toMatchObject({ status: 401, message: expect.stringMatching(/aud "\*"/) })
  })

  it('a used proof is still refused after the daemon restarts (the jti cache is durable)', async () => {
    const pq = pathAndQuery('restart')
    const { token } = await createRequestProof(caller, { method: 'GET', pathAndQuery: pq, aud: a.did })
    expect((await feed(a, pq, token)).status).toBe(200)
    await a.stop()
    a = await a.restart()
    expect(await feed(a, pq, token)).toMatchObject({ status: 401, code: 'PROOF_INVALID', message: expect.stringMatching(/replay/) })
    // A fresh proof works after the restart: the refusal is about that one proof.
    const fresh = await createRequestProof(caller, { method: 'GET', pathAndQuery: pq, aud: a.did })
    expect((await feed(a, pq, fresh.token)).status).toBe(200)
  })

  it('a proof past exp + 30 s, or with iat more than 30 s ahead, is refused even unused', async () => {
    const pq = pathAndQuery('window')
    const old = await createRequestProof(caller, { method: 'GET', pathAndQuery: pq, aud: a.did }, Date.now() - 95_000)
    expect(await feed(a, pq, old.token)).toMatchObject({ status: 401, code: 'PROOF_INVALID' })
    const ahead = await createRequestProof(caller, { method: 'GET', pathAndQuery: pq, aud: a.did }, Date.now() + 45_000)
    expect(await feed(a, pq, ahead.token)).toMatchObject({ status: 401, code: 'PROOF_INVALID', message: expect.stringMatching(/future/) })
    // Inside the window both directions are fine.
    const recent = await createRequestProof(caller, { method: 'GET', pathAndQuery: pq, aud: a.did }, Date.now() - 50_000)
    expect((await feed(a, pq, recent.token)).status).toBe(200)
  })
})
