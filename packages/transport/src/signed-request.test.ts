import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { Keypair } from '@spl/identity'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createResponseProof, PROOF_HEADER, ReplayCache, verifyRequestProof } from './proof.js'
import { PeerRefusedError, signedRequest } from './signed-request.js'

const caller = Keypair.fromSeed(new Uint8Array(32).fill(31))
const peer = Keypair.fromSeed(new Uint8Array(32).fill(32))
const forger = Keypair.fromSeed(new Uint8Array(32).fill(33))
let url = ''
let server: http.Server

// A peer door that refuses: signed by the peer (/signed), by someone else (/forged), or not at all (/bare).
beforeAll(async () => {
  server = http.createServer(async (req, res) => {
    const proof = await verifyRequestProof(req.headers['spl-proof'] as string, {
      selfDid: peer.did,
      method: req.method ?? 'POST',
      pathAndQuery: req.url ?? '/',
      replay: new ReplayCache(),
    })
    const body = JSON.stringify({ object: 'error', code: 'PAIR_REJECTED', message: 'no' })
    const headers: Record<string, string> = { 'content-type': 'application/json' }
    const signer = req.url === '/signed' ? peer : req.url === '/forged' ? forger : null
    if (signer) headers[PROOF_HEADER] = await createResponseProof(signer, { callerDid: proof.iss, jti: proof.jti, body })
    res.writeHead(403, headers).end(body)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(() => new Promise<void>((r) => server.close(() => r())))

async function refusalAt(path: string): Promise<PeerRefusedError> {
  const err = await signedRequest(caller, { peerUrl: url, method: 'POST', path, body: {}, aud: peer.did }).catch((e: unknown) => e)
  expect(err).toBeInstanceOf(PeerRefusedError)
  return err as PeerRefusedError
}

describe('signedRequest: a refusal counts as the peer’s only when the peer signed it', () => {
  it('signed by the peer: signed, with its code', async () => {
    const e = await refusalAt('/signed')
    expect([e.httpStatus, e.remoteCode, e.signed]).toEqual([403, 'PAIR_REJECTED', true])
  })
  it('unsigned, or signed by another key: the code is kept, but not believed', async () => {
    expect((await refusalAt('/bare')).signed).toBe(false)
    expect((await refusalAt('/forged')).signed).toBe(false)
  })
})
