import { Keypair } from '@spl/identity'
import { createRequestProof, PROOF_HEADER } from '@spl/transport'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type AppUnderTest, answerOf, appUnderTest, expectErrorEnvelope } from '../../test/harness.js'
import { createApp } from '../app.js'
import { createLogger } from '../logger.js'
import { SplDaemon } from '../server.js'

// SPEC 7.4 at the peer door, through app.request(): the daemon's change feed wants aud = its
// own DID, a proof inside the window, and a jti it has never seen — also before a restart.

const caller = Keypair.generate()
const PQ = '/v1/sync/changes?thread=th_proofs&feed=normal'

describe('GET /v1/sync/changes checks the SPL-Proof (SPEC 7.4)', () => {
  let d: AppUnderTest
  beforeAll(async () => {
    d = await appUnderTest()
  })
  afterAll(async () => {
    await d.close()
  })

  const ask = async (proof: string, app = d.app) => answerOf(await app.request(PQ, { headers: { [PROOF_HEADER]: proof } }))
  const proofFor = (aud: string, nowMs?: number) => createRequestProof(caller, { method: 'GET', pathAndQuery: PQ, aud }, nowMs)

  it('a proof for this daemon is served once; the second time is a replay', async () => {
    const { token } = await proofFor(d.daemon.did)
    expect((await ask(token)).status).toBe(200)
    const again = await ask(token)
    expectErrorEnvelope(again, 401, 'PROOF_INVALID')
    expect(JSON.stringify(again.json)).toMatch(/replay/)
  })

  it('aud "*" and aud = another daemon are refused', async () => {
    const star = await ask((await proofFor('*')).token)
    expectErrorEnvelope(star, 401, 'PROOF_INVALID')
    expect(JSON.stringify(star.json)).toMatch(/aud \\"\*\\" is not accepted/)
    const other = await ask((await proofFor(Keypair.generate().did)).token)
    expectErrorEnvelope(other, 401, 'PROOF_INVALID')
    expect(JSON.stringify(other.json)).toMatch(/not this instance/)
  })

  it('a proof made 95 s ago (past exp + 30 s) is refused', async () => {
    expectErrorEnvelope(await ask((await proofFor(d.daemon.did, Date.now() - 95_000)).token), 401, 'PROOF_INVALID')
  })

  it('a used jti is refused by the next daemon on the same home (durable), a fresh proof is served', async () => {
    const { token } = await proofFor(d.daemon.did)
    expect((await ask(token)).status).toBe(200)
    await d.daemon.destroy()
    const next = await SplDaemon.create({ home: d.home, port: 0, mdns: false, logger: createLogger({ silent: true }) })
    try {
      const app = createApp(next.ctx)
      const replayed = await ask(token, app)
      expectErrorEnvelope(replayed, 401, 'PROOF_INVALID')
      expect(JSON.stringify(replayed.json)).toMatch(/replay/)
      expect((await ask((await proofFor(next.did)).token, app)).status).toBe(200)
    } finally {
      await next.destroy()
    }
  })
})

describe('JSON doors refuse other content types with 415 (SPEC 7.1), token or not', () => {
  let d: AppUnderTest
  beforeAll(async () => {
    d = await appUnderTest()
  })
  afterAll(async () => {
    await d.close()
  })

  const doors: [string, unknown][] = [
    ['/v1/records', { act: 'INTEND', thread: 'th_415', body: { text: 'typed wrong' } }],
    ['/v1/namespaces', { namespace: 'typed-wrong' }],
    ['/v1/consent/grants', { target_namespace: 'public' }],
    ['/v1/consent/bindings', { did: Keypair.generate().did, namespace: 'default' }],
    ['/v1/sync/pairs', { peer_did: Keypair.generate().did, peer_url: 'http://127.0.0.1:1', thread_id: 'th_415' }],
  ]

  for (const [door, body] of doors) {
    it(`POST ${door} with text/plain or a form type → 415 UNSUPPORTED_MEDIA_TYPE; application/json works`, async () => {
      const count = await d.daemon.ctx.store.count()
      for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'text/plain;charset=UTF-8']) {
        expectErrorEnvelope(
          await d.call('POST', door, { body: JSON.stringify(body), headers: { 'content-type': type } }),
          415,
          'UNSUPPORTED_MEDIA_TYPE',
        )
      }
      expect(await d.daemon.ctx.store.count()).toBe(count)
      const okay = await d.call('POST', door, {
        body: JSON.stringify(body),
        headers: { 'content-type': 'application/json; charset=utf-8' },
      })
      expect(okay.status, JSON.stringify(okay.json)).toBeLessThan(300)
    })
  }
})
