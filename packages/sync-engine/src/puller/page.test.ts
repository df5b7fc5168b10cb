import { canonicalRecord, namespaceOf, type RecordFields, sha256Hex, toEnvelope } from '@spl/records'
import { describe, expect, it } from 'vitest'
import { advance, input, PAIR_ID, setup, signed, storedIds, stranger, useEngineHarness } from '../../test/engine-harness.js'

useEngineHarness()

describe('SyncEngine: ingest checks', () => {
  it('rejects bad records by code, never stores them, and keeps the pair running', async () => {
    const gate = (r: RecordFields) => (namespaceOf(r).startsWith('team') ? 'team' : null)
    const { engine, peer, store } = setup({ components: { namespaces: { namespaceGate: gate } } })
    const good = signed(0)
    const forgedSig = (() => {
      const s = signed(1)
      return { ...toEnvelope(s, 1), sig: Buffer.from(stranger.sign(Buffer.from(s.canonical))).toString('base64url') }
    })()
    const badHash = (() => {
      const s = signed(2)
      return { ...toEnvelope(s, 1), record: { ...s.record, body: { text: 'tampered' } } }
    })()
    const otherThread = toEnvelope(signed(3, { thread: 'th_other' }), 1)
    const namespaced = toEnvelope(signed(4, { body: { namespace: 'team/ops', text: 'x' } }), 1)
    const equivocation = toEnvelope(signed(0, { body: { text: 'a second record at clock 0' } }), 1)
    const webActor = (() => {
      const record: RecordFields = { ...signed(5).record, actor: 'did:web:example.com' }
      return { id: sha256Hex(canonicalRecord(record)), record, sig: signed(5).sig, stored_at: 1 }
    })()
    const garbage = { id: 'nope' }
    peer.emit(toEnvelope(good, 1), forgedSig, badHash, otherThread, namespaced, equivocation, webActor, garbage)
    await engine.start()
    await engine.addPair(input)
    await advance()
    const p = engine.getPair(PAIR_ID)
    expect(p.state).toBe('running')
    expect(p.cursor).toBe('8')
    expect(p.totals.records_received).toBe(8)
    expect(p.totals.records_stored).toBe(1)
    expect(p.totals.rejected).toEqual({
      SIGNATURE_INVALID: 1,
      HASH_MISMATCH: 1,
      THREAD_MISMATCH: 1,
      NAMESPACE_REJECTED: 1,
      CLOCK_CONFLICT: 1,
      UNVERIFIABLE_ACTOR: 1,
      INVALID_RECORD: 1,
    })
    expect(await storedIds(store)).toEqual([good.id])
    expect(await storedIds(store, 'th_other')).toEqual([])
    const log = await engine.rejections(PAIR_ID)
    expect(log).toHaveLength(7)
    const byCode = new Map(log.map((r) => [r.code, r]))
    expect(byCode.get('SIGNATURE_INVALID')?.record_id).toBe(forgedSig.id)
    expect(byCode.get('HASH_MISMATCH')?.record_id).toBe(badHash.id)
    expect(byCode.get('THREAD_MISMATCH')?.record_id).toBe(otherThread.id)
    expect(byCode.get('NAMESPACE_REJECTED')?.message).toContain("'team'")
    expect(byCode.get('CLOCK_CONFLICT')?.record_id).toBe(equivocation.id)
    expect(byCode.get('INVALID_RECORD')?.record_id).toBeNull()
    expect(log.every((r) => r.pair_id === PAIR_ID)).toBe(true)
    expect(engine.metricsOf(PAIR_ID).rejections.sum(3_600_000, Date.now())).toBe(7)
  })

  it('stores a redacted stub, and the full record replaces it when it arrives', async () => {
    const { engine, peer, store } = setup()
    const full = signed(0, { body: { namespace: 'team', text: 'secret' } })
    const stub = { id: full.id, record: { ...full.record, body: { redacted: true } }, stored_at: 1, redacted: true }
    peer.emit(stub)
    await engine.start()
    await engine.addPair(input)
    await advance()
    expect((await store.known([full.id])).get(full.id)).toEqual({ redacted: true })
    peer.emit(toEnvelope(full, 2))
    await advance()
    expect((await store.known([full.id])).get(full.id)).toEqual({ redacted: false })
    expect(engine.getPair(PAIR_ID).totals).toMatchObject({ records_stored: 2, duplicates: 0 })
  })
})
