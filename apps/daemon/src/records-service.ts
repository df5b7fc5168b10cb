import { assertNamespaceId, ConsentRegistry, NamespaceRejectedError } from '@spl/consent'
import { type Keypair, SplError } from '@spl/identity'
import {
  ACTS,
  CanonicalFormError,
  DATA_TYPES,
  DEFAULT_MAX_RECORD_BYTES,
  jsonObjectSchema,
  MAX_CLOCK,
  namespaceOf,
  type RecordFields,
  type RecordStore,
  recordId,
  rowToEnvelope,
  type StoredRow,
  signRecord,
  threadId,
  utf8Over,
} from '@spl/records'
import type { ThreadNotifier } from '@spl/sync-engine'
import { z } from 'zod'

/** The body of `POST /v1/records` (SPEC 2.5). */
export const emitSchema = z
  .object({
    act: z.enum(ACTS, { error: `act must be one of ${ACTS.join(', ')}` }),
    thread: threadId,
    body: jsonObjectSchema.default({}),
    parents: z.array(recordId).max(1000).default([]),
    data_type: z.enum(DATA_TYPES).default('SCALAR'),
    clock: z.number().int().min(0).max(MAX_CLOCK).optional(),
    judged_by: recordId.nullable().optional(),
  })
  .strict()
export type EmitInput = z.input<typeof emitSchema>

/** Records one batch emit takes (and 8 MiB of body, checked at the door). */
export const MAX_BATCH_RECORDS = 1000

/** The body of `POST /v1/records/batch`: records as for a single emit, each checked on its own. */
export const batchSchema = z
  .object({
    records: z.array(z.unknown()).min(1).max(MAX_BATCH_RECORDS),
    /** All or nothing: one bad record and none is stored. */
    atomic: z.boolean().default(false),
  })
  .strict()

/** What happened to one record of a batch, by its index in the request. */
export type BatchItem =
  | { index: number; id: string; status: 'created' | 'duplicate' }
  | { index: number; error: { code: string; message: string; fix?: string } }

export interface BatchResult {
  object: 'batch'
  atomic: boolean
  /** False when `atomic` and a record failed: nothing was stored. */
  committed: boolean
  created: number
  duplicates: number
  rejected: number
  results: BatchItem[]
}

/** Rolls an atomic batch back (caught inside emitBatch). */
class BatchAbort extends Error {}

/** A record over `[records] max_bytes` (SPEC 2.4a). */
export class RecordTooLargeError extends SplError {
  override readonly name = 'RecordTooLargeError'
  constructor(size: number, max: number) {
    super('RECORD_TOO_LARGE', `the record is ${size} bytes of canonical UTF-8; the limit is ${max} bytes.`, {
      status: 413,
      fix: 'store the content elsewhere and emit a REFERENCE to it, or split it into several records ([records] max_bytes raises the limit on every instance that must accept them)',
    })
  }
}

/** Emits local records and tells the rest of the daemon when any record lands. */
export class RecordService {
  readonly #listeners: ((thread: string, head: number) => void)[] = []

  constructor(
    private readonly store: RecordStore,
    private readonly keypair: Keypair,
    private readonly registry: ConsentRegistry,
    private readonly notifier: ThreadNotifier,
    private readonly now: () => number = Date.now,
    private readonly maxRecordBytes: number = DEFAULT_MAX_RECORD_BYTES,
  ) {}

  /** The namespace checks of an emit (SPEC 7.2): a valid id, and it and its ancestors active here. */
  #gate(input: z.output<typeof emitSchema>): void {
    const claimed = input.body['namespace']
    if (claimed !== undefined) assertNamespaceId(claimed)
    const bad = this.registry.namespaceGate({ thread: input.thread, body: input.body })
    if (bad !== null) {
      const ns = typeof input.body['namespace'] === 'string' ? input.body['namespace'] : bad
      throw new NamespaceRejectedError(ns, bad)
    }
  }

  /** The record signed by this instance at `clock`; throws INVALID_RECORD, RECORD_TOO_LARGE or CLOCK_EXHAUSTED. */
  #sign(input: z.output<typeof emitSchema>, clock: number): ReturnType<typeof signRecord> {
    if (clock > MAX_CLOCK) {
      throw new SplError('CLOCK_EXHAUSTED', `this instance has used every clock value in ${input.thread}.`, {
        status: 409,
        fix: 'continue in a new thread',
      })
    }
    const record: RecordFields = {
      parents: [...new Set(input.parents)].sort(),
      thread: input.thread,
      actor: this.keypair.did,
      act: input.act,
      body: input.body,
      clock,
      data_type: input.data_type,
      ...(input.judged_by === undefined ? {} : { judged_by: input.judged_by }),
    }
    let signed: ReturnType<typeof signRecord>
    try {
      signed = signRecord(this.keypair, record)
    } catch (err) {
      if (err instanceof CanonicalFormError) {
        throw new SplError('INVALID_RECORD', `the record has no canonical JSON form: ${err.message}`, {
          status: 400,
          fix: 'remove NaN/Infinity numbers and unpaired UTF-16 surrogates from the body',
        })
      }
      throw err
    }
    const size = utf8Over(signed.canonical, this.maxRecordBytes)
    if (size !== null) throw new RecordTooLargeError(size, this.maxRecordBytes)
    return signed
  }

  /** Signs and stores a record by this instance (SPEC 2.5); the same record twice is a no-op. */
  async emit(input: z.output<typeof emitSchema>): Promise<{ created: boolean; row: StoredRow }> {
    this.#gate(input)
    const result = await this.store.transaction(async (trx) => {
      const clock = input.clock ?? (await this.store.nextClock(this.keypair.did, input.thread, trx))
      return this.store.appendLocal(this.#sign(input, clock), this.now(), trx)
    })
    if ('ok' in result) {
      throw new SplError('CLOCK_CONFLICT', result.message, {
        status: 409,
        fix: 'leave out `clock` to let the daemon pick the next one',
      })
    }
    if (result.created) this.stored(input.thread, [result.row])
    return result
  }

  /**
   * Signs and stores up to 1,000 records in one transaction (issue 16). Each is checked as a single
   * emit is (shape, namespace, canonical form, size, clock); a bad one is answered with its code
   * and, unless `atomic`, does not stop the others.
   */
  async emitBatch(raw: readonly unknown[], atomic: boolean): Promise<BatchResult> {
    const results: BatchItem[] = []
    const fail = (index: number, err: unknown) => {
      const e = SplError.from(err)
      results.push({ index, error: { code: e.code, message: e.message, ...(e.fix ? { fix: e.fix } : {}) } })
    }
    const valid: { index: number; input: z.output<typeof emitSchema> }[] = []
    raw.forEach((r, index) => {
      const parsed = emitSchema.safeParse(r)
      if (!parsed.success) {
        const issue = parsed.error.issues[0]
        fail(
          index,
          new SplError(
            'INVALID_REQUEST',
            `records.${index}${issue?.path.length ? `.${issue.path.join('.')}` : ''}: ${issue?.message ?? 'invalid'}`,
            { status: 400 },
          ),
        )
        return
      }
      try {
        this.#gate(parsed.data)
        valid.push({ index, input: parsed.data })
      } catch (err) {
        fail(index, err)
      }
    })
    const stored: StoredRow[] = []
    let committed = !(atomic && results.length > 0)
    if (committed && valid.length > 0) {
      try {
        await this.store.transaction(async (trx) => {
          // The next clock per thread is read once, then counted here (a batch is one writer).
          const next = new Map<string, number>()
          const signed: { index: number; record: ReturnType<typeof signRecord> }[] = []
          for (const { index, input } of valid) {
            try {
              const clock = input.clock ?? next.get(input.thread) ?? (await this.store.nextClock(this.keypair.did, input.thread, trx))
              signed.push({ index, record: this.#sign(input, clock) })
              if (input.clock === undefined) next.set(input.thread, clock + 1)
              else next.delete(input.thread)
            } catch (err) {
              if (SplError.from(err).status >= 500) throw err
              fail(index, err)
              if (atomic) throw new BatchAbort()
            }
          }
          // One plan and one multi-row insert for the whole batch (duplicates and clock conflicts decided as at any ingest).
          const { outcomes, rows } = await this.store.ingestRows(
            signed.map(({ record }) => ({
              ok: true as const,
              id: record.id,
              record: record.record,
              canonical: record.canonical,
              sig: record.sig,
              namespace: namespaceOf(record.record),
              redacted: false,
              storedAt: null,
            })),
            { origin: null, now: this.now() },
            trx,
          )
          outcomes.forEach((o, i) => {
            const { index, record } = signed[i]!
            if ('ok' in o) {
              fail(
                index,
                new SplError('CLOCK_CONFLICT', o.message, { status: 409, fix: 'leave out `clock` to let the daemon pick the next one' }),
              )
            } else results.push({ index, id: record.id, status: o.status === 'duplicate' ? 'duplicate' : 'created' })
          })
          if (atomic && outcomes.some((o) => 'ok' in o)) throw new BatchAbort()
          stored.push(...rows)
        })
      } catch (err) {
        if (!(err instanceof BatchAbort)) throw err
        committed = false
        stored.length = 0
      }
    }
    if (!committed) {
      // Nothing was stored: the records that passed are answered as not stored either.
      for (let i = results.length - 1; i >= 0; i--) if (!('error' in results[i]!)) results.splice(i, 1)
    }
    results.sort((a, b) => a.index - b.index)
    const byThread = new Map<string, StoredRow[]>()
    for (const row of stored) byThread.set(row.thread, [...(byThread.get(row.thread) ?? []), row])
    for (const [thread, rows] of byThread) this.stored(thread, rows)
    return {
      object: 'batch',
      atomic,
      committed,
      created: stored.length,
      duplicates: results.filter((r) => 'status' in r && r.status === 'duplicate').length,
      rejected: results.filter((r) => 'error' in r).length,
      results,
    }
  }

  /** Called for every batch of stored records: wakes long polls and folds registry records. */
  stored(thread: string, rows: readonly StoredRow[]): void {
    if (ConsentRegistry.concerns(thread)) {
      for (const row of rows) if (!row.redacted) this.registry.apply(rowToEnvelope(row))
      // Grants or namespaces changed: every long poll looks again (SPEC 6.2: woken at once).
      this.notifier.notifyAll()
    }
    // The thread's new head, for watches that compare cursors with it (a row without its seq: forget the head).
    let head = 0
    for (const r of rows) head = Math.max(head, r.seq)
    const known = rows.length > 0 && rows.every((r) => r.seq > 0)
    this.notifier.notify(thread, known ? head : undefined)
    for (const fn of this.#listeners) fn(thread, known ? head : 0)
  }

  /** Calls `fn` after each batch of committed records (`head`: their highest seq, 0 when unknown): the replicas are told. */
  onStored(fn: (thread: string, head: number) => void): void {
    this.#listeners.push(fn)
  }
}
