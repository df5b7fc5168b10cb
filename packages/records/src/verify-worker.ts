import { parentPort } from 'node:worker_threads'
import { checkEnvelope } from './ingest.js'
import { verifyRecordSignature } from './sign.js'

/** A job for a verification worker; the answer is one entry per item, in order. */
export type WorkerJob =
  | { kind: 'verify'; items: { actor: string; canonical: string; sig: string }[] }
  | { kind: 'check'; envelopes: unknown[]; thread: string | null }

parentPort?.on('message', (job: WorkerJob) => {
  if (job.kind === 'verify') {
    parentPort?.postMessage(job.items.map((i) => verifyRecordSignature(i.actor, i.canonical, i.sig)))
    return
  }
  // The canonical string is not needed past this point: not sending it back halves the copy.
  parentPort?.postMessage(
    job.envelopes.map((raw) => {
      const c = checkEnvelope(raw, job.thread)
      return c.ok ? { ...c, canonical: '' } : c
    }),
  )
})
