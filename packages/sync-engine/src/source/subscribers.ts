import { RollingCounter } from '../rolling-counter.js'

/** What the source served one caller on one thread. */
export interface SubscriberEntry {
  peer_did: string
  thread_id: string
  last_pull_at: number
  served: number
  redacted: number
  hidden: number
  window: RollingCounter
}

/** Source-side counts per caller and thread: who pulls from us and what they were given. */
export class SubscriberStats {
  readonly #entries = new Map<string, SubscriberEntry>()

  record(peerDid: string, thread: string, counts: { served: number; redacted: number; hidden: number }, now: number): void {
    const key = `${peerDid}\n${thread}`
    let e = this.#entries.get(key)
    if (!e) {
      e = {
        peer_did: peerDid,
        thread_id: thread,
        last_pull_at: now,
        served: 0,
        redacted: 0,
        hidden: 0,
        window: new RollingCounter(),
      }
      this.#entries.set(key, e)
    }
    e.last_pull_at = now
    e.served += counts.served
    e.redacted += counts.redacted
    e.hidden += counts.hidden
    e.window.add(counts.served + counts.redacted, now)
  }

  list(): SubscriberEntry[] {
    return [...this.#entries.values()]
  }
}
