import { z } from 'zod'

export const ACTS = ['INTEND', 'DO', 'KNOW', 'LEARN', 'GET', 'PUT', 'CALL', 'MAP'] as const
export const DATA_TYPES = ['SCALAR', 'FORMULA', 'DISTRIBUTION', 'REFERENCE', 'MORPHISM', 'VOID'] as const
export type Act = (typeof ACTS)[number]
export type DataType = (typeof DATA_TYPES)[number]

export const THREAD_RE = /^th_[A-Za-z0-9_.:-]{1,200}$/
export const RECORD_ID_RE = /^[0-9a-f]{64}$/
export const SIG_RE = /^[A-Za-z0-9_-]{86}$/
export const MAX_CLOCK = Number.MAX_SAFE_INTEGER

export const threadId = z.string().regex(THREAD_RE, 'a thread id is th_ followed by 1-200 of [A-Za-z0-9_.:-]')
export const recordId = z.string().regex(RECORD_ID_RE, 'a record id is 64 lowercase hex characters')
/**
 * A JSON object, passed through as the very object that was parsed. Bodies are data: a copy made
 * key by key (what `z.record` does) would run `__proto__` through the prototype setter and lose
 * it, so the record would no longer hash to its id. JSON.parse keeps `__proto__` as an own key.
 */
export const jsonObjectSchema = z.custom<Record<string, unknown>>((v) => typeof v === 'object' && v !== null && !Array.isArray(v), {
  error: 'expected a JSON object',
})
const jsonObject = jsonObjectSchema

/** The eight fields of a record (SPEC 2.1); `judged_by` is the only one not hashed. */
export const recordSchema = z
  .object({
    parents: z.array(recordId).max(1000),
    thread: threadId,
    actor: z.string().min(8).max(200),
    act: z.enum(ACTS),
    body: jsonObject,
    clock: z.number().int().min(0).max(MAX_CLOCK),
    data_type: z.enum(DATA_TYPES),
    judged_by: recordId.nullable().optional(),
  })
  .strict()
  .refine((r) => r.parents.every((p, i) => i === 0 || r.parents[i - 1]! < p), {
    message: 'parents must be sorted ascending without duplicates',
    path: ['parents'],
  })

export type RecordFields = {
  parents: string[]
  thread: string
  actor: string
  act: Act
  body: Record<string, unknown>
  clock: number
  data_type: DataType
  judged_by?: string | null
}

/** How a record travels and is stored (SPEC 2.3). */
export const envelopeSchema = z.object({
  id: recordId,
  record: z.unknown(),
  sig: z.string().optional(),
  stored_at: z.number().int().nonnegative().optional(),
  redacted: z.boolean().optional(),
})

export interface Envelope {
  id: string
  record: RecordFields
  sig?: string
  stored_at: number
  redacted?: boolean
}

/** The namespace a record lives in: `body.namespace`, `default` when absent. */
export function namespaceOf(record: Pick<RecordFields, 'body'>): string {
  const ns = record.body['namespace']
  return typeof ns === 'string' ? ns : 'default'
}

export const REDACTED_BODY = Object.freeze({ redacted: true }) as Readonly<Record<string, unknown>>
