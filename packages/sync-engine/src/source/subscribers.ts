import { RollingCounter } from '../rolling-counter.js'

/** A subscriber counts as live when it pulled within this window (and did not walk away since). */
export const SUBSCRIBER_LIVE_MS = 120_000

/** What the source served one caller on one thread. */
export interface SubscriberEntry {
  peer_did: string
  thread_id: string
  last_pull_at: number
  served: number
  redacted: number
  hidden: number
  window: RollingCounter
  /** Requests of this caller on this thread being answered now (a long poll waits here). */
  waiting: number
  /** When the caller last hung up on a request before its answer (a pause or a stop), if it did since its last pull. */
  left_at: number | null
}

/** Source-side counts per caller and thread: who pulls from us and what they were given. */
export class SubscriberStats {
  readonly #entries = new Map<string, SubscriberEntry>()

  #entry(peerDid: string, thread: string, now: number): SubscriberEntry {
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
        waiting: 0,
        left_at: null,
      }
      this.#entries.set(key, e)
    }
    return e
  }

  /** A request of `peerDid` on `thread` is being answered (call `end` when it is over). */
  begin(peerDid: string, thread: string, now: number): void {
    this.#entry(peerDid, thread, now).waiting++
  }

  /** The request `begin` announced is over; `gone` when the caller hung up before the answer. */
  end(peerDid: string, thread: string, now: number, gone: boolean): void {
    const e = this.#entry(peerDid, thread, now)
    e.waiting = Math.max(0, e.waiting - 1)
    if (gone) e.left_at = now
  }

  /** An answer given: counts it and marks the caller live again. */
  record(peerDid: string, thread: string, counts: { served: number; redacted: number; hidden: number }, now: number): void {
    const e = this.#entry(peerDid, thread, now)
    e.last_pull_at = now
    e.left_at = null
    e.served += counts.served
    e.redacted += counts.redacted
    e.hidden += counts.hidden
    e.window.add(counts.served + counts.redacted, now)
  }

  /**
   * Whether `e` pulls from us now: a request of it is open (a long poll), or it was answered
   * within SUBSCRIBER_LIVE_MS and has not hung up since (a puller that paused its pair aborts its
   * long poll, and is not live from that moment).
   */
  isLive(e: SubscriberEntry, now: number): boolean {
    return e.waiting > 0 || (e.left_at === null && now - e.last_pull_at < SUBSCRIBER_LIVE_MS)
  }

  list(): SubscriberEntry[] {
    return [...this.#entries.values()]
  }
}
