import crypto from 'node:crypto'
import { isDidKey } from '@spl/identity'
import { THREAD_RE } from '@spl/records'
import { z } from 'zod'

/** The error envelope every spl door answers with (SPEC 7.6). */
export const errorEnvelopeSchema = z.object({
  object: z.literal('error'),
  code: z.string(),
  message: z.string(),
  fix: z.string().optional(),
})
export type ErrorEnvelope = z.infer<typeof errorEnvelopeSchema>

/** The change feed's answer (SPEC 3); records are checked one by one by the ingest pipeline. */
export const changesResponseSchema = z.object({
  records: z.array(z.unknown()),
  next_cursor: z.string().max(200),
  has_more: z.boolean(),
  server_time: z.number(),
  cursor_reset: z.boolean().optional(),
})
export type ChangesResponse = z.infer<typeof changesResponseSchema>

export const FEEDS = ['normal', 'longpoll'] as const
export type Feed = (typeof FEEDS)[number]
/** How a pair pulls: long polls, or polls at its interval. */
export const PAIR_MODES = ['longpoll', 'poll'] as const
export type PairMode = (typeof PAIR_MODES)[number]
export const CHANGES_PATH = '/v1/sync/changes'
export const DEFAULT_CHANGES_LIMIT = 1000
export const MAX_CHANGES_LIMIT = 10_000
/** The most a change-feed page holds, in UTF-8 bytes of the answer (SPEC 3), and what a puller asks for. */
export const MAX_CHANGES_BYTES = 8 * 1024 * 1024
/** The smallest `max_bytes` a puller may state (a page still carries one record whatever the limit). */
export const MIN_CHANGES_BYTES = 1024
export const DEFAULT_LONGPOLL_MS = 25_000
export const MAX_LONGPOLL_MS = 30_000
export const MAX_REQUEST_BODY = 16 * 1024 * 1024

const THREAD_REQUIRED = 'a thread id (th_…) is required'

/** An integer query parameter: empty or absent gives `dflt`, anything else must be in [min, max]. */
function intParam(dflt: number, min: number, max: number) {
  return z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v === '') return dflt
      if (!/^\d{1,9}$/.test(v) || Number(v) < min || Number(v) > max) {
        ctx.addIssue({ code: 'custom', message: `must be an integer from ${min} to ${max}` })
        return z.NEVER
      }
      return Number(v)
    })
}

/**
 * The change feed's query (SPEC 3), as URL parameters: the source parses it with this schema, the
 * puller builds its `?query` from the same shape (`ChangesQuery`, `toSearchParams`).
 */
export const changesQuerySchema = z.object({
  thread: z.string({ error: THREAD_REQUIRED }).regex(THREAD_RE, THREAD_REQUIRED),
  since: z
    .string()
    .optional()
    .transform((v) => v || undefined),
  limit: intParam(DEFAULT_CHANGES_LIMIT, 1, MAX_CHANGES_LIMIT),
  feed: z.enum(FEEDS, { error: 'must be normal or longpoll' }).default('normal'),
  timeout: intParam(DEFAULT_LONGPOLL_MS, 0, MAX_LONGPOLL_MS),
  /**
   * The most the puller will read, in UTF-8 bytes; the source answers at most this (and at most its
   * own 8 MiB). A puller that leaves it out (older versions) gets the 8 MiB default; a larger value
   * is read as 8 MiB.
   */
  max_bytes: intParam(MAX_CHANGES_BYTES, MIN_CHANGES_BYTES, 999_999_999).transform((v) => Math.min(v, MAX_CHANGES_BYTES)),
  target_namespace: z
    .string()
    .optional()
    .transform((v) => v || undefined),
  include_own: z
    .enum(['true', 'false'], { error: 'must be true or false' })
    .optional()
    .transform((v) => v === 'true'),
})
/** The change-feed query as the puller sends it (every value a URL parameter string). */
export type ChangesQuery = z.input<typeof changesQuerySchema>
/** The change-feed query as the source reads it (defaults applied). */
export type ParsedChangesQuery = z.output<typeof changesQuerySchema>

/** The URL parameters of a change-feed query, leaving out what is undefined. */
export function toSearchParams(query: ChangesQuery): URLSearchParams {
  const params = new URLSearchParams()
  for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, v)
  return params
}

/** URL parameters as the object the query schema parses: the first value of each name. */
export function searchParamsObject(params: URLSearchParams): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of params) if (!Object.hasOwn(out, k)) out[k] = v
  return out
}

/** What creating a pair takes (HTTP body and CLI alike, SPEC 4.1). */
export const pairInputSchema = z
  .object({
    peer_did: z.string().refine(isDidKey, 'must be a did:key (did:key:z6Mk…)'),
    peer_url: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL such as http://localhost:9200' }).max(2000),
    thread_id: z.string().regex(THREAD_RE, 'a thread id is th_ followed by 1-200 of [A-Za-z0-9_.:-]'),
    mode: z.enum(PAIR_MODES).optional(),
    poll_interval_ms: z.number().int().min(100).max(3_600_000).optional(),
  })
  .strict()
export type PairInput = z.input<typeof pairInputSchema>

/** The pair id (SPEC 4.1), the same on every side that names the pair: first 16 hex of sha256(local DID ‖ "\n" ‖ peer DID ‖ "\n" ‖ thread). */
export function pairIdFor(localDid: string, peerDid: string, threadId: string): string {
  return crypto.createHash('sha256').update(`${localDid}\n${peerDid}\n${threadId}`).digest('hex').slice(0, 16)
}

/**
 * The per-peer watch (docs/federation.md, "One conversation per peer"): one long poll that names
 * many threads, each with the caller's cursor, and answers when any of them has something for it.
 */
export const WATCH_PATH = '/v1/sync/watch'
/** Threads one watch may name (a puller with more pairs towards one peer holds more watches). */
export const MAX_WATCH_THREADS = 1000

/** A watch request's body. */
export const watchBodySchema = z
  .object({
    threads: z
      .array(
        z
          .object({
            thread: z.string().regex(THREAD_RE, 'a thread id (th_…)'),
            since: z.string().max(200).nullable().optional(),
          })
          .strict(),
      )
      .min(1)
      .max(MAX_WATCH_THREADS),
    timeout: z.number().int().min(0).max(MAX_LONGPOLL_MS).optional(),
    limit: z.number().int().min(1).max(MAX_CHANGES_LIMIT).optional(),
    max_bytes: z.number().int().min(MIN_CHANGES_BYTES).optional(),
    target_namespace: z.string().max(256).optional(),
  })
  .strict()
  .refine((b) => new Set(b.threads.map((t) => t.thread)).size === b.threads.length, 'each thread once')
export type WatchBody = z.input<typeof watchBodySchema>

/** One thread of a watch's answer: a change-feed page (SPEC 3), or the refusal that thread got. */
export const watchChangeSchema = z.union([
  changesResponseSchema.omit({ server_time: true }).extend({ thread: z.string().regex(THREAD_RE) }),
  z.object({ thread: z.string().regex(THREAD_RE), error: errorEnvelopeSchema }),
])
export type WatchChange = z.infer<typeof watchChangeSchema>

/** A watch's answer: the threads that have something (others are left out), and the source's clock. */
export const watchResponseSchema = z.object({
  changes: z.array(watchChangeSchema),
  server_time: z.number(),
})
export type WatchResponse = z.infer<typeof watchResponseSchema>
