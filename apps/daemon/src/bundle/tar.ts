// A minimal, strict POSIX ustar: the container of a bundle. Written by `tarHeader`, read by
// `TarReader`, which accepts only what `tarHeader` writes (regular files, mode 0600, no
// extensions), zero padding, and the two zero blocks at the end with nothing after them: every
// byte of a bundle is either a header it can re-encode exactly, a member's data (hashed in the
// signed manifest), or a zero it checks. `tar tf`/`tar xf` read the same file.
import type { FileHandle } from 'node:fs/promises'

export const BLOCK = 512
/** A member's name: what the manifest lists (no directories, no paths). */
export const MEMBER_NAME_RE = /^[a-z][a-z0-9_.-]{0,63}$/
const MAX_SIZE = 8 ** 11 - 1 // 11 octal digits: 8 GiB per member

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, '0')}\0`
}

/** The 512-byte ustar header of a regular file `name` of `size` bytes, modified at `mtimeSec`. */
export function tarHeader(name: string, size: number, mtimeSec: number): Buffer {
  if (!MEMBER_NAME_RE.test(name)) throw new Error(`tar: bad member name ${name}`)
  if (!Number.isInteger(size) || size < 0 || size > MAX_SIZE) throw new Error(`tar: bad member size ${size}`)
  const h = Buffer.alloc(BLOCK, 0)
  h.write(name, 0, 100, 'ascii')
  h.write(octal(0o600, 8), 100, 'ascii')
  h.write(octal(0, 8), 108, 'ascii') // uid
  h.write(octal(0, 8), 116, 'ascii') // gid
  h.write(octal(size, 12), 124, 'ascii')
  h.write(octal(mtimeSec, 12), 136, 'ascii')
  h.write('        ', 148, 'ascii') // checksum: spaces while summing
  h.write('0', 156, 'ascii') // regular file
  h.write('ustar\u000000', 257, 'ascii')
  h.write('spl', 265, 'ascii') // uname
  h.write('spl', 297, 'ascii') // gname
  let sum = 0
  for (const b of h) sum += b
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii')
  return h
}

/** Zero bytes that pad a member of `size` bytes to a whole block. */
export function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK
}

/** Two zero blocks: the end of the archive. */
export const TAR_END = Buffer.alloc(2 * BLOCK, 0)

/** The archive is not one this format writes (with the reason). */
export class TarFormatError extends Error {
  override readonly name = 'TarFormatError'
}

/** One member as found in the archive: where its data starts and how long it is. */
export interface TarEntry {
  name: string
  size: number
  mtimeSec: number
  /** Byte offset of the member's data in the file. */
  offset: number
}

function parseOctal(field: Buffer): number | null {
  const text = field.toString('ascii')
  const m = /^([0-7]+)\0$/.exec(text)
  return m ? Number.parseInt(m[1]!, 8) : null
}

/** Reads the members of a bundle in order, checking every header, padding and the end. */
export class TarReader {
  #pos = 0
  readonly #block = Buffer.alloc(BLOCK)

  constructor(
    private readonly file: FileHandle,
    private readonly fileSize: number,
  ) {}

  async #read(buf: Buffer, length: number, at: number): Promise<void> {
    let done = 0
    while (done < length) {
      const { bytesRead } = await this.file.read(buf, done, length - done, at + done)
      if (bytesRead === 0) throw new TarFormatError(`the file ends at byte ${at + done}, inside the archive (truncated)`)
      done += bytesRead
    }
  }

  /**
   * The next member, or null at the end (after checking the two zero blocks and that nothing
   * follows). The caller reads or skips the data, then calls `next` again.
   */
  async next(expectPrevious?: TarEntry): Promise<TarEntry | null> {
    if (expectPrevious) {
      // Skip over the previous member's data and check its padding is zeros.
      const pad = padding(expectPrevious.size)
      const padAt = expectPrevious.offset + expectPrevious.size
      if (pad > 0) {
        await this.#read(this.#block, pad, padAt)
        for (let i = 0; i < pad; i++) if (this.#block[i] !== 0) throw new TarFormatError(`bytes after ${expectPrevious.name} are not zero`)
      }
      this.#pos = padAt + pad
    }
    const at = this.#pos
    await this.#read(this.#block, BLOCK, at)
    if (this.#block.every((b) => b === 0)) {
      await this.#read(this.#block, BLOCK, at + BLOCK)
      if (!this.#block.every((b) => b === 0)) throw new TarFormatError('the end of the archive is not two zero blocks')
      if (this.fileSize !== at + 2 * BLOCK)
        throw new TarFormatError(`${this.fileSize - at - 2 * BLOCK} byte(s) follow the end of the archive`)
      return null
    }
    const nul = this.#block.indexOf(0)
    const name = this.#block.toString('ascii', 0, nul < 0 || nul > 100 ? 100 : nul)
    const size = parseOctal(this.#block.subarray(124, 136))
    const mtimeSec = parseOctal(this.#block.subarray(136, 148))
    if (!MEMBER_NAME_RE.test(name) || size === null || mtimeSec === null || size > MAX_SIZE) {
      throw new TarFormatError(`the header at byte ${at} is not one spl writes`)
    }
    // Re-encode and compare: any other byte in a header (or a wrong checksum) refuses the file.
    if (!tarHeader(name, size, mtimeSec).equals(this.#block)) {
      throw new TarFormatError(`the header of ${name} at byte ${at} was altered (it does not re-encode to the same bytes)`)
    }
    const entry = { name, size, mtimeSec, offset: at + BLOCK }
    if (entry.offset + size > this.fileSize) throw new TarFormatError(`${name} is cut short (the file is truncated)`)
    return entry
  }

  /** Reads a whole (small) member's data. */
  async readAll(entry: TarEntry, max: number): Promise<Buffer> {
    if (entry.size > max) throw new TarFormatError(`${entry.name} is ${entry.size} bytes, over ${max}`)
    const buf = Buffer.alloc(entry.size)
    await this.#read(buf, entry.size, entry.offset)
    return buf
  }
}
