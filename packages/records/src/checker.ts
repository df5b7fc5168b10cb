import { type Candidate, type Checked, checkEnvelope, type EnvelopeChecker, precheckEnvelope, signatureVerdict } from './ingest.js'
import { verifyRecordSignaturesAsync } from './sign.js'

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

/** Records prechecked before their verifications are queued together (one buffer of bytes each time). */
const VERIFY_CHUNK = 128

/**
 * Runs the cheap checks (schema, canonical form, SHA-256, actor) on the calling thread and the
 * Ed25519 verifications, the costly part, on libuv's threadpool (node:crypto with a callback):
 * every core verifies, without a worker isolate (~25 MB each) or a copy of the page per worker.
 * Verifications are queued VERIFY_CHUNK records at a time, as soon as those are prechecked, so
 * the pool works while the calling thread prechecks the rest of the page.
 */
export const threadPoolChecker: EnvelopeChecker = threadPoolCheckerFor()

/** threadPoolChecker with a record size limit (canonical UTF-8 bytes) other than the default 1 MiB. */
export function threadPoolCheckerFor(maxRecordBytes?: number): EnvelopeChecker {
  return {
    checkMany(envelopes, thread) {
      const out: Promise<Checked>[] = []
      for (let start = 0; start < envelopes.length; start += VERIFY_CHUNK) {
        const prechecked = envelopes.slice(start, start + VERIFY_CHUNK).map((raw) => precheckEnvelope(raw, thread, maxRecordBytes))
        const signed = prechecked.filter((c): c is Candidate => c.ok && !c.redacted)
        const verdicts = verifyRecordSignaturesAsync(signed.map((c) => ({ actor: c.record.actor, canonical: c.canonical, sig: c.sig! })))
        let k = 0
        for (const c of prechecked) {
          if (c.ok && !c.redacted) {
            const verdict = verdicts[k++]!
            out.push(verdict.then((ok) => signatureVerdict(c, ok)))
          } else out.push(Promise.resolve(c))
        }
      }
      return Promise.all(out)
    },
  }
}
