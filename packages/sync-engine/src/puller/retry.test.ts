import type { ReconcileRequest } from '@spl/transport'
import { describe, expect, it } from 'vitest'
import { advance, envelope, FakePeer, input, PAIR_ID, setup, storedIds, useEngineHarness } from '../../test/engine-harness.js'

useEngineHarness()

// Issue 13: a rejection whose cause is fixed here (the namespace created) is taken in again by
// id, through the pair's own ingest, without moving the cursor; a forged record stays refused.
describe('SyncEngine.retryRejected', () => {
  it('asks the source for the NAMESPACE_REJECTED ids only, stores them once, keeps the forged one rejected', async () => {
    const peer = new FakePeer()
    const lab = envelope(0, { body: { namespace: 'lab', text: 'lab record' } })
    const plain = envelope(1)
    const forged = { ...envelope(2), sig: `${'A'.repeat(85)}A` }
    peer.emit(lab, plain, forged)
    const asked: string[][] = []
    const byId = new Map([lab, plain, forged].map((e) => [(e as { id: string }).id, e]))
    const transport = Object.assign(peer, {
      reconcile: async (req: ReconcileRequest) => {
        const want = (req.body as { want: string[] }).want
        asked.push(want)
        return { json: { records: want.map((id) => byId.get(id)).filter(Boolean) }, bytesSent: 0, bytesReceived: 0 }
      },
    })
    let labActive = false
    const { engine, store } = setup({
      peer,
      components: {
        transport,
        namespaces: { namespaceGate: (r) => ((r.body as { namespace?: string }).namespace === 'lab' && !labActive ? 'lab' : null) },
      },
    })
    await engine.start()
    await engine.addPair(input)
    await advance()
    const before = engine.getPair(PAIR_ID)
    expect(before.totals.rejected).toMatchObject({ NAMESPACE_REJECTED: 1, SIGNATURE_INVALID: 1 })
    expect(await storedIds(store)).toEqual([(plain as { id: string }).id])

    // Nothing is retried while the cause is still there: the record is rejected again, once.
    labActive = false
    await engine.retryRejected()
    expect((await engine.rejections(PAIR_ID)).filter((r) => r.code === 'NAMESPACE_REJECTED')).toHaveLength(1)

    labActive = true
    const r = await engine.retryRejected()
    expect(r).toMatchObject({ pairs: 1, asked: 1, stored: 1, rejected: 0 })
    expect(asked.at(-1)).toEqual([(lab as { id: string }).id])
    expect((await storedIds(store)).sort()).toEqual([(lab as { id: string }).id, (plain as { id: string }).id].sort())
    const after = engine.getPair(PAIR_ID)
    expect(after.cursor).toBe(before.cursor)
    expect(after.totals.records_stored).toBe(2)
    const left = await engine.rejections(PAIR_ID)
    expect(left.map((x) => x.code)).toEqual(['SIGNATURE_INVALID'])
    // Again: nothing left to retry; the forged one is final.
    expect(await engine.retryRejected()).toMatchObject({ pairs: 0, asked: 0 })
  })
})
