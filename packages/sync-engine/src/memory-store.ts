import type { Candidate } from '@spl/records'
import type { Pair } from './pair.js'
import { type CommitResult, foldCommit, type PairStore, type PullCommit, type RecordSink, type RejectionEntry } from './stores.js'

/** A record held by the in-memory sink. */
export interface MemoryRecord {
  seq: number
  candidate: Candidate
  origin: string
  stored_at: number
}

/**
 * Pairs and records in memory, for embedding and tests. Commits are atomic because nothing
 * else runs while one executes.
 */
export class MemorySyncStore implements PairStore, RecordSink {
  readonly pairs = new Map<string, Pair>()
  readonly records = new Map<string, MemoryRecord>()
  readonly rejections: RejectionEntry[] = []
  #seq = 0
  readonly #clocks = new Map<string, string>()

  async listPairs(): Promise<Pair[]> {
    return [...this.pairs.values()].map((p) => structuredClone(p))
  }
  async getPair(pairId: string): Promise<Pair | undefined> {
    const p = this.pairs.get(pairId)
    return p && structuredClone(p)
  }
  async savePair(pair: Pair): Promise<void> {
    this.pairs.set(pair.pair_id, structuredClone(pair))
  }
  async listRejections(pairId: string, limit: number): Promise<RejectionEntry[]> {
    return this.rejections
      .filter((r) => r.pair_id === pairId)
      .slice(-limit)
      .reverse()
  }
  async known(ids: readonly string[]): Promise<Map<string, { redacted: boolean }>> {
    const out = new Map<string, { redacted: boolean }>()
    for (const id of ids) {
      const r = this.records.get(id)
      if (r) out.set(id, { redacted: r.candidate.redacted })
    }
    return out
  }
  async commit(batch: PullCommit): Promise<CommitResult> {
    const result: CommitResult = { stored: 0, duplicates: 0, rejected: [], storedIds: [] }
    for (const c of batch.accepted) {
      const have = this.records.get(c.id)
      if (have && !(have.candidate.redacted && !c.redacted)) {
        result.duplicates++
        continue
      }
      const key = `${c.record.actor}\n${c.record.thread}\n${c.record.clock}`
      const owner = this.#clocks.get(key)
      if (owner !== undefined && owner !== c.id) {
        result.rejected.push({
          ok: false,
          code: 'CLOCK_CONFLICT',
          message: `clock ${c.record.clock} already used`,
          id: c.id,
        })
        continue
      }
      this.#clocks.set(key, c.id)
      this.records.set(c.id, {
        seq: ++this.#seq,
        candidate: c,
        origin: batch.pair.peer_did,
        stored_at: batch.now,
      })
      result.stored++
      result.storedIds.push(c.id)
    }
    for (const r of [...batch.rejected, ...result.rejected]) {
      this.rejections.push({
        pair_id: batch.pair.pair_id,
        record_id: r.id,
        code: r.code,
        message: r.message,
        at: batch.now,
      })
    }
    this.pairs.set(batch.next.pair_id, foldCommit(batch.next, result))
    return result
  }
}
