import { writeFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { onlyCase, runSeed } from '../../../test-utils/fuzz.js'
import { fuzzDoors, runFuzz } from './fuzz/runner.js'

// Issue 18: the seeded fuzzer over every door, in process (app.request()): 1,000 cases per door
// of openapi.json plus unknown paths. `pnpm fuzz` runs this file with SPL_FUZZ_CASES=10000 and a
// random seed, and prints the summary it writes to SPL_FUZZ_REPORT.
//
//   SPL_FUZZ_SEED=18 SPL_FUZZ_ONLY='POST /v1/records#17' pnpm vitest run apps/daemon/test/fuzz.test.ts

/** The seed of `pnpm test` (fixed: the same 37,000 cases every run); SPL_FUZZ_SEED overrides it. */
const DEFAULT_SEED = 18
const seed = runSeed(DEFAULT_SEED)
const casesPerDoor = Number(process.env['SPL_FUZZ_CASES'] ?? 1000)
const only = onlyCase()

/**
 * Cases that find a bug in code this suite does not own, left out of the main run and replayed
 * one by one below as `it.fails` (each turns red, as it should, once the bug is fixed: then
 * remove it from here). Key: `<door>#<index>` under DEFAULT_SEED.
 */
const KNOWN_BUGS: Record<string, string> = {}

describe('fuzz: every door of openapi.json and unknown paths (issue 18)', () => {
  it(`${casesPerDoor} seeded cases per door: no 5xx, the envelope on every error, no state left by a refusal, alive`, {
    timeout: Math.max(120_000, casesPerDoor * 400),
  }, async () => {
    console.log(`[fuzz] seed ${seed} (replay with SPL_FUZZ_SEED=${seed}), ${casesPerDoor} cases per door, ${fuzzDoors().length} doors`)
    const skip = new Set(seed === DEFAULT_SEED ? Object.keys(KNOWN_BUGS) : [])
    const summary = await runFuzz({
      seed,
      casesPerDoor,
      only,
      skip, // The big runs (pnpm fuzz) also print each door as it ends: minutes pass between lines.
      log: (l) => (l.startsWith('FAIL') || casesPerDoor > 1000) && console.log(l),
    })
    const report = process.env['SPL_FUZZ_REPORT']
    if (report) writeFileSync(report, JSON.stringify(summary, null, 2))
    console.log(
      `[fuzz] ${summary.totalCases} cases over ${summary.perDoor.length} doors in ${summary.ms} ms, ${summary.failures.length} failures (time: ${JSON.stringify(summary.split)} ms)` +
        (summary.blockedConnections.length ? `, ${summary.blockedConnections.length} off-loopback connections refused by the guard` : ''),
    )
    expect(summary.perDoor.length).toBe(only ? 1 : fuzzDoors().length)
    expect(
      summary.failures.map((f) => `${f.case}\n  answer ${f.answer}\n  ${f.problems.join(' | ')}`),
      `seed ${seed}: replay one with SPL_FUZZ_SEED=${seed} SPL_FUZZ_ONLY='<door>#<index>'`,
    ).toEqual([])
  })

  it('the checks can fail: a planted 500, a planted write after a refusal and a planted non-envelope are each reported', async () => {
    const door = fuzzDoors().find((x) => x.method === 'POST' && x.path === '/v1/records')!
    let planted = 0
    const summary = await runFuzz({
      seed: DEFAULT_SEED,
      casesPerDoor: 60,
      doors: [door],
      afterRequest: async (d, c, a) => {
        // (HEAD answers carry no body, so no envelope to check.)
        if (a.status < 400 || c.method === 'HEAD') return
        planted++
        if (planted % 3 === 1)
          await d.daemon.ctx.records.emit({ act: 'INTEND', thread: 'th_planted', body: {}, parents: [], data_type: 'SCALAR' })
        else if (planted % 3 === 2) Object.assign(a, { status: 500, json: { object: 'error', code: 'INTERNAL', message: 'planted' } })
        else Object.assign(a, { json: 'not an envelope' })
      },
    })
    const problems = summary.failures.flatMap((f) => f.problems).join('\n')
    expect(planted).toBeGreaterThan(6)
    expect(problems).toContain('refused, yet the database changed')
    expect(problems).toContain('answered 500 (INTERNAL)')
    expect(problems).toContain('not the error envelope')
    expect(summary.failures.length).toBe(planted)
  })

  for (const [key, bug] of Object.entries(KNOWN_BUGS)) {
    const [door, index] = [key.slice(0, key.lastIndexOf('#')), Number(key.slice(key.lastIndexOf('#') + 1))]
    it.fails(`known bug, ${key}: ${bug}`, async () => {
      const summary = await runFuzz({ seed: DEFAULT_SEED, casesPerDoor: index + 1, only: { door, index } })
      expect(summary.totalCases).toBe(1)
      expect(summary.failures).toEqual([])
    })
  }
})
