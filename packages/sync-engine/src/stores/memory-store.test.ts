import { Keypair } from '@spl/identity'
import { type Candidate, precheckEnvelope, type SignedRecord, signRecord, toEnvelope } from '@spl/records'
import { describe, expect, it } from 'vitest'
import { newPair, type Pair } from '../pair.js'
import type { PullCommit } from '../stores.js'
import { MemorySyncStore } from './memory-store.js'

const peer = Keypair.fromSeed(new Uint8Array(32).fill(21))
const THREAD = 'th_memory'

function sign(clock: number, body: Record<string, unknown> = { text: `clock ${clock}` }): SignedRecord {
  return signRecord(peer, { parents: [], thread: THREAD, actor: peer.did, act: 'DO', body, clock, data_type: 'SCALAR' })
}

function candidate(s: SignedRecord, redacted = false): Candidate {
  const c = precheckEnvelope(toEnvelope(s, 1000), THREAD)
  if (!c.ok) throw new Error(c.code)
  return { ...c, redacted }
}

function commitOf(pair: Pair, accepted: Candidate[]): PullCommit {
  const next = { ...pair, cursor: 'c', state: 'running' as const, updated_at: 2 }
  return { pair, accepted, rejected: [], next, now: 2 }
}

describe('MemorySyncStore.commit', () => {
  it('stores by the ingest plan, folds the counters once and returns the committed pair', async () => {
    const store = new MemorySyncStore()
    const pair = newPair('abcdabcdabcdabcd', peer.did, 'http://peer.test', THREAD, 1)
    await store.savePair(pair)
    const a = sign(0)
    const clash = sign(0, { text: 'another record at clock 0' })
    const result = await store.commit(commitOf(pair, [candidate(a), candidate(a), candidate(clash)]))
    expect(result).toMatchObject({ stored: 1, duplicates: 1 })
    expect(result.rejected.map((r) => r.code)).toEqual(['CLOCK_CONFLICT'])
    expect(result.storedRows.map((r) => r.id)).toEqual([a.id])
    expect(result.pair.totals).toMatchObject({ records_stored: 1, duplicates: 1, rejected: { CLOCK_CONFLICT: 1 } })
    expect(await store.getPair(pair.pair_id)).toEqual(result.pair)
  })

  it('a full record replaces its redacted stub with a new row', async () => {
    const store = new MemorySyncStore()
    const pair = newPair('abcdabcdabcdabcd', peer.did, 'http://peer.test', THREAD, 1)
    const a = sign(3)
    await store.commit(commitOf(pair, [candidate(a, true)]))
    const result = await store.commit(commitOf(pair, [candidate(a)]))
    expect(result.stored).toBe(1)
    const rows = await store.listAfter(THREAD, 0, 10)
    expect(rows.map((r) => [r.id, r.redacted, r.seq])).toEqual([[a.id, 0, 2]])
    // No pair row was saved: a one-off pull's commit moves none.
    expect(await store.getPair(pair.pair_id)).toBeUndefined()
  })
})
