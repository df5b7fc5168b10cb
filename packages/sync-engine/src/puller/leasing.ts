import type { Logger } from '../logger.js'
import type { PairLeases } from '../stores.js'
import type { PullContext } from './pull-loop.js'
import type { Scheduler } from './scheduler.js'

/** Leases a replica takes in one round at most: 10,000 free pairs are taken over 5 rounds, each short. */
const MAX_TAKE = 2000

/** What the keeper asks of the engine it keeps leases for. */
export interface LeaseHost {
  now(): number
  logger: Logger
  /** Pairs this replica has just taken: load their rows as they are now and start them. */
  gained(pairIds: readonly string[]): Promise<void>
  /** Pairs this replica no longer holds (or hands back): stop their loops without writing. */
  lost(pairIds: readonly string[]): Promise<void>
  /** Re-reads pair rows written by other replicas; returns the live pair ids (not paused or stopped). */
  refresh(): Promise<ReadonlySet<string>>
}

/**
 * Keeps this replica's share of the pairs (SPEC 11): every third of the lease time it says it is
 * alive, renews what it holds, learns of pairs other replicas made or changed, takes free or
 * expired leases up to its fair share (live pairs ÷ live replicas, rounded up) and hands back
 * what is above it, so a replica that joins gets work and one that dies loses its pairs to the
 * others within a lease time.
 */
export class LeaseKeeper {
  #timer: ReturnType<typeof setInterval> | null = null
  #ticking: Promise<void> | null = null
  #failing = false
  /** Rounds and operators' changes run one at a time: a lease just seized is not handed back before its first write. */
  #chain: Promise<unknown> = Promise.resolve()

  constructor(
    private readonly leases: PairLeases,
    private readonly host: LeaseHost,
  ) {}

  /** The first round at once (its pairs start when it ends), then one every ttl/3. */
  async start(): Promise<void> {
    await this.tick()
    this.#timer = setInterval(() => void this.tick(), Math.max(50, Math.floor(this.leases.ttlMs / 3)))
    this.#timer.unref?.()
  }

  /** Stops renewing and hands every lease back, so the other replicas take them at once. */
  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = null
    await this.#ticking
    const held = this.leases.heldIds()
    await this.host.lost(held)
    await this.leases.release(held, this.host.now()).catch(() => {})
    await this.leases.close?.()
  }

  /** One round (rounds never overlap: a slow database makes the next one wait). */
  tick(): Promise<void> {
    this.#ticking ??= this.exclusive(() => this.#round()).finally(() => {
      this.#ticking = null
    })
    return this.#ticking
  }

  /** Runs `fn` when no round and no other such change is running. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#chain.then(fn, fn)
    this.#chain = run.catch(() => {})
    return run
  }

  async #round(): Promise<void> {
    const now = this.host.now()
    try {
      const replicas = await this.leases.heartbeat(now)
      const before = this.leases.heldIds()
      const still = await this.leases.renew(now)
      const lost = before.filter((id) => !still.has(id))
      if (lost.length > 0) {
        this.host.logger.info({ pairs: lost.length }, 'pairs taken over by another replica')
        await this.host.lost(lost)
      }
      const live = await this.host.refresh()
      // A paused or removed pair needs no holder.
      const idle = this.leases.heldIds().filter((id) => !live.has(id))
      if (idle.length > 0) await this.leases.release(idle, now)
      const target = Math.ceil(live.size / replicas)
      const held = this.leases.held
      if (held < target) {
        // A round stays short (its renewals must not wait): at most MAX_TAKE new leases per round.
        const got = await this.leases.acquire(await this.leases.unheld(now, Math.min(MAX_TAKE, target - held)), now)
        if (got.length > 0) await this.host.gained(got)
      } else if (held > target) {
        // Another replica joined: hand back what is above this one's share.
        const excess = this.leases.heldIds().slice(target)
        await this.host.lost(excess)
        await this.leases.release(excess, now)
      }
      if (this.#failing) this.host.logger.info({}, 'pair leases renewed again')
      this.#failing = false
    } catch (err) {
      // The database is away: nothing can be committed meanwhile (writes are fenced), and the
      // leases are renewed on the first round that reaches it — unless another replica took them.
      if (!this.#failing) this.host.logger.warn({ err }, 'could not renew pair leases')
      this.#failing = true
    }
  }
}

/** The engine's side of the keeper: its live pairs, their loops and the scheduler. */
export function engineLeaseHost(ctx: PullContext, scheduler: Scheduler, started: () => boolean): LeaseHost {
  const { c } = ctx
  // When pair rows were last re-read (null: never, read them all).
  let refreshedAt: number | null = null
  return {
    now: () => c.clock.now(),
    logger: c.logger,
    async gained(ids) {
      // Many at once (a replica's first round): one read of every row, not one per pair.
      const rows = ids.length > 20 ? new Map((await c.pairs.listPairs()).map((p) => [p.pair_id, p])) : null
      for (const id of ids) {
        const fresh = rows ? rows.get(id) : await c.pairs.getPair(id)
        if (!fresh) continue
        ctx.pairs.set(id, fresh)
        const rt = ctx.runtime(id)
        rt.attempt = 0
        rt.backoffMs = 0
        if (started() && fresh.state !== 'paused' && fresh.state !== 'stopped') scheduler.schedule(id, c.clock.now())
      }
    },
    async lost(ids) {
      const running: Promise<void>[] = []
      for (const id of ids) {
        scheduler.cancel(id)
        const rt = ctx.runtime(id)
        rt.nextAttemptAt = null
        rt.abort?.abort(new Error('lease lost'))
        if (rt.running) running.push(rt.running)
      }
      await Promise.allSettled(running)
    },
    async refresh() {
      const at = c.clock.now()
      // Rows written since the last refresh (a minute of margin for clocks that differ a little).
      const rows = await c.pairs.listPairs(refreshedAt === null ? {} : { updatedSince: refreshedAt - 60_000 })
      for (const p of rows) if (!c.leases?.holds(p.pair_id)) ctx.pairs.set(p.pair_id, p)
      refreshedAt = at
      const live = new Set<string>()
      for (const p of ctx.pairs.values()) if (p.state !== 'paused' && p.state !== 'stopped') live.add(p.pair_id)
      return live
    },
  }
}

/**
 * Makes this replica the pair's holder before an operator's change (no-op without leases, or when
 * it holds it): seizes the lease, then reads the row as the previous holder's last commit left it.
 */
export async function ownPair(ctx: PullContext, pairId: string): Promise<void> {
  const leases = ctx.c.leases
  if (!leases || leases.holds(pairId)) return
  await leases.seize(pairId, ctx.c.clock.now())
  const fresh = await ctx.c.pairs.getPair(pairId)
  if (fresh) ctx.pairs.set(pairId, fresh)
}
