import { existsSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { type Checked, checkEnvelope, type SignatureVerifier } from './ingest.js'
import { verifyRecordSignature } from './sign.js'
import type { WorkerJob } from './verify-worker.js'

type Item = { actor: string; canonical: string; sig: string }

/** Verifies on the calling thread: simplest, and right for small batches. */
export const inlineVerifier: SignatureVerifier = {
  async verifyMany(items) {
    return items.map((i) => verifyRecordSignature(i.actor, i.canonical, i.sig))
  },
  async checkMany(envelopes, thread) {
    return envelopes.map((raw) => checkEnvelope(raw, thread))
  },
  async close() {},
}

function workerUrl(): URL {
  const here = new URL('./verify-worker.js', import.meta.url)
  if (existsSync(fileURLToPath(here))) return here
  // Running from sources (tests): the compiled worker sits in dist/.
  return new URL(here.href.replace('/src/', '/dist/'))
}

interface Job {
  message: WorkerJob
  resolve: (answer: unknown[]) => void
  reject: (err: Error) => void
}

/**
 * Spreads Ed25519 verification over `threads` worker threads (verification is the ceiling of
 * ingest: ~8,700/s per core). Batches smaller than `inlineBelow` are verified inline.
 */
export function createWorkerVerifier(options: { threads?: number; inlineBelow?: number } = {}): SignatureVerifier {
  const size = Math.max(1, options.threads ?? Math.min(4, availableParallelism()))
  const inlineBelow = options.inlineBelow ?? 16
  const all: Worker[] = []
  const idle: Worker[] = []
  const queue: Job[] = []
  const busy = new Map<Worker, Job>()
  let closed = false
  const url = workerUrl()
  // A worker that dies fails only its own batch and is replaced, so the pool never shrinks.
  function spawnWorker(): void {
    // Bounded heap: a worker holds one chunk of one page at a time.
    const w = new Worker(url, { resourceLimits: { maxOldGenerationSizeMb: 96 } })
    w.unref()
    w.on('error', (err) => {
      const job = busy.get(w)
      busy.delete(w)
      all.splice(all.indexOf(w), 1)
      const at = idle.indexOf(w)
      if (at >= 0) idle.splice(at, 1)
      job?.reject(err)
      if (!closed) {
        spawnWorker()
        pump()
      }
    })
    w.on('message', (answer: unknown[]) => {
      const job = busy.get(w)
      busy.delete(w)
      idle.push(w)
      job?.resolve(answer)
      pump()
    })
    all.push(w)
    idle.push(w)
  }
  for (let i = 0; i < size; i++) spawnWorker()
  function pump(): void {
    while (idle.length > 0 && queue.length > 0) {
      const worker = idle.pop()!
      const job = queue.shift()!
      busy.set(worker, job)
      worker.postMessage(job.message)
    }
  }
  function run<T>(message: WorkerJob): Promise<T[]> {
    return new Promise((resolve, reject) => {
      queue.push({ message, resolve: resolve as (answer: unknown[]) => void, reject })
      pump()
    })
  }
  /** Splits `items` into one chunk per worker and joins the answers in order. */
  async function spread<I, T>(items: readonly I[], job: (chunk: I[]) => WorkerJob): Promise<T[]> {
    const chunk = Math.ceil(items.length / size)
    const parts: Promise<T[]>[] = []
    for (let i = 0; i < items.length; i += chunk) parts.push(run<T>(job(items.slice(i, i + chunk))))
    return (await Promise.all(parts)).flat()
  }
  return {
    async verifyMany(items) {
      if (closed) throw new Error('verifier is closed')
      if (items.length < inlineBelow) return inlineVerifier.verifyMany(items)
      return spread<Item, boolean>(items, (chunk) => ({ kind: 'verify', items: chunk }))
    },
    async checkMany(envelopes, thread) {
      if (closed) throw new Error('verifier is closed')
      if (envelopes.length < inlineBelow) return inlineVerifier.checkMany(envelopes, thread)
      return spread<unknown, Checked>(envelopes, (chunk) => ({ kind: 'check', envelopes: chunk, thread }))
    },
    async close() {
      closed = true
      for (const job of queue.splice(0)) job.reject(new Error('verifier is closed'))
      // Jobs already in a worker get no answer once it is terminated: settle them here.
      for (const job of busy.values()) job.reject(new Error('verifier is closed'))
      busy.clear()
      await Promise.all(all.map((w) => w.terminate()))
    },
  }
}
