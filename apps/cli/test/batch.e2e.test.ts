// Issue 16, batch emit: POST /v1/records/batch and spl emit --batch against a real daemon.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { TestDaemon } from '../../../test-utils/test-daemon.js'

interface BatchOut {
  committed: boolean
  created: number
  duplicates: number
  rejected: number
  results: ({ index: number; id: string; status: string } | { index: number; error: { code: string; message: string } })[]
}

let d: TestDaemon
let dir: string
const count = async (thread: string) =>
  (await d.api.get<{ data: { thread: string; records: number }[] }>('/v1/threads')).data.find((t) => t.thread === thread)?.records ?? 0

beforeAll(async () => {
  d = await TestDaemon.start()
  dir = mkdtempSync(path.join(os.tmpdir(), 'spl-batch-'))
})
afterAll(async () => {
  await d?.[Symbol.asyncDispose]()
  rmSync(dir, { recursive: true, force: true })
})

const good = (thread: string, i: number) => ({ act: 'KNOW', thread, body: { n: i, text: `batch record ${i}` } })
const bad = [
  { act: 'NOPE', thread: 'th_batch', body: {} }, // not an act
  { act: 'KNOW', thread: 'th_batch', body: { namespace: 'missing' } }, // namespace not registered
  { act: 'KNOW', thread: 'not a thread', body: {} }, // thread id
]

describe('batch emit', () => {
  it('1,000 records with 3 bad ones: 997 stored in one go, each bad one answered with its code', async () => {
    const records: unknown[] = Array.from({ length: 1000 }, (_, i) => good('th_batch', i))
    records[10] = bad[0]
    records[500] = bad[1]
    records[999] = bad[2]
    const r = await d.api.post<BatchOut>('/v1/records/batch', { records })
    expect(r).toMatchObject({ committed: true, created: 997, duplicates: 0, rejected: 3 })
    expect(r.results).toHaveLength(1000)
    const errors = r.results.filter((x): x is Extract<BatchOut['results'][number], { error: unknown }> => 'error' in x)
    expect(errors.map((e) => [e.index, e.error.code])).toEqual([
      [10, 'INVALID_REQUEST'],
      [500, 'NAMESPACE_REJECTED'],
      [999, 'INVALID_REQUEST'],
    ])
    expect(await count('th_batch')).toBe(997)
    // Without a clock each is a new record (the daemon picks the next clock): the same again is 997 more.
    const again = await d.api.post<BatchOut>('/v1/records/batch', { records: records.filter((_, i) => ![10, 500, 999].includes(i)) })
    expect(again).toMatchObject({ created: 997, duplicates: 0, rejected: 0 })
    expect(await count('th_batch')).toBe(1994)
  })

  it('atomic: one bad record and none is stored', async () => {
    const records: unknown[] = Array.from({ length: 50 }, (_, i) => good('th_atomic', i))
    records[25] = bad[1]
    const r = await d.api.post<BatchOut>('/v1/records/batch', { records, atomic: true })
    expect(r).toMatchObject({ committed: false, created: 0, rejected: 1 })
    expect(await count('th_atomic')).toBe(0)
    const ok = await d.api.post<BatchOut>('/v1/records/batch', { records: records.filter((_, i) => i !== 25), atomic: true })
    expect(ok).toMatchObject({ committed: true, created: 49, rejected: 0 })
  })

  it('spl emit --batch reads NDJSON, reports bad lines by number, exits 1 when any was rejected', async () => {
    const file = path.join(dir, 'records.ndjson')
    // With their clocks the lines are the same records each time: a re-run stores nothing new.
    const lines = Array.from({ length: 2500 }, (_, i) => JSON.stringify({ ...good('th_ndjson', i), clock: i }))
    lines[7] = '{not json'
    lines[1200] = JSON.stringify(bad[1])
    writeFileSync(file, `${lines.join('\n')}\n\n`)
    const r = await d.spl('emit', '--batch', file, '--json')
    expect(r.code).toBe(1)
    const out = JSON.parse(r.stdout) as { lines: number; created: number; rejected: number; errors: { line: number; code: string }[] }
    expect(out).toMatchObject({ lines: 2500, created: 2498, rejected: 2 })
    expect(out.errors).toEqual([
      expect.objectContaining({ line: 8, code: 'INVALID_JSON' }),
      expect.objectContaining({ line: 1201, code: 'NAMESPACE_REJECTED' }),
    ])
    expect(await count('th_ndjson')).toBe(2498)
    const human = await d.spl('emit', '--batch', file)
    expect(human.stdout).toContain('2500 line(s): 0 stored, 2498 duplicate(s), 2 rejected')
    expect(human.stdout).toContain('line 8: INVALID_JSON')
  })
})
