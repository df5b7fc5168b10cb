import { setTimeout as sleep } from 'node:timers/promises'

/**
 * Polls `probe` until it answers something other than undefined (a probe that throws counts as
 * "not yet"), and returns that; throws `timed out waiting for <what>` after `ms`.
 */
export async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 20_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const v = await probe().catch(() => undefined)
    if (v !== undefined) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(everyMs)
  }
}
