import crypto from 'node:crypto'
import { createReadStream } from 'node:fs'
import { type FileHandle, open } from 'node:fs/promises'
import { Keypair, verifySignature } from '@spl/identity'
import { BundleRejectedError, IDENTITY, MANIFEST, type Manifest, manifestSchema, SIGNATURE } from './format.js'
import { type TarEntry, TarFormatError, TarReader } from './tar.js'

/** A bundle whose every byte checked out: its manifest, where each staged file lies, the key if any. */
export interface VerifiedBundle {
  file: string
  manifest: Manifest
  /** Staged files by name: offset and size in the bundle. */
  entries: Map<string, TarEntry>
  /** The instance key, when the bundle carries it (its DID is the manifest's). */
  keypair: Keypair | null
}

const MAX_MANIFEST = 1 << 20

/** SHA-256 of `size` bytes of `file` from `offset`, streamed. */
export async function hashRange(file: string, offset: number, size: number): Promise<string> {
  const hash = crypto.createHash('sha256')
  if (size > 0) {
    for await (const chunk of createReadStream(file, { start: offset, end: offset + size - 1, highWaterMark: 1 << 20 })) {
      hash.update(chunk as Buffer)
    }
  }
  return hash.digest('hex')
}

/** The key of identity.jwk, or why it is not one. */
function keyOf(jwkBytes: Buffer): Keypair | string {
  try {
    const jwk = JSON.parse(jwkBytes.toString('utf8')) as { kty?: unknown; crv?: unknown; d?: unknown }
    if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.d !== 'string') return 'identity.jwk is not an Ed25519 JWK'
    const seed = Buffer.from(jwk.d, 'base64url')
    return seed.length === 32 ? Keypair.fromSeed(seed) : 'identity.jwk does not hold a 32-byte key'
  } catch {
    return 'identity.jwk is not JSON'
  }
}

/**
 * Checks a whole bundle before anything is stored: the archive's structure (headers, padding,
 * end), manifest.json against its schema, manifest.sig against the manifest's did:key, and every
 * staged file's size and SHA-256 against the manifest. Throws BundleRejectedError with the reason.
 */
export async function verifyBundle(file: string): Promise<VerifiedBundle> {
  const refuse = (reason: string) => new BundleRejectedError(file, reason)
  let fh: FileHandle
  try {
    fh = await open(file, 'r')
  } catch (err) {
    throw refuse(`it cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`)
  }
  try {
    const size = (await fh.stat()).size
    const tar = new TarReader(fh, size)
    const first = await tar.next()
    if (!first || first.name !== MANIFEST) throw refuse('it is not an spl bundle (manifest.json is not its first member)')
    const manifestBytes = await tar.readAll(first, MAX_MANIFEST)
    const second = await tar.next(first)
    if (!second || second.name !== SIGNATURE) throw refuse('manifest.sig does not follow manifest.json')
    const sigText = (await tar.readAll(second, 200)).toString('ascii')
    let raw: unknown
    try {
      raw = JSON.parse(manifestBytes.toString('utf8'))
    } catch {
      throw refuse('manifest.json is not JSON')
    }
    const parsed = manifestSchema.safeParse(raw)
    if (!parsed.success) {
      const issue = parsed.error.issues[0]
      throw refuse(`manifest.json does not fit the format (${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'})`)
    }
    const manifest = parsed.data
    const sig = /^[A-Za-z0-9_-]{86}$/.test(sigText) ? Buffer.from(sigText, 'base64url') : null
    if (sig === null || !verifySignature(manifest.did, manifestBytes, sig)) {
      throw refuse(
        `manifest.sig is not ${manifest.did.slice(0, 24)}…'s signature over manifest.json (the manifest or the signature was altered)`,
      )
    }
    // The staged files, in the manifest's order, each with the listed size and hash.
    const entries = new Map<string, TarEntry>()
    let prev: TarEntry = second
    for (const m of manifest.members) {
      const e = await tar.next(prev)
      if (!e || e.name !== m.name) throw refuse(`${m.name} is missing (found ${e ? e.name : 'the end of the archive'} instead)`)
      if (e.size !== m.bytes) throw refuse(`${m.name} is ${e.size} bytes, the manifest says ${m.bytes}`)
      if ((await hashRange(file, e.offset, e.size)) !== m.sha256)
        throw refuse(`${m.name} does not hash to the manifest's SHA-256 (altered)`)
      entries.set(e.name, e)
      prev = e
    }
    if ((await tar.next(prev)) !== null) throw refuse('it holds a member the manifest does not list')
    let keypair: Keypair | null = null
    const idEntry = entries.get(IDENTITY)
    if (manifest.identity !== (idEntry !== undefined)) throw refuse('the manifest and its members disagree about identity.jwk')
    if (idEntry) {
      const k = keyOf(await tar.readAll(idEntry, 4096))
      if (typeof k === 'string') throw refuse(k)
      if (k.did !== manifest.did) throw refuse(`identity.jwk holds ${k.did}, not the manifest's ${manifest.did}`)
      keypair = k
    }
    return { file, manifest, entries, keypair }
  } catch (err) {
    if (err instanceof TarFormatError) throw refuse(err.message)
    throw err
  } finally {
    await fh.close()
  }
}
