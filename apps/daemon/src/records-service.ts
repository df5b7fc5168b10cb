import { assertNamespaceId, ConsentRegistry, NamespaceRejectedError } from '@spl/consent'
import { type Keypair, SplError } from '@spl/identity'
import {
  ACTS,
  CanonicalFormError,
  DATA_TYPES,
  DEFAULT_MAX_RECORD_BYTES,
  jsonObjectSchema,
  MAX_CLOCK,
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
  constructor(
    private readonly store: RecordStore,
    private readonly keypair: Keypair,
    private readonly registry: ConsentRegistry,
    private readonly notifier: ThreadNotifier,
    private readonly now: () => number = Date.now,
    private readonly maxRecordBytes: number = DEFAULT_MAX_RECORD_BYTES,
  ) {}

  /** Signs and stores a record by this instance (SPEC 2.5); the same record twice is a no-op. */
  async emit(input: z.output<typeof emitSchema>): Promise<{ created: boolean; row: StoredRow }> {
    const claimed = input.body['namespace']
    if (claimed !== undefined) assertNamespaceId(claimed)
    const bad = this.registry.namespaceGate({ thread: input.thread, body: input.body })
    if (bad !== null) {
      const ns = typeof input.body['namespace'] === 'string' ? input.body['namespace'] : bad
      throw new NamespaceRejectedError(ns, bad)
    }
    const result = await this.store.transaction(async (trx) => {
      const clock = input.clock ?? (await this.store.nextClock(this.keypair.did, input.thread, trx))
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
      return this.store.appendLocal(signed, this.now(), trx)
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

  /** Called for every batch of stored records: wakes long polls and folds registry records. */
  stored(thread: string, rows: readonly StoredRow[]): void {
    if (ConsentRegistry.concerns(thread)) {
      for (const row of rows) if (!row.redacted) this.registry.apply(rowToEnvelope(row))
      // Grants or namespaces changed: every long poll looks again (SPEC 6.2: woken at once).
      this.notifier.notifyAll()
    }
    this.notifier.notify(thread)
  }
}
