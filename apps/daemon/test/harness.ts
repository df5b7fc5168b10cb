import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { Hono } from 'hono'
import { expect } from 'vitest'
import { createApp } from '../src/app.js'
import { homePaths } from '../src/config.js'
import { initHome } from '../src/home.js'
import { createLogger } from '../src/logger.js'
import { SplDaemon } from '../src/server.js'

// Route tests without a socket: a daemon built on a temporary home (never started, so nothing
// listens and no pair pulls) and its hono app called through app.request().

/** What a request answered: status, content type, and the body parsed as JSON (else the text). */
export interface Answer {
  status: number
  type: string
  json: unknown
}

/** A daemon's app in process; admin requests carry the admin token (app.request() has no loopback peer). */
/** A response read whole: JSON when it parses, else the text (the envelope checks then fail on it). */
export async function answerOf(res: Response): Promise<Answer> {
  const text = await res.text()
  let json: unknown = text
  try {
    json = JSON.parse(text)
  } catch {
    // left as text
  }
  return { status: res.status, type: res.headers.get('content-type') ?? '', json }
}

export interface AppUnderTest {
  daemon: SplDaemon
  app: Hono
  home: string
  token: string
  call(method: string, p: string, init?: { body?: string; headers?: Record<string, string> }): Promise<Answer>
  postJson(p: string, value: unknown, headers?: Record<string, string>): Promise<Answer>
  close(): Promise<void>
}

/** Builds a daemon on a fresh home and its app, without listening; `config` is TOML appended to its config.toml. */
export async function appUnderTest(options: { config?: string } = {}): Promise<AppUnderTest> {
  const home = path.join(mkdtempSync(path.join(os.tmpdir(), 'spl-route-')), 'home')
  initHome(home)
  if (options.config) appendFileSync(homePaths(home).config, `\n${options.config}\n`)
  const daemon = await SplDaemon.create({ home, port: 0, mdns: false, logger: createLogger({ silent: true }) })
  const app = createApp(daemon.ctx)
  const token = readFileSync(homePaths(home).adminToken, 'utf8').trim()
  const call: AppUnderTest['call'] = async (method, p, init = {}) => {
    const res = await app.request(p, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
        ...init.headers,
      },
      ...(init.body === undefined ? {} : { body: init.body }),
    })
    return answerOf(res)
  }
  return {
    daemon,
    app,
    home,
    token,
    call,
    postJson: (p, value, headers = {}) => call('POST', p, { body: JSON.stringify(value), headers }),
    close: async () => {
      await daemon.destroy()
      rmSync(path.dirname(home), { recursive: true, force: true })
    },
  }
}

/** SPEC 7.6: {"object":"error","code":"UPPER_SNAKE","message":…,"fix"?:…} with a 4xx status. */
export function expectErrorEnvelope(a: Answer, status?: number, code?: string): void {
  const ctx = JSON.stringify(a.json).slice(0, 300)
  if (status !== undefined) expect(a.status, ctx).toBe(status)
  expect(a.status, ctx).toBeGreaterThanOrEqual(400)
  expect(a.status, ctx).toBeLessThan(500)
  expect(a.type).toContain('application/json')
  expect(a.json, ctx).toMatchObject({
    object: 'error',
    code: expect.stringMatching(/^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/),
  })
  const env = a.json as Record<string, unknown>
  expect(typeof env['message'], ctx).toBe('string')
  expect((env['message'] as string).length).toBeGreaterThan(0)
  for (const key of Object.keys(env)) expect(['object', 'code', 'message', 'fix']).toContain(key)
  if ('fix' in env) expect(typeof env['fix']).toBe('string')
  if (code !== undefined) expect(env['code'], ctx).toBe(code)
}

/** The clocks of a thread's records in store order. */
export async function threadClocks(d: AppUnderTest, thread: string): Promise<number[]> {
  const a = await d.call('GET', `/v1/threads/${thread}/records?limit=10000`)
  expect(a.status).toBe(200)
  return (a.json as { data: { record: { clock: number } }[] }).data.map((e) => e.record.clock)
}
