import type { ChangesPage } from '@spl/transport'
import type { Pair } from '../pair.js'
import type { Runtime } from './runtime.js'

/**
 * Clock skew (peer − local), Cristian-style: from the answer with the shortest round trip,
 * server_time is about half a round trip before it arrived. Long-poll round trips include the
 * wait, so only answers to `normal` requests are samples.
 */
export function sampleSkew(
  rt: Runtime,
  page: Pick<ChangesPage, 'sentAt' | 'receivedAt' | 'server_time'>,
  feed: 'normal' | 'longpoll',
): void {
  const rtt = page.receivedAt - page.sentAt
  if (feed === 'normal' && rtt <= rt.minRttMs) {
    rt.minRttMs = Math.max(0, rtt)
    rt.skewMs = page.server_time - (page.sentAt + rtt / 2)
  }
}

/** Lag in seconds (SPEC 4.2): 0 while caught up within the last interval, else time since caught up. */
export function lagSecondsOf(p: Pair, now: number, longpollTimeoutMs: number): number {
  if (p.caught_up_at === null) return p.state === 'starting' ? 0 : Math.round((now - p.created_at) / 1000)
  const interval = p.mode === 'longpoll' && !p.poll_only ? longpollTimeoutMs + 5000 : p.poll_interval_ms * 2
  if (p.state === 'running' && now - (p.last_success_at ?? 0) <= interval && p.caught_up_at === p.last_success_at) return 0
  return Math.max(0, Math.round((now - p.caught_up_at) / 1000))
}
