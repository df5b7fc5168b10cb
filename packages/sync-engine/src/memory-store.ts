import crypto from 'node:crypto'
import { type Candidate, namespaceOf, type SignedRecord } from '@spl/records'
import type { ChangeSource, FeedRow } from './feed.js'
import type { Pair } from './pair.js'
import { type CommitResult, foldCommit, type PairStore, type PullCommit, type RecordSink, type RejectionEntry } from './stores.js'

function rowOf(
  c: Pick<Candidate, 'id' | 'record' | 'sig' | 'redacted' | 'namespace'>,
  seq: number,
  origin: string | null,
  now: number,
): FeedRow {
  return {
    seq,
    id: c.id,
    namespace: c.namespace,
    origin,
    redacted: c.redacted ? 1 : 0,
    record: JSON.stringify(c.record),
    sig: c.sig,
    stored_at: now,
  }
}

/**
 * Pairs and records in memory, for embedding and tests: a pair store, a record sink and a change
 * source in one. Commits are atomic because nothing else runs while one executes.
 */
export class MemorySyncStore implements PairStore, RecordSink, ChangeSource {
  readonly epoch = crypto.randomBytes(8).toString('hex')
  readonly pairs = new Map<string, Pair>()
  readonly rejections: RejectionEntry[] = []
  readonly #rows: FeedRow[] = []
  readonly #byId = new Map<string, FeedRow>()
  readonly #clocks = new Map<string, string>()
  #seq = 0

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
      const r = this.#byId.get(id)
      if (r) out.set(id, { redacted: r.redacted === 1 })
    }
    return out
  }

  async headSeq(): Promise<number> {
    return this.#seq
  }
  async listAfter(thread: string, afterSeq: number, limit: number): Promise<FeedRow[]> {
    const out: FeedRow[] = []
    for (const r of this.#rows) {
      if (r.seq <= afterSeq || JSON.parse(r.record).thread !== thread) continue
      out.push(r)
      if (out.length >= limit) break
    }
    return out
  }

  /** Stores a record signed here (for a service that emits as well as pulls). */
  async appendLocal(signed: SignedRecord, now = Date.now()): Promise<{ created: boolean; row: FeedRow }> {
    const have = this.#byId.get(signed.id)
    if (have) return { created: false, row: have }
    const key = `${signed.record.actor}\n${signed.record.thread}\n${signed.record.clock}`
    if (this.#clocks.has(key)) throw new Error(`clock ${signed.record.clock} is already used in ${signed.record.thread}`)
    return { created: true, row: this.#insert({ ...signed, redacted: false, namespace: namespaceOf(signed.record) }, key, null, now) }
  }

  /** The highest clock + 1 of `actor` in `thread` (0 for the first). */
  nextClock(actor: string, thread: string): number {
    let next = 0
    for (const r of this.#rows) {
      const rec = JSON.parse(r.record) as { actor: string; thread: string; clock: number }
      if (rec.actor === actor && rec.thread === thread && rec.clock >= next) next = rec.clock + 1
    }
    return next
  }

  #insert(
    c: Pick<Candidate, 'id' | 'record' | 'sig' | 'redacted' | 'namespace'>,
    clockKey: string,
    origin: string | null,
    now: number,
  ): FeedRow {
    const row = rowOf(c, ++this.#seq, origin, now)
    this.#rows.push(row)
    this.#byId.set(c.id, row)
    this.#clocks.set(clockKey, c.id)
    return row
  }

  #remove(id: string): void {
    const r = this.#byId.get(id)
    if (!r) return
    this.#byId.delete(id)
    this.#rows.splice(this.#rows.indexOf(r), 1)
  }

  async commit(batch: PullCommit): Promise<CommitResult> {
    const result: CommitResult = { stored: 0, duplicates: 0, rejected: [], storedIds: [] }
    for (const c of batch.accepted) {
      const have = this.#byId.get(c.id)
      if (have && !(have.redacted === 1 && !c.redacted)) {
        result.duplicates++
        continue
      }
      const key = `${c.record.actor}\n${c.record.thread}\n${c.record.clock}`
      const owner = this.#clocks.get(key)
      if (owner !== undefined && owner !== c.id) {
        if (this.#byId.get(owner)?.redacted === 1 && !c.redacted) this.#remove(owner)
        else {
          result.rejected.push({ ok: false, code: 'CLOCK_CONFLICT', message: `clock ${c.record.clock} already used`, id: c.id })
          continue
        }
      }
      if (have) this.#remove(c.id)
      this.#insert(c, key, batch.pair.peer_did, batch.now)
      result.stored++
      result.storedIds.push(c.id)
    }
    for (const r of [...batch.rejected, ...result.rejected]) {
      this.rejections.push({ pair_id: batch.pair.pair_id, record_id: r.id, code: r.code, message: r.message, at: batch.now })
    }
    // Like the kysely store: only an existing pair row moves (a one-off pull has none).
    if (this.pairs.has(batch.next.pair_id)) this.pairs.set(batch.next.pair_id, foldCommit(batch.next, result))
    return result
  }
}
