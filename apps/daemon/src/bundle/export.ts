import crypto from 'node:crypto'
import { createReadStream, createWriteStream, existsSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs'
import { open } from 'node:fs/promises'
import path from 'node:path'
import { pipeline } from 'node:stream/promises'
import { createGzip } from 'node:zlib'
import { CONSENT_THREAD, ConsentRegistry, NAMESPACE_REGISTRY_THREAD } from '@spl/consent'
import { FederationStore } from '@spl/federation'
import { SplError } from '@spl/identity'
import { RecordStore, rowToEnvelopeJson } from '@spl/records'
import { KyselySyncStore } from '@spl/sync-engine'
import { homePaths } from '../config.js'
import { openDatabase } from '../db.js'
import { loadConfig, readKeyFile } from '../load.js'
import { VERSION } from '../package-files.js'
import { BUNDLE_FORMAT, IDENTITY, MANIFEST, type Manifest, type ManifestMember, MEMBERS, type MemberKey, SIGNATURE } from './format.js'
import { padding, TAR_END, tarHeader } from './tar.js'

/** What `spl export` is asked for. */
export interface ExportOptions {
  /** The bundle file to write (replaced atomically once complete). */
  out: string
  /** Only these threads' records and pairs (the registry threads always go too); all when absent. */
  threads?: readonly string[]
  /** Put the instance key in the bundle (default true): needed to move the instance to a new machine. */
  identity?: boolean
  onProgress?: (p: { records: number; total: number }) => void
}

/** What an export wrote. */
export interface ExportSummary {
  object: 'export'
  file: string
  did: string
  bytes: number
  identity: boolean
  threads: string[] | null
  records: number
  pairs: number
  links: number
  namespaces: number
  grants: number
  bindings: number
  seconds: number
}

const PAGE = 1000

/** A staged file: gzip-compressed NDJSON, hashed as it is written. */
class StagedFile {
  readonly #gz = createGzip({ level: 3 })
  readonly #hash = crypto.createHash('sha256')
  readonly #done: Promise<void>
  #bytes = 0
  items = 0

  constructor(
    readonly name: string,
    readonly file: string,
  ) {
    this.#gz.on('data', (chunk: Buffer) => {
      this.#hash.update(chunk)
      this.#bytes += chunk.length
    })
    this.#done = pipeline(this.#gz, createWriteStream(file, { mode: 0o600 }))
    this.#done.catch(() => {}) // surfaced by close()
  }

  /** Appends lines of JSON text (each already without its newline), waiting when the disk is behind. */
  async write(lines: readonly string[]): Promise<void> {
    if (lines.length === 0) return
    this.items += lines.length
    if (!this.#gz.write(`${lines.join('\n')}\n`)) await new Promise<void>((r) => this.#gz.once('drain', () => r()))
  }

  async close(): Promise<ManifestMember> {
    this.#gz.end()
    await this.#done
    return { name: this.name, bytes: this.#bytes, sha256: this.#hash.digest('hex'), items: this.items }
  }
}

/** The stage is not where it should be: a bad --out. */
function outDirError(out: string): SplError {
  return new SplError('EXPORT_FAILED', `cannot write ${out}: its directory does not exist.`, {
    status: 400,
    fix: 'give --out a path in an existing directory',
  })
}

/**
 * Writes a signed bundle of `home` (docs/backup.md): the records as envelopes, then pairs with
 * their cursors, links (token ids only), blocklist and revocations, the registry's namespaces,
 * grants and bindings, and the key unless `identity: false`. Reads through its own database
 * connection, so a running daemon keeps running; pairs are read before the records, so every
 * cursor in the bundle has its records in it.
 */
export async function exportBundle(home: string, options: ExportOptions): Promise<ExportSummary> {
  const t0 = performance.now()
  const cfg = loadConfig(home)
  const keyFile = path.resolve(home, cfg.identity.key_path)
  const keypair = readKeyFile(keyFile, cfg.identity.did)
  const withIdentity = options.identity !== false
  const out = path.resolve(options.out)
  if (!existsSync(path.dirname(out))) throw outDirError(out)
  const threads = options.threads ? [...new Set([...options.threads, NAMESPACE_REGISTRY_THREAD, CONSENT_THREAD])].sort() : undefined
  const stage = mkdtempSync(path.join(path.dirname(out), '.spl-export-'))
  const database = openDatabase(homePaths(home).db)
  try {
    const store = await RecordStore.open(database.db)
    const registry = await ConsentRegistry.load(store, keypair.did)
    const sync = await KyselySyncStore.open(database.db, store)
    const fed = await FederationStore.open(database.db)

    // The cursors first: every record they stand for is stored before they are read, so the
    // records read after them include all of it (SPEC 4.2: a cursor never ahead of its records).
    const pairs = (await sync.listPairs()).filter((p) => !threads || threads.includes(p.thread_id))
    const links = await fed.links()
    const blocked = await fed.blocked()
    const revocations = await fed.revocations()
    const headSeq = await store.headSeq()
    const total = await store.count()

    const staged = new Map<MemberKey, StagedFile>()
    const stageOf = (key: MemberKey) => {
      const s = new StagedFile(MEMBERS[key], path.join(stage, MEMBERS[key]))
      staged.set(key, s)
      return s
    }
    const json = (v: unknown) => JSON.stringify(v)
    await stageOf('namespaces').write(
      registry
        .namespaces()
        .filter((n) => n.namespace !== 'default')
        .map(json),
    )
    await stageOf('grants').write(registry.grants().map(json))
    await stageOf('bindings').write(registry.bindings().map(json))

    const records = stageOf('records')
    let after = 0
    for (;;) {
      const rows = await store.listAllAfter(after, PAGE, threads)
      if (rows.length === 0) break
      // The envelope as the feed serves it, with the peer it came from (for echo suppression after a restore).
      await records.write(rows.map((r) => `${rowToEnvelopeJson(r).slice(0, -1)},"origin":${json(r.origin)}}`))
      after = rows[rows.length - 1]!.seq
      options.onProgress?.({ records: records.items, total })
      if (rows.length < PAGE) break
    }

    await stageOf('pairs').write(pairs.map(json))
    // Links with token ids only: the token the peer issued us is a secret and stays behind.
    await stageOf('links').write(links.map((l) => json({ ...l, held_token: null, nonce: null })))
    await stageOf('blocklist').write(blocked.map(json))
    await stageOf('revocations').write(revocations.map(json))

    const members: ManifestMember[] = []
    if (withIdentity) {
      const bytes = readFileSync(keyFile)
      members.push({ name: IDENTITY, bytes: bytes.length, sha256: crypto.createHash('sha256').update(bytes).digest('hex') })
    }
    for (const s of staged.values()) members.push(await s.close())
    const createdAt = new Date()
    const manifest: Manifest = {
      format: BUNDLE_FORMAT,
      did: keypair.did,
      handle: cfg.identity.handle ?? null,
      spl_version: VERSION,
      created_at: createdAt.toISOString(),
      threads: threads ?? null,
      identity: withIdentity,
      head_seq: headSeq,
      members,
    }
    const manifestBytes = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`)
    const signature = Buffer.from(Buffer.from(keypair.sign(manifestBytes)).toString('base64url'))

    // The archive: manifest, signature, then the staged files in the manifest's order.
    const partial = `${out}.partial-${process.pid}`
    const fh = await open(partial, 'w', 0o600)
    try {
      const mtime = Math.floor(createdAt.getTime() / 1000)
      let pos = 0
      const put = async (buf: Buffer) => {
        await fh.write(buf, 0, buf.length, pos)
        pos += buf.length
      }
      const putSmall = async (name: string, data: Buffer) => {
        await put(tarHeader(name, data.length, mtime))
        await put(data)
        await put(Buffer.alloc(padding(data.length)))
      }
      await putSmall(MANIFEST, manifestBytes)
      await putSmall(SIGNATURE, signature)
      for (const m of members) {
        await put(tarHeader(m.name, m.bytes, mtime))
        const source = m.name === IDENTITY ? keyFile : path.join(stage, m.name)
        for await (const chunk of createReadStream(source, { highWaterMark: 1 << 20 })) await put(chunk as Buffer)
        await put(Buffer.alloc(padding(m.bytes)))
      }
      await put(TAR_END)
      await fh.sync()
    } catch (err) {
      await fh.close()
      rmSync(partial, { force: true })
      throw err
    }
    await fh.close()
    renameSync(partial, out)
    const get = (k: MemberKey) => staged.get(k)?.items ?? 0
    return {
      object: 'export',
      file: out,
      did: keypair.did,
      bytes: statSync(out).size,
      identity: withIdentity,
      threads: threads ?? null,
      records: get('records'),
      pairs: get('pairs'),
      links: get('links'),
      namespaces: get('namespaces'),
      grants: get('grants'),
      bindings: get('bindings'),
      seconds: (performance.now() - t0) / 1000,
    }
  } finally {
    await database.db.destroy()
    rmSync(stage, { recursive: true, force: true })
  }
}
