import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { open } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { padding, TAR_END, type TarEntry, TarFormatError, TarReader, tarHeader } from './tar.js'

const dir = mkdtempSync(path.join(os.tmpdir(), 'spl-tar-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** An archive of `members` as the exporter writes it. */
function archive(members: [string, Buffer][]): Buffer {
  const parts: Buffer[] = []
  for (const [name, data] of members) parts.push(tarHeader(name, data.length, 1_700_000_000), data, Buffer.alloc(padding(data.length)))
  parts.push(TAR_END)
  return Buffer.concat(parts)
}

async function names(bytes: Buffer): Promise<string[]> {
  const file = path.join(dir, 'a.tar')
  writeFileSync(file, bytes)
  const fh = await open(file, 'r')
  try {
    const reader = new TarReader(fh, bytes.length)
    const out: string[] = []
    let prev: TarEntry | undefined
    for (let e = await reader.next(); e !== null; e = await reader.next(prev)) {
      out.push(`${e.name}:${(await reader.readAll(e, 1 << 20)).toString()}`)
      prev = e
    }
    return out
  } finally {
    await fh.close()
  }
}

describe('the bundle tar', () => {
  const good = archive([
    ['manifest.json', Buffer.from('{"a":1}')],
    ['x.ndjson.gz', Buffer.alloc(1000, 7)],
  ])

  it('reads back what it writes, and the header has a valid ustar checksum', async () => {
    expect((await names(good)).map((n) => n.split(':')[0])).toEqual(['manifest.json', 'x.ndjson.gz'])
    const h = tarHeader('manifest.json', 7, 0)
    let sum = 0
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!
    expect(Number.parseInt(h.toString('ascii', 148, 154), 8)).toBe(sum)
    expect(h.toString('ascii', 257, 262)).toBe('ustar')
  })

  it('refuses any changed byte outside the members’ data: header, padding, end, or bytes after it', async () => {
    const paddingAt = 512 + 7 + 3
    for (const at of [5, 130, 150, 300, paddingAt, good.length - 1]) {
      const bad = Buffer.from(good)
      bad[at] = bad[at]! ^ 0x20
      await expect(names(bad), `byte ${at}`).rejects.toBeInstanceOf(TarFormatError)
    }
    await expect(names(Buffer.concat([good, Buffer.from('x')]))).rejects.toThrow(/follow the end/)
    await expect(names(good.subarray(0, good.length - 600))).rejects.toThrow(/truncated|end/)
  })
})
