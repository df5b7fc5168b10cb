import { parentPort } from 'node:worker_threads'
import { verifyRecordSignature } from './sign.js'

// One batch in, one array of booleans out, in order.
parentPort?.on('message', (items: { actor: string; canonical: string; sig: string }[]) => {
  parentPort?.postMessage(items.map((i) => verifyRecordSignature(i.actor, i.canonical, i.sig)))
})
