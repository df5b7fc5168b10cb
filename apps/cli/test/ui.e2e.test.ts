import { type ChildProcess, spawn } from 'node:child_process'
import { appendFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ok, SPL_BIN, spl, TestDaemon } from '../../../test-utils/test-daemon.js'

// Issue 17, the web console, end to end: real `spl serve --daemon` processes and headless Chromium
// (Debian's, through playwright-core). The operator logs in with the link `spl ui` prints, watches
// a pair appear live, approves a held pairing request, pauses a pair and grants consent from the
// page; a page of another origin gets nothing from the session. Screenshots of every page go to
// apps/cli/test-output/ui/ (gitignored).

const CHROMIUM = '/usr/bin/chromium'
export const SHOTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../test-output/ui')

let a: TestDaemon
let b: TestDaemon
let browser: Browser
let context: BrowserContext
let page: Page
let evil: http.Server
let evilOrigin = ''
let evilHtml = ''
let homeA = ''
const children: ChildProcess[] = []

async function shot(name: string, p: Page = page): Promise<void> {
  await p.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true })
}

/** `spl …` in the background (for `spl federation pair`, which waits while its request is held). */
function splInBackground(home: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [SPL_BIN, ...args], {
      env: { ...process.env, SYNCROPEL_HOME: home, SPL_MDNS: 'off', NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    children.push(child)
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }))
  })
}

/** Requests to /ui/api/* that `d` answered 401, from its /metrics. */
async function uiRefusals(d: TestDaemon): Promise<number> {
  const text = await (await fetch(`${d.url}/metrics`, { headers: { authorization: `Bearer ${d.token}` } })).text()
  let n = 0
  for (const m of text.matchAll(/^spl_http_request_duration_seconds_count\{([^}]*)\} (\d+)$/gm)) {
    if (/route="\/ui\/api\//.test(m[1]!) && m[1]!.includes('status="401"')) n += Number(m[2])
  }
  return n
}

/** A link of the console's navigation. */
const nav = (name: string) => page.locator('#nav').getByRole('link', { name, exact: true })

/** The login link `spl ui` prints. */
async function uiLink(d: TestDaemon): Promise<string> {
  const r = ok(await d.spl('ui', '--json'), 'spl ui')
  const out = JSON.parse(r.stdout) as { url: string; expires_at: string }
  expect(out.url).toMatch(new RegExp(`^${d.url}/ui/login\\?token=[\\w-]{43}$`))
  return out.url
}

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true })
  // B first: A's config names B as a static peer, for the Peers page.
  b = await TestDaemon.start()
  homeA = path.join(mkdtempSync(path.join(os.tmpdir(), 'spl-ui-')), 'home')
  ok(await spl(homeA, ['init']), 'spl init A')
  appendFileSync(path.join(homeA, 'config.toml'), `\n[[sync.discovery.static]]\ndid = "${b.did}"\nurl = "${b.url}"\nhandle = "bee"\n`)
  a = await TestDaemon.start({ home: homeA })
  evil = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
    res.end(evilHtml)
  })
  await new Promise<void>((resolve) => evil.listen(0, '127.0.0.1', resolve))
  evilOrigin = `http://127.0.0.1:${(evil.address() as AddressInfo).port}`
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost',
      // As in doors.e2e: the browser's own guard against pages calling loopback is off; the daemon must refuse by itself.
      '--disable-features=LocalNetworkAccessChecks,PrivateNetworkAccessSendPreflights,PrivateNetworkAccessRespectPreflightResults,BlockInsecurePrivateNetworkRequests',
    ],
  })
  context = await browser.newContext({ viewport: { width: 1280, height: 900 } })
  page = await context.newPage()
  page.on('dialog', (d) => void d.accept())
  console.log(`screenshots: ${SHOTS}`)
}, 120_000)

afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL')
  await browser?.close()
  if (evil) await new Promise((resolve) => evil.close(resolve))
  await Promise.all([a?.[Symbol.asyncDispose](), b?.[Symbol.asyncDispose]()])
  if (homeA) rmSync(path.dirname(homeA), { recursive: true, force: true })
})

describe('the web console in headless Chromium', () => {
  it('logs in with the link of `spl ui` (once), then shows a pair live when another daemon makes one', async () => {
    // Without --json: the link alone on stdout (for scripts and copying), its expiry on stderr.
    const human = ok(await a.spl('ui'), 'spl ui')
    expect(human.stdout).toMatch(new RegExp(`^${a.url}/ui/login\\?token=[\\w-]{43}\\n$`))
    expect(human.stderr).toMatch(/one-time login link to the web console, valid until \d{4}-/)
    const link = await uiLink(a)
    await page.goto(link)
    await expect.poll(() => page.locator('h1').textContent()).toBe('Mesh')
    // The login link left the address bar (and the history entry) at once.
    expect(page.url()).toBe(`${a.url}/ui/#/mesh`)
    const cookies = await context.cookies(`${a.url}/ui/`)
    expect(cookies).toHaveLength(1)
    expect(cookies[0]).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/ui' })
    await page.getByText('No pairs yet').waitFor()
    await shot('01-mesh-empty')
    // The link was spent: a second browser gets the "does not work" page and no session.
    const other = await browser.newContext()
    const p2 = await other.newPage()
    await p2.goto(link)
    await p2.getByText('UI_LOGIN_INVALID').waitFor()
    await p2.getByText(/Fix: run `spl ui`/).waitFor()
    expect(await other.cookies(`${a.url}/ui/`)).toEqual([])
    await other.close()

    // B makes a pair pulling th_live from A: A serves it, and A's page shows the line without a reload.
    const started = Date.now()
    ok(await b.spl('fleet', 'sync', 'add', '--peer-url', a.url, a.did, 'th_live'), 'spl fleet sync add on B')
    const row = page.locator('#mesh-table tbody tr', { hasText: 'th_live' })
    await row.waitFor({ timeout: 10_000 })
    const seenAfter = Date.now() - started
    console.log(`the pair appeared on the mesh page ${seenAfter} ms after spl fleet sync add returned on B`)
    expect(seenAfter).toBeLessThan(5000)
    await expect.poll(() => row.textContent()).toContain('→ serves to')
    await shot('02-mesh-live')
  })

  it('approves a held pairing request from the page; records then flow both ways', async () => {
    // A's policy is the default (invite): a request without an invite is held for A's operator.
    const pairing = splInBackground(b.home, ['federation', 'pair', a.url, '--thread', 'th_fed', '--wait', '60'])
    await nav('Requests').click()
    await expect.poll(() => page.locator('h1').textContent()).toBe('Requests')
    const approve = page.getByRole('button', { name: /^Approve fed_/ })
    await approve.waitFor({ timeout: 20_000 })
    await shot('03-requests')
    await approve.click()
    await page.getByText('approved').first().waitFor()
    const r = await pairing
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/active/)
    const fromB = await b.emit('th_fed', 'from B')
    const fromA = await a.emit('th_fed', 'from A')
    await expect.poll(() => a.threadRecordIds('th_fed'), { timeout: 20_000 }).toContain(fromB)
    await expect.poll(() => b.threadRecordIds('th_fed'), { timeout: 20_000 }).toContain(fromA)
    await nav('Links').click()
    await page.getByRole('button', { name: /^Revoke fed_/ }).waitFor()
    await shot('04-links')
  })

  it('pauses a pair from its page (keyboard only); spl fleet sync status says paused', async () => {
    const pairs = await a.api.get<{ data: { pair_id: string; thread_id: string }[] }>('/v1/sync/pairs')
    const id = pairs.data.find((p) => p.thread_id === 'th_fed')!.pair_id
    await nav('Mesh').click()
    const details = page.getByRole('link', { name: `Details of pair ${id}` })
    await details.waitFor()
    await details.focus()
    // The table is updated every second, cell by cell: the focus stays on the link through updates.
    await page.waitForTimeout(2500)
    expect(
      await details.evaluate(
        (el) =>
          el ===
          (globalThis as unknown as { document: { activeElement: { textContent: string | null; id: string } | null } }).document
            .activeElement,
      ),
    ).toBe(true)
    await page.keyboard.press('Enter')
    await expect.poll(() => page.locator('h1').textContent()).toBe(`Pair ${id.slice(0, 8)}`)
    await page.locator('svg.chart').first().waitFor()
    await expect.poll(() => page.locator('#pair-state').textContent()).toBe('running')
    await shot('05-pair')
    const pause = page.getByRole('button', { name: 'Pause' })
    await pause.focus()
    await page.keyboard.press('Enter')
    await expect.poll(() => page.locator('#pair-state').textContent()).toBe('paused')
    // The focus is still on the button (Space or Enter again acts again).
    expect(
      await pause.evaluate(
        (el) =>
          el ===
          (globalThis as unknown as { document: { activeElement: { textContent: string | null; id: string } | null } }).document
            .activeElement,
      ),
    ).toBe(true)
    const status = ok(await a.spl('fleet', 'sync', 'status', id), 'spl fleet sync status')
    expect(status.stdout).toMatch(/^state\s+paused$/m)
    await shot('06-pair-paused')
    // The mesh shows it paused within a second or so.
    await nav('Mesh').click()
    await expect.poll(() => page.locator('#mesh-table tbody tr', { hasText: 'th_fed' }).first().textContent()).toContain('paused')
  })

  it('grants consent from the page with the same validation as the CLI', async () => {
    await nav('Consent').click()
    await page.getByText('No grants').waitFor()
    // A refusal shows its code and its fix.
    await page.getByLabel('To namespace').fill('partner-team')
    await page.getByLabel('Expires').fill('2001-01-01T00:00:00Z')
    await page.getByRole('button', { name: 'Grant', exact: true }).click()
    await page.getByText('INVALID_REQUEST').waitFor()
    await page.getByText(/Fix: give a future ISO 8601 time/).waitFor()
    await shot('07-consent-error')
    await page.getByLabel('Expires').fill('')
    await page.getByLabel('L0').check()
    await page.getByLabel('Threads').fill('th_fed')
    await page.getByRole('button', { name: 'Grant', exact: true }).click()
    await page.getByText(/granted cg_[0-9a-f]{12}/).waitFor()
    const list = JSON.parse(ok(await a.spl('consent', 'list', '--json'), 'spl consent list').stdout) as {
      grants: { target_namespace: string; source_namespace: string; hash_levels: string[]; threads: string[] | '*' }[]
    }
    expect(list.grants).toEqual([
      expect.objectContaining({
        source_namespace: 'default',
        target_namespace: 'partner-team',
        hash_levels: ['L0', 'L1', 'L2', 'L3'],
        threads: ['th_fed'],
      }),
    ])
    await page.locator('[data-grant]').first().waitFor()
    await shot('08-consent')
  })

  it('lists discovered peers by source, verified, and adds a thread pulled from one', async () => {
    await nav('Peers').click()
    await page.getByRole('heading', { name: 'Found by static' }).waitFor({ timeout: 15_000 })
    const row = page.locator('tr', { hasText: 'bee' })
    await expect.poll(() => row.textContent(), { timeout: 15_000 }).toContain('✓ verified')
    await shot('09-peers')
    await page.getByLabel(`Thread for ${b.did}`).fill('th_peers')
    await page.getByRole('button', { name: `Add a thread pulled from ${b.did}` }).click()
    await page.getByText(/pulling th_peers from this peer/).waitFor()
    const pairs = await a.api.get<{ data: { thread_id: string; peer_did: string }[] }>('/v1/sync/pairs')
    expect(pairs.data).toContainEqual(expect.objectContaining({ thread_id: 'th_peers', peer_did: b.did }))
  })

  it('a failing pair shows its last error with the code and the fix on the mesh', async () => {
    // A pair towards a port where nothing listens (another DID than B's: its own line).
    const nobody = 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK'
    await a.api.post('/v1/sync/pairs', { peer_did: nobody, peer_url: 'http://127.0.0.1:1', thread_id: 'th_dead' })
    await nav('Mesh').click()
    const row = page.locator('#mesh-table tbody tr', { hasText: 'th_dead' })
    await expect.poll(() => row.textContent(), { timeout: 15_000 }).toContain('CONNECT_REFUSED')
    expect(await row.textContent()).toContain(
      "Fix: check the peer is running; if cross-machine, make sure it's not bound only to 127.0.0.1",
    )
    expect(await row.textContent()).toContain('failing')
    await shot('10-mesh-failing')
  })

  it('the other pages draw, also in a narrow window', async () => {
    for (const [name, heading] of [['health', 'Health']] as const) {
      await nav(heading).click()
      await expect.poll(() => page.locator('h1').textContent()).toBe(heading)
      await page.waitForLoadState('networkidle')
      await shot(`10-${name}`)
    }
    await page
      .getByText('No drift alerts')
      .or(page.getByRole('table', { name: /Drift alerts/ }))
      .first()
      .waitFor()
    // The skip link (first Tab stop) moves the focus to the content and leaves the page where it is.
    await page.locator('body').focus()
    await page.keyboard.press('Tab')
    expect(
      await page.evaluate(
        () =>
          (globalThis as unknown as { document: { activeElement: { textContent: string | null; id: string } | null } }).document
            .activeElement?.textContent,
      ),
    ).toBe('Skip to content')
    await page.keyboard.press('Enter')
    expect(
      await page.evaluate(
        () =>
          (globalThis as unknown as { document: { activeElement: { textContent: string | null; id: string } | null } }).document
            .activeElement?.id,
      ),
    ).toBe('main')
    expect(await page.locator('h1').textContent()).toBe('Health')
    await page.setViewportSize({ width: 390, height: 800 })
    await nav('Mesh').click()
    await page.locator('#mesh-table tbody tr').first().waitFor()
    await shot('11-mesh-narrow')
    await page.setViewportSize({ width: 1280, height: 900 })
  })
})

describe('the console’s session is good only on the console’s own pages', () => {
  it('without the login every /ui data call is 401, and the page says how to log in', async () => {
    const fresh = await browser.newContext()
    const p = await fresh.newPage()
    await p.goto(`${a.url}/ui/`)
    await p.getByText('Log in to the spl console').waitFor()
    await shot('00-login-needed', p)
    const statuses = await p.evaluate(async () => {
      const paths = [
        '/ui/api/session',
        '/ui/api/v1/sync/mesh',
        '/ui/api/v1/sync/pairs',
        '/ui/api/v1/federation/requests',
        '/ui/api/v1/consent/grants',
      ]
      const out: Record<string, number> = {}
      for (const x of paths) out[x] = (await fetch(x)).status
      out['POST /ui/api/v1/namespaces'] = (
        await fetch('/ui/api/v1/namespaces', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: '{"namespace":"nologin"}',
        })
      ).status
      return out
    })
    expect(Object.values(statuses)).toEqual(Array(6).fill(401))
    await fresh.close()
    expect((await a.api.get<{ data: { namespace: string }[] }>('/v1/namespaces')).data.map((n) => n.namespace)).not.toContain('nologin')
  })

  it('a cross-site form post and fetch with the logged-in browser’s cookie change nothing and read nothing', async () => {
    const pairs = await a.api.get<{ data: { pair_id: string; thread_id: string; state: string }[] }>('/v1/sync/pairs')
    const paused = pairs.data.find((p) => p.thread_id === 'th_fed')!
    expect(paused.state).toBe('paused')
    evilHtml = attackPage(a.url, paused.pair_id)
    const refusedBefore = await uiRefusals(a)
    const p = await context.newPage() // the operator's browser, logged in to A's console
    const seen: { url: string; status: number; cookie: boolean }[] = []
    p.on('response', async (res) => {
      if (!res.url().startsWith(`${a.url}/ui/api/`)) return
      const headers = await res.request().allHeaders()
      seen.push({ url: res.url(), status: res.status(), cookie: (headers['cookie'] ?? '').includes('spl_ui_') })
    })
    await p.goto(`${evilOrigin}/`)
    await p.waitForFunction(() => (globalThis as unknown as { done?: boolean }).done === true, undefined, { timeout: 20_000 })
    const results = await p.evaluate(() => (globalThis as unknown as { results: Record<string, string> }).results)
    await p.close()
    // The page could not read the session, the mesh or the CSRF token…
    expect(results['session']).toBe('unreadable')
    expect(results['mesh']).toBe('unreadable')
    // …and nothing changed: the pair is still paused, no namespace appeared.
    const after = await a.api.get<{ state: string }>(`/v1/sync/pairs/${paused.pair_id}`)
    expect(after.state).toBe('paused')
    expect((await a.api.get<{ data: { namespace: string }[] }>('/v1/namespaces')).data.map((n) => n.namespace)).not.toContain('evil')
    // The browser did send them, with the cookie (same site: another port of 127.0.0.1), and the daemon refused each.
    // (The form posts are navigations the test sees; the fetches' answers are hidden by CORS, so A's metrics count them.)
    console.log('cross-origin navigations to /ui/api:', JSON.stringify(seen))
    expect(seen.length).toBe(2)
    for (const s of seen) expect(s).toMatchObject({ status: 401, cookie: true })
    expect((await uiRefusals(a)) - refusedBefore).toBe(5)
  })
})

/** A page on another origin: form posts to console actions, and credentialed fetches of its data. */
function attackPage(daemon: string, pairId: string): string {
  return `<!doctype html><html><body>
<iframe name="s1"></iframe><iframe name="s2"></iframe>
<form id="resume" method="POST" target="s1" action="${daemon}/ui/api/v1/sync/pairs/${pairId}/resume"><input name="x" value="1"></form>
<form id="ns" method="POST" enctype="text/plain" target="s2" action="${daemon}/ui/api/v1/namespaces"><input name='{"namespace":"evil","x":"' value='"}'></form>
<script>
window.results = {}
async function read(name, url) {
  try { const r = await fetch(url, { credentials: 'include' }); window.results[name] = 'read ' + r.status + ' ' + (await r.text()) }
  catch (e) { window.results[name] = 'unreadable' }
}
async function main() {
  document.getElementById('resume').submit()
  document.getElementById('ns').submit()
  await read('session', '${daemon}/ui/api/session')
  await read('mesh', '${daemon}/ui/api/v1/sync/mesh')
  try { await fetch('${daemon}/ui/api/v1/sync/pairs/${pairId}/resume', { method: 'POST', mode: 'no-cors', credentials: 'include', headers: { 'content-type': 'text/plain' }, body: '{}' }) } catch (e) {}
  await new Promise((r) => setTimeout(r, 1500))
  window.done = true
}
main()
</script></body></html>`
}
