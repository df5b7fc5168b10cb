import { isDiskFull } from '@spl/identity'
import { PullError } from '@spl/transport'
import { backoffMs, DISK_FULL_BACKOFF_CAP_MS, type Pair } from '../pair.js'
import { LeaseLostError } from '../stores.js'
import { isLocalStoreFailure, pairErrorOf, refusesLongpoll } from './failure.js'
import type { PullContext } from './pull-loop.js'
import type { Scheduler } from './scheduler.js'

// What a pair's cycle leads to: the next cycle's time, a backoff, polling instead of long polls.

/** The engine's parts a cycle's outcome changes. */
export interface CycleContext extends PullContext {
  scheduler: Scheduler
  started(): boolean
}

/**
 * A long poll that comes back empty sooner than this (or a quarter of the wait asked, if less)
 * was not held: the peer answers long polls at once.
 */
const FAST_EMPTY_MS = 1000
/** That many such answers in a row and the pair polls instead (SPEC 4.2, like a peer that refuses long polls). */
const FAST_EMPTY_LIMIT = 3

/** Writes a pair's row and keeps it as the live pair. */
async function save(ctx: CycleContext, pair: Pair): Promise<void> {
  await ctx.c.pairs.savePair(pair)
  ctx.pairs.set(pair.pair_id, pair)
}

/** Marks a pair poll-only (kept in memory even when the store cannot write it now). */
async function savePollOnly(ctx: CycleContext, pair: Pair, now: number): Promise<void> {
  const next = { ...(ctx.pairs.get(pair.pair_id) ?? pair), poll_only: true, updated_at: now }
  try {
    await save(ctx, next)
  } catch (err) {
    ctx.pairs.set(pair.pair_id, next)
    ctx.c.logger.error({ err, pair_id: pair.pair_id }, 'could not save pair state')
  }
}

/** After a good cycle: schedules the next one. `emptyLongpollMs`: how long an empty long poll took (null for anything else). */
export async function afterSuccess(ctx: CycleContext, id: string, emptyLongpollMs: number | null): Promise<void> {
  const rt = ctx.runtime(id)
  if (rt.attempt > 0) ctx.c.logger.info({ pair_id: id, failed_attempts: rt.attempt }, 'pulls work again')
  rt.attempt = 0
  rt.backoffMs = 0
  const pair = ctx.pairs.get(id)
  if (!pair || !ctx.started()) return
  const fast = emptyLongpollMs !== null && emptyLongpollMs < Math.min(FAST_EMPTY_MS, ctx.o.longpollTimeoutMs / 4)
  rt.fastEmpty = fast ? rt.fastEmpty + 1 : 0
  if (fast && rt.fastEmpty >= FAST_EMPTY_LIMIT) {
    // A peer that ends every long poll at once would have us ask hundreds of times a second.
    const now = ctx.c.clock.now()
    rt.notice = {
      code: 'LONGPOLL_RETURNS_AT_ONCE',
      message: `the peer answered ${rt.fastEmpty} long polls in a row at once with nothing (in ${emptyLongpollMs} ms, ${ctx.o.longpollTimeoutMs} ms asked): polling every ${pair.poll_interval_ms} ms instead`,
      at: now,
    }
    rt.fastEmpty = 0
    await savePollOnly(ctx, pair, now)
    ctx.c.logger.warn({ pair_id: id, code: rt.notice.code }, rt.notice.message)
    rt.nextAttemptAt = now + pair.poll_interval_ms
    if (ctx.started()) ctx.scheduler.schedule(id, rt.nextAttemptAt)
    return
  }
  if (fast) {
    // Back off from answers that come back too fast: 1 s, then 2 s, before the next long poll.
    rt.nextAttemptAt = ctx.c.clock.now() + backoffMs(rt.fastEmpty, ctx.o.random, 2000)
    ctx.scheduler.schedule(id, rt.nextAttemptAt)
    return
  }
  const longpoll = pair.mode === 'longpoll' && !pair.poll_only
  const at = longpoll ? ctx.c.clock.now() : ctx.c.clock.now() + pair.poll_interval_ms
  rt.nextAttemptAt = longpoll ? null : at
  ctx.scheduler.schedule(id, at)
}

/** After a failed cycle: the pair is failing, retried after a backoff (or polls, or was taken by another replica). */
export async function afterFailure(ctx: CycleContext, id: string, err: unknown, signal: AbortSignal): Promise<void> {
  if (signal.aborted) {
    // Paused, removed, reset, kicked or stopping: whoever aborted decides what happens next.
    return
  }
  const pair = ctx.pairs.get(id)
  if (!pair) return
  if (err instanceof LeaseLostError) {
    // Another replica took the pair (an operator's change there, or after this one stalled).
    ctx.c.logger.info({ pair_id: id }, err.message)
    ctx.scheduler.cancel(id)
    return
  }
  const rt = ctx.runtime(id)
  const now = ctx.c.clock.now()
  // A peer that only does `normal`: remember, retry at once.
  if (refusesLongpoll(err, pair)) {
    rt.notice = { code: 'LONGPOLL_REFUSED', message: 'the peer answers long polls with 400: polling instead', at: now }
    await savePollOnly(ctx, pair, now)
    ctx.c.logger.info({ pair_id: id }, 'peer does not long-poll; polling instead')
    if (ctx.started()) ctx.scheduler.schedule(id, now)
    return
  }
  const last_error = pairErrorOf(err, now)
  const before = ctx.pairs.get(id)!
  // The same failure again: said once in the log, not once per retry.
  const repeated = before.state === 'failing' && before.last_error?.code === last_error.code && !rt.sayNextFailure
  rt.sayNextFailure = false
  if (!(err instanceof PullError) && !isLocalStoreFailure(last_error.code) && !repeated) {
    ctx.c.logger.error({ err, pair_id: id }, 'pull failed unexpectedly')
  }
  rt.attempt++
  // A full disk can be freed at any moment: retry often enough to resume within seconds.
  const cap = isLocalStoreFailure(last_error.code) ? DISK_FULL_BACKOFF_CAP_MS : undefined
  rt.backoffMs = backoffMs(rt.attempt, ctx.o.random, cap)
  rt.nextAttemptAt = now + rt.backoffMs
  rt.metrics.errors.add(1, now)
  const failing: Pair = { ...before, state: 'failing', last_error, updated_at: now }
  try {
    await save(ctx, failing)
  } catch (saveErr) {
    // The store cannot take it (a full disk, most likely): the pair is failing all the same.
    ctx.pairs.set(id, failing)
    // A full disk is said once, by the warning below; anything else here is news of its own.
    if (!repeated && !isDiskFull(saveErr)) ctx.c.logger.error({ err: saveErr, pair_id: id }, 'could not save pair state')
  }
  if (!repeated) ctx.c.logger.warn({ pair_id: id, code: last_error.code, retry_in_ms: rt.backoffMs }, last_error.message)
  if (ctx.started()) ctx.scheduler.schedule(id, rt.nextAttemptAt)
}
