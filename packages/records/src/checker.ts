import { checkEnvelope, checkEnvelopeAsync, type EnvelopeChecker } from './ingest.js'

/** Checks every record on the calling thread: the simplest, and right for small batches. */
export const inlineChecker: EnvelopeChecker = inlineCheckerFor()

/** inlineChecker with a record size limit other than the default 1 MiB. */
export function inlineCheckerFor(maxRecordBytes?: number): EnvelopeChecker {
  return {
    async checkMany(envelopes, thread) {
      return envelopes.map((raw) => checkEnvelope(raw, thread, maxRecordBytes))
    },
  }
}

/**
 * Runs the cheap checks (schema, canonical form, SHA-256, actor) on the calling thread and the
 * Ed25519 verifications, the costly part, on libuv's threadpool (node:crypto with a callback):
 * every core verifies, without a worker isolate (~25 MB each) or a copy of the page per worker.
 * Each record's verification starts as soon as its precheck passes, so the pool works while the
 * calling thread prechecks the rest of the page.
 */
export const threadPoolChecker: EnvelopeChecker = threadPoolCheckerFor()

/** threadPoolChecker with a record size limit (canonical UTF-8 bytes) other than the default 1 MiB. */
export function threadPoolCheckerFor(maxRecordBytes?: number): EnvelopeChecker {
  return {
    checkMany(envelopes, thread) {
      return Promise.all(envelopes.map((raw) => checkEnvelopeAsync(raw, thread, maxRecordBytes)))
    },
  }
}
