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
export const CHANGES_PATH = '/v1/sync/changes'
export const DEFAULT_CHANGES_LIMIT = 1000
export const MAX_CHANGES_LIMIT = 10_000
export const MAX_CHANGES_BYTES = 8 * 1024 * 1024
export const DEFAULT_LONGPOLL_MS = 25_000
export const MAX_LONGPOLL_MS = 30_000
export const MAX_REQUEST_BODY = 16 * 1024 * 1024
