import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { Keypair } from '@spl/identity'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PeerClient } from './client.js'
import { createResponseProof, MemoryReplayStore, PROOF_HEADER, ReplayCache, type RequestProof, verifyRequestProof } from './proof.js'

// SPEC 7.4: the puller knows the DID of the source it pulls from (the pair's peer_did), so its
// proofs name it in `aud`: a source that accepts only its own DID (as the daemon's feed does)
// serves PeerClient, and a proof PeerClient made for one source is worth nothing at another.

const puller = Keypair.generate()
const source = Keypair.generate()
const seen: RequestProof[] = []
let server: http.Server
let url: string

beforeAll(async () => {
  const replay = new ReplayCache(new MemoryReplayStore())
  server = http.createServer(async (req, res) => {
    try {
      const proof = await verifyRequestProof(req.headers['spl-proof'] as string | undefined, {
        selfDid: source.did,
        method: req.method ?? 'GET',
        pathAndQuery: req.url ?? '',
        replay,
      })
      seen.push(proof)
      const body = JSON.stringify({ records: [], next_cursor: 'c1.0000000000000000.0', has_more: false, server_time: Date.now() })
      const rp = await createResponseProof(source, { callerDid: proof.iss, jti: proof.jti, body })
      res.writeHead(200, { 'content-type': 'application/json', [PROOF_HEADER]: rp })
      res.end(body)
    } catch (err) {
      res.writeHead(401, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ object: 'error', code: 'PROOF_INVALID', message: String((err as Error).message) }))
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve))
})

describe('PeerClient signs for the source it pulls from', () => {
  it('aud = the pair’s peer DID, accepted by a source that takes only its own DID', async () => {
    const page = await new PeerClient(puller).fetchChanges({
      peerUrl: url,
      peerDid: source.did,
      thread: 'th_aud',
      cursor: null,
      feed: 'normal',
    })
    expect(page.has_more).toBe(false)
    expect(seen.at(-1)).toMatchObject({ iss: puller.did, aud: source.did, htm: 'GET' })
  })

  it('pulling with another peer DID makes a proof this source refuses', async () => {
    const other = Keypair.generate()
    await expect(
      new PeerClient(puller).fetchChanges({ peerUrl: url, peerDid: other.did, thread: 'th_aud', cursor: null, feed: 'normal' }),
    ).rejects.toMatchObject({ code: 'HTTP_4XX', remoteCode: 'PROOF_INVALID', message: expect.stringMatching(/not this instance/) })
  })
})
