import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { readDidWebDocument } from '@spl/discovery'
import { afterEach, describe, expect, it } from 'vitest'
import { answerOf, expectErrorEnvelope } from '../../test/harness.js'
import { createApp } from '../app.js'
import { homePaths } from '../config.js'
import { initHome } from '../home.js'
import { createLogger } from '../logger.js'
import { SplDaemon } from '../server.js'

// GET /.well-known/did.json (SPEC 8): an open door that serves the did:web document of
// identity.web_domain, and a 404 envelope when none is set.

const open: { daemon: SplDaemon; home: string }[] = []
afterEach(async () => {
  for (const { daemon, home } of open.splice(0)) {
    await daemon.destroy()
    rmSync(path.dirname(home), { recursive: true, force: true })
  }
})

/** A daemon (not listening) on a fresh home whose config.toml got `edit` applied. */
async function daemonWith(edit: (toml: string) => string = (t) => t): Promise<SplDaemon> {
  const home = path.join(mkdtempSync(path.join(os.tmpdir(), 'spl-didweb-')), 'home')
  initHome(home)
  const file = homePaths(home).config
  writeFileSync(file, edit(readFileSync(file, 'utf8')))
  const d = await SplDaemon.create({ home, port: 0, mdns: false, logger: createLogger({ silent: true }) })
  open.push({ daemon: d, home })
  return d
}

const withDomain = (domain: string) => (t: string) => t.replace('[identity]\n', `[identity]\nweb_domain = "${domain}"\n`)

describe('GET /.well-known/did.json', () => {
  it('answers 404 with the envelope and the fix when identity.web_domain is not set', async () => {
    const d = await daemonWith()
    const a = await answerOf(await createApp(d.ctx).request('/.well-known/did.json'))
    expectErrorEnvelope(a, 404, 'DID_NOT_FOUND')
    expect((a.json as { fix: string }).fix).toMatch(/web_domain/)
  })

  it('serves the document of web_domain, without a token, naming the URL it was asked at', async () => {
    const d = await daemonWith(withDomain('alice.dev'))
    const res = await createApp(d.ctx).request('http://10.1.2.3:9100/.well-known/did.json')
    expect(res.status).toBe(200)
    const doc = (await res.json()) as { id: string; alsoKnownAs: string[] }
    expect(doc.id).toBe('did:web:alice.dev')
    expect(doc.alsoKnownAs).toEqual([d.did])
    expect(readDidWebDocument(doc, 'did:web:alice.dev', 0)).toMatchObject({ didKey: d.did, url: 'http://10.1.2.3:9100' })
  })

  it('names advertise_url when it is set, and a port form of the domain', async () => {
    const d = await daemonWith((t) =>
      withDomain('alice.dev:8443')(t).replace('advertise_url = ""', 'advertise_url = "https://alice.dev:8443/"'),
    )
    const doc = await (await createApp(d.ctx).request('http://127.0.0.1:9100/.well-known/did.json')).json()
    expect(readDidWebDocument(doc, 'did:web:alice.dev%3A8443', 0)).toMatchObject({ didKey: d.did, url: 'https://alice.dev:8443' })
  })

  it('a web_domain that is no domain is a configuration error (500 with the reason), not the caller’s', async () => {
    const d = await daemonWith(withDomain('https://alice.dev'))
    const a = await answerOf(await createApp(d.ctx).request('/.well-known/did.json'))
    expect(a.status).toBe(500)
    expect(a.json).toMatchObject({ object: 'error', code: 'CONFIG_INVALID', message: expect.stringContaining('web_domain') })
  })
})
