import crypto from 'node:crypto'
import {
  type Candidate,
  type ClockOwner,
  clockKeyOf,
  type KnownId,
  namespaceOf,
  planIngest,
  type RejectionCode,
  type SignedRecord,
  type StoredRow,
  storedRowOf,
} from '@spl/records'
import type { Pair } from '../pair.js'
import {
  type ChangeSource,
  type CommitResult,
  type FeedRow,
  foldCommit,
  type PairStore,
  type PullCommit,
  type RecordSink,
  type RejectionEntry,
} from '../stores.js'

/**
 * Pairs and records in memory, for embedding and tests: a pair store, a record sink and a change
 * source in one. Commits are atomic because nothing else runs while one executes; what a batch
 * stores follows the same planIngest rules as the kysely RecordStore.
 */
export class MemorySyncStore implements PairStore, RecordSink, ChangeSource {
  readonly epoch = crypto.randomBytes(8).toString('hex')
  readonly pairs = new Map<string, Pair>()
  readonly rejections: RejectionEntry[] = []
  readonly #rows: StoredRow[] = []
  readonly #byId = new Map<string, StoredRow>()
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
  async dropRejections(pairId: string, code: RejectionCode, ids: readonly string[]): Promise<void> {
    const drop = new Set(ids)
    for (let i = this.rejections.length - 1; i >= 0; i--) {
      const r = this.rejections[i]!
      if (r.pair_id === pairId && r.code === code && r.record_id !== null && drop.has(r.record_id)) this.rejections.splice(i, 1)
    }
  }
  async known(ids: readonly string[]): Promise<Map<string, KnownId>> {
    const out = new Map<string, KnownId>()
    for (const id of ids) {
      const r = this.#byId.get(id)
      if (r) out.set(id, { redacted: r.redacted === 1 })
    }
    return out
  }

  async headSeq(): Promise<number> {
    return this.#seq
  }
  async threadHead(thread: string): Promise<number> {
    let head = 0
    for (const r of this.#rows) if (r.thread === thread && r.seq > head) head = r.seq
    return head
  }
  async listAfter(thread: string, afterSeq: number, limit: number): Promise<FeedRow[]> {
    const out: FeedRow[] = []
    for (const r of this.#rows) {
      if (r.seq <= afterSeq || r.thread !== thread) continue
      out.push(r)
      if (out.length >= limit) break
    }
    return out
  }

  /** Stores a record signed here (for a service that emits as well as pulls). */
  async appendLocal(signed: SignedRecord, now = Date.now()): Promise<{ created: boolean; row: FeedRow }> {
    const have = this.#byId.get(signed.id)
    if (have) return { created: false, row: have }
    const c: Candidate = { ok: true, ...signed, redacted: false, namespace: namespaceOf(signed.record), storedAt: null }
    const { outcomes, rows } = this.#ingest([c], null, now)
    const o = outcomes[0]!
    if ('ok' in o) throw new Error(`clock ${signed.record.clock} is already used in ${signed.record.thread}`)
    return { created: true, row: rows[0]! }
  }

  /** The highest clock + 1 of `actor` in `thread` (0 for the first). */
  nextClock(actor: string, thread: string): number {
    let next = 0
    for (const r of this.#rows) if (r.actor === actor && r.thread === thread && r.clock >= next) next = r.clock + 1
    return next
  }

  /** Runs planIngest against what is held, then applies its deletes and inserts. */
  #ingest(candidates: readonly Candidate[], origin: string | null, now: number) {
    const known = new Map<string, KnownId>()
    const owners = new Map<string, ClockOwner>()
    for (const c of candidates) {
      const have = this.#byId.get(c.id)
      if (have) known.set(c.id, { redacted: have.redacted === 1 })
      const key = clockKeyOf(c.record)
      const ownerId = this.#clocks.get(key)
      const owner = ownerId === undefined ? undefined : this.#byId.get(ownerId)
      if (owner) owners.set(key, { id: owner.id, redacted: owner.redacted === 1 })
    }
    const plan = planIngest(candidates, known, owners)
    for (const id of plan.deletes) this.#remove(id)
    const rows = plan.inserts.map((k) => {
      const c = candidates[k]!
      const row = { ...storedRowOf(c, { origin, now }), seq: ++this.#seq }
      this.#rows.push(row)
      this.#byId.set(c.id, row)
      this.#clocks.set(clockKeyOf(c.record), c.id)
      return row
    })
    return { outcomes: plan.outcomes, rows }
  }

  #remove(id: string): void {
    const r = this.#byId.get(id)
    if (!r) return
    this.#byId.delete(id)
    this.#rows.splice(this.#rows.indexOf(r), 1)
  }

  async commit(batch: PullCommit): Promise<CommitResult> {
    const { outcomes, rows } = this.#ingest(batch.accepted, batch.pair.peer_did, batch.now)
    const result: Omit<CommitResult, 'pair'> = { stored: rows.length, duplicates: 0, rejected: [], storedRows: rows }
    for (const o of outcomes) {
      if ('ok' in o) result.rejected.push(o)
      else if (o.status === 'duplicate') result.duplicates++
    }
    for (const r of [...batch.rejected, ...result.rejected]) {
      this.rejections.push({ pair_id: batch.pair.pair_id, record_id: r.id, code: r.code, message: r.message, at: batch.now })
    }
    const pair = foldCommit(batch.next, result)
    // Like the kysely store: only an existing pair row moves (a one-off pull has none).
    if (this.pairs.has(pair.pair_id)) this.pairs.set(pair.pair_id, structuredClone(pair))
    return { ...result, pair }
  }
}
