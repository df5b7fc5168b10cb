import crypto from 'node:crypto'
import { createReadStream, existsSync } from 'node:fs'
import path from 'node:path'
import { StringDecoder } from 'node:string_decoder'
import { createGunzip } from 'node:zlib'
import { type Binding, ConsentRegistry, type GrantState, type NamespaceEntry } from '@spl/consent'
import { FederationStore, type Link } from '@spl/federation'
import type { Keypair } from '@spl/identity'
import { type Candidate, RecordStore, type Rejection, type StoredRow, threadPoolCheckerFor } from '@spl/records'
import { checkIncoming, emptyTotals, KyselySyncStore, type Pair, pairIdFor, ThreadNotifier } from '@spl/sync-engine'
import { resignRegistry } from '../carry-over.js'
import { homePaths } from '../config.js'
import { openDatabase } from '../db.js'
import { adoptIdentity, initHome } from '../home.js'
import { acquireLock } from '../lifecycle.js'
import { loadConfig, readKeyFile } from '../load.js'
import type { Logger } from '../logger.js'
import { RecordService } from '../records-service.js'
import { BundleRejectedError, MEMBERS, type MemberKey, type RecordLine } from './format.js'
import { type VerifiedBundle, verifyBundle } from './verify.js'

/** What `spl import` is asked for. */
export interface ImportOptions {
  /** Verify the bundle and check every record, store nothing. */
  dryRun?: boolean
  /** Only these threads' records and pairs; the others are counted as skipped. */
  threads?: readonly string[]
  logger: Logger
  onProgress?: (p: { records: number; total: number }) => void
}

/** Counts of one kind of item: stored (or restored), already here, left out on purpose, refused by code. */
export interface ImportCounts {
  stored: number
  duplicates: number
  skipped: number
  rejected: Record<string, number>
}

/** What an import did (or, with `dry_run`, would do). */
export interface ImportReport {
  object: 'import'
  file: string
  dry_run: boolean
  /** The bundle's instance. */
  source_did: string
  /** This home's instance after the import. */
  did: string
  /**
   * `adopted`: the bundle's key became this home's (a move); `same`: this home is that instance;
   * `kept`: this home is another instance (records imported, registry re-signed, pairs from the start, links left out).
   */
  identity: 'adopted' | 'same' | 'kept'
  records: ImportCounts & { received: number }
  pairs: ImportCounts
  links: ImportCounts
  /** Registry entries re-signed by this instance (identity `kept` only). */
  registry_resigned: number
  namespaces: number
  grants: number
  bindings: number
  seconds: number
}

const BATCH = 1000
/** Batches checked ahead of the one being stored. */
const LOOKAHEAD = 2

/** Bytes of decompressed output per inflate job (see membersLines). */
const GUNZIP_CHUNK = 1 << 20

const counts = (): ImportCounts => ({ stored: 0, duplicates: 0, skipped: 0, rejected: {} })

/** Streams the JSON lines of one staged file, checking its hash as it goes (a file changed since the check is refused at its end). */
async function* membersLines(bundle: VerifiedBundle, key: MemberKey): AsyncGenerator<string> {
  const name = MEMBERS[key]
  const entry = bundle.entries.get(name)
  const listed = bundle.manifest.members.find((m) => m.name === name)
  if (!entry || !listed) return
  if (entry.size === 0) return
  const hash = crypto.createHash('sha256')
  const raw = createReadStream(bundle.file, { start: entry.offset, end: entry.offset + entry.size - 1, highWaterMark: 1 << 20 })
  raw.on('data', (c) => hash.update(c as Buffer))
  // Inflated 1 MiB at a time (a batch of ~1,400 records of ~500 B). Each piece is a job on
  // libuv's threadpool, queued behind the Ed25519 verifications of the batches in flight (the
  // pool is first in, first out): with 64 KiB pieces a batch took ~12 such waits and the main
  // thread stood idle for 8-11 % of the import waiting for its next lines (docs/performance.md).
  const gunzip = createGunzip({ chunkSize: GUNZIP_CHUNK })
  raw.on('error', (err) => gunzip.destroy(err))
  raw.pipe(gunzip)
  // Lines split by hand: iterating the stream itself keeps its backpressure (the disk is read
  // only as fast as records are stored), where readline's iterator queues lines without bound.
  const decoder = new StringDecoder('utf8')
  let rest = ''
  try {
    for await (const chunk of gunzip) {
      const text = rest + decoder.write(chunk as Buffer)
      let start = 0
      for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
        if (nl > start) yield text.slice(start, nl)
        start = nl + 1
      }
      rest = text.slice(start)
    }
  } catch (err) {
    throw new BundleRejectedError(bundle.file, `${name} does not decompress (${(err as Error).message})`)
  }
  rest += decoder.end()
  if (rest !== '') yield rest
  if (hash.digest('hex') !== listed.sha256) throw new BundleRejectedError(bundle.file, `${name} changed while it was imported`)
}

/** Parses every line of a small staged file. */
async function readAll<T>(bundle: VerifiedBundle, key: MemberKey): Promise<T[]> {
  const out: T[] = []
  for await (const line of membersLines(bundle, key)) out.push(JSON.parse(line) as T)
  return out
}

/** A batch of record lines, parsed: raw envelopes for the checks, and each one's origin. */
interface LineBatch {
  envelopes: unknown[]
  origins: (string | null)[]
  /** Lines that were not JSON objects (INVALID_RECORD). */
  unparsable: number
  /** Holds a registry record: the next batch's namespace gate must see it applied. */
  registry: boolean
  skipped: number
}

/** Record lines in batches of up to BATCH; a batch ends after a registry record (see LineBatch.registry). */
async function* recordBatches(bundle: VerifiedBundle, threads: ReadonlySet<string> | null): AsyncGenerator<LineBatch> {
  let b: LineBatch = { envelopes: [], origins: [], unparsable: 0, registry: false, skipped: 0 }
  for await (const line of membersLines(bundle, 'records')) {
    let value: RecordLine
    try {
      value = JSON.parse(line) as RecordLine
      if (value === null || typeof value !== 'object') throw new Error('not an object')
    } catch {
      b.unparsable++
      continue
    }
    const thread = (value.record as { thread?: unknown } | null)?.thread
    if (threads && !(typeof thread === 'string' && threads.has(thread))) {
      b.skipped++
      continue
    }
    const { origin, ...envelope } = value
    b.envelopes.push(envelope)
    b.origins.push(typeof origin === 'string' ? origin : null)
    if (typeof thread === 'string' && ConsentRegistry.concerns(thread)) b.registry = true
    if (b.envelopes.length >= BATCH || b.registry) {
      yield b
      b = { envelopes: [], origins: [], unparsable: 0, registry: false, skipped: 0 }
    }
  }
  if (b.envelopes.length > 0 || b.unparsable > 0 || b.skipped > 0) yield b
}

/** Is this home one that holds nothing yet (a new machine): no records, no pairs? */
async function isFresh(home: string): Promise<boolean> {
  const file = homePaths(home).db
  if (!existsSync(file)) return true
  const database = openDatabase(file)
  try {
    const store = await RecordStore.open(database.db)
    const sync = await KyselySyncStore.open(database.db, store)
    return (await store.count()) === 0 && (await sync.listPairs()).length === 0
  } finally {
    await database.db.destroy()
  }
}

/**
 * Imports a bundle into `home` (docs/backup.md). The whole bundle is verified first (nothing is
 * stored from a bundle that fails); then each record goes through the ingest checks of SPEC 2.4
 * and the store's ingest plan, 1,000 per transaction, streamed; pairs (with their cursors),
 * links and the blocklist come last, so a cursor is never restored before its records. Safe to
 * run again after it stopped anywhere: what is here already counts as a duplicate.
 * Takes the home's lock: the daemon must be stopped.
 */
export async function importBundle(home: string, file: string, options: ImportOptions): Promise<ImportReport> {
  const t0 = performance.now()
  const dryRun = options.dryRun === true
  const bundle = await verifyBundle(path.resolve(file))
  const { manifest } = bundle
  const threads = options.threads ? new Set(options.threads) : null
  const initialised = existsSync(homePaths(home).config)

  // Who this home is after the import.
  let identity: ImportReport['identity']
  let keypair: Keypair | null = null
  const paths = homePaths(home)
  const release = dryRun
    ? () => {}
    : (() => {
        if (!initialised) initHome(home)
        return acquireLock(paths.runDir, home)
      })()
  try {
    if (initialised) {
      const cfg = loadConfig(home)
      if (cfg.identity.did === manifest.did) identity = 'same'
      else if (bundle.keypair && (await isFresh(home))) identity = 'adopted'
      else identity = 'kept'
    } else identity = bundle.keypair ? 'adopted' : 'kept'
    if (identity === 'adopted') {
      keypair = bundle.keypair
      if (!dryRun) adoptIdentity(home, bundle.keypair!)
    } else if (initialised || !dryRun) {
      const cfg = loadConfig(home)
      keypair = readKeyFile(path.resolve(home, cfg.identity.key_path), cfg.identity.did)
    }
    const selfDid = keypair?.did ?? '(a new identity)'
    const maxBytes = initialised || !dryRun ? loadConfig(home).records.max_bytes : undefined

    // The stores (none in a dry run of a home that does not exist yet: nothing is held there).
    const database = dryRun && !existsSync(paths.db) ? null : openDatabase(paths.db)
    try {
      const store = database ? await RecordStore.open(database.db) : null
      const registry = store && keypair ? await ConsentRegistry.load(store, keypair.did) : new ConsentRegistry(selfDid)
      const notifier = new ThreadNotifier()
      const service = store && keypair ? new RecordService(store, keypair, registry, notifier, Date.now, maxBytes) : null

      const namespaces = await readAll<NamespaceEntry>(bundle, 'namespaces')
      const grants = await readAll<GrantState>(bundle, 'grants')
      const bindings = await readAll<Binding>(bundle, 'bindings')
      let resigned = 0
      if (identity === 'kept') {
        // Another instance's registry records do not count here: sign its namespaces, grants and
        // bindings anew first, so that its records pass the namespace check (SPEC 7.2).
        if (service) resigned = await resignRegistry({ namespaces, grants, bindings }, registry, service, options.logger)
        else for (const n of namespaces) registry.apply(fakeRegistryRecord(selfDid, 'th_namespace_registry', n))
      }

      // Records: the same checks and plan as a pulled page, one transaction per batch.
      const rec = { ...counts(), received: 0 }
      const total = manifest.members.find((m) => m.name === MEMBERS.records)?.items ?? 0
      const checker = threadPoolCheckerFor(maxBytes)
      const checks = {
        checker,
        known: (ids: readonly string[]) => (store ? store.findExisting(ids) : Promise.resolve(new Map())),
        namespaces: registry,
      }
      const reject = (r: Rejection) => {
        rec.rejected[r.code] = (rec.rejected[r.code] ?? 0) + 1
      }
      const batches = recordBatches(bundle, threads)
      // Bumped once a batch holding registry records is stored: a batch checked before that is
      // checked again (its namespace check must see the registry as it is now).
      let generation = 0
      const prepare = async () => {
        const next = await batches.next()
        if (next.done) return null
        const gen = generation
        return { b: next.value, gen, classified: await checkIncoming(checks, next.value.envelopes, null) }
      }
      type Prepared = NonNullable<Awaited<ReturnType<typeof prepare>>>
      const commit = async ({ b, classified }: Prepared) => {
        rec.received += b.envelopes.length + b.unparsable
        rec.skipped += b.skipped
        rec.duplicates += classified.duplicates
        for (let i = 0; i < b.unparsable; i++) reject({ ok: false, code: 'INVALID_RECORD', message: 'not JSON', id: null })
        for (const r of classified.rejected) reject(r)
        if (classified.accepted.length === 0) return
        if (!store || dryRun) {
          // What would be stored (CLOCK_CONFLICT and repeats inside the bundle are found only by storing).
          rec.stored += classified.accepted.length
          applyRegistry(registry, classified.accepted)
          return
        }
        const originOf = new Map<string, string | null>()
        for (let i = 0; i < b.envelopes.length; i++) originOf.set((b.envelopes[i] as { id: string }).id, b.origins[i]!)
        // One transaction per batch; candidates grouped by the peer they came from, in order.
        const rows: StoredRow[] = await store.transaction(async (trx) => {
          const stored: StoredRow[] = []
          let i = 0
          while (i < classified.accepted.length) {
            const origin = originOf.get(classified.accepted[i]!.id) ?? null
            let j = i + 1
            while (j < classified.accepted.length && (originOf.get(classified.accepted[j]!.id) ?? null) === origin) j++
            const part = classified.accepted.slice(i, j)
            const r = await store.ingestRows(part, { origin, now: Date.now(), keepStoredAt: true }, trx)
            for (const o of r.outcomes) {
              if ('ok' in o) reject(o)
              else if (o.status === 'duplicate') rec.duplicates++
            }
            stored.push(...r.rows)
            i = j
          }
          return stored
        })
        rec.stored += rows.length
        // Registry records fold into the registry at once: the next batch's namespace gate sees them.
        const byThread = new Map<string, StoredRow[]>()
        for (const row of rows)
          if (ConsentRegistry.concerns(row.thread)) byThread.set(row.thread, [...(byThread.get(row.thread) ?? []), row])
        for (const [thread, part] of byThread) service?.stored(thread, part)
      }
      // Pipelined as the ingest ceiling is (bench/ceiling.js): two batches are parsed and checked
      // (signatures on the threadpool) while one commits.
      const queue: Promise<Prepared | null>[] = []
      const fill = () => {
        while (queue.length < LOOKAHEAD) {
          const p = prepare()
          p.catch(() => {}) // surfaced when awaited
          queue.push(p)
        }
      }
      fill()
      for (;;) {
        const cur = await queue.shift()!
        if (cur === null) break
        fill()
        if (cur.gen !== generation) cur.classified = await checkIncoming(checks, cur.b.envelopes, null)
        await commit(cur)
        if (cur.b.registry) generation++
        options.onProgress?.({ records: rec.received + rec.skipped, total })
      }
      notifier.close()

      // Pairs, then links: only now, with every record in (a cursor never ahead of its records).
      const pairs = counts()
      const links = counts()
      const sync = database && store ? await KyselySyncStore.open(database.db, store) : null
      const fed = database ? await FederationStore.open(database.db) : null
      const now = Date.now()
      for (const p of await readAll<Pair>(bundle, 'pairs')) {
        if (threads && !threads.has(p.thread_id)) {
          pairs.skipped++
          continue
        }
        // Another identity pulls under its own pair id, from the start (the source's consent
        // filter answers per caller, so the old cursor may have stepped over what this one may see).
        const pair: Pair =
          identity === 'kept'
            ? {
                ...p,
                pair_id: pairIdFor(selfDid, p.peer_did, p.thread_id),
                cursor: null,
                state: p.state === 'paused' || p.state === 'stopped' ? p.state : 'starting',
                last_error: null,
                created_at: now,
                updated_at: now,
                last_success_at: null,
                caught_up_at: null,
                totals: emptyTotals(),
              }
            : p
        if (sync && (await sync.getPair(pair.pair_id))) {
          pairs.duplicates++
          continue
        }
        if (sync && !dryRun) await sync.savePair(pair)
        pairs.stored++
      }
      for (const l of await readAll<Link>(bundle, 'links')) {
        if (identity === 'kept') {
          links.skipped++ // a link is between the bundle's DID and the peer's
          continue
        }
        if (fed && (await fed.link(l.link_id))) {
          links.duplicates++
          continue
        }
        if (fed && !dryRun) await fed.putLink({ ...l, held_token: null, nonce: null })
        links.stored++
      }
      if (fed && !dryRun) {
        for (const b of await readAll<{ did: string; blocked_at: number }>(bundle, 'blocklist')) await fed.block(b.did, b.blocked_at)
        for (const r of await readAll<{ jti: string; exp: number; revoked_at: number }>(bundle, 'revocations'))
          await fed.revoke(r.jti, r.exp, r.revoked_at)
      }
      if (store && !dryRun) await store.setMeta('identity_did', selfDid)
      return {
        object: 'import',
        file: bundle.file,
        dry_run: dryRun,
        source_did: manifest.did,
        did: selfDid,
        identity,
        records: rec,
        pairs,
        links,
        registry_resigned: resigned,
        namespaces: namespaces.length,
        grants: grants.length,
        bindings: bindings.length,
        seconds: (performance.now() - t0) / 1000,
      }
    } finally {
      await database?.db.destroy()
    }
  } finally {
    release()
  }
}

/** Folds verified registry records into the registry without storing them (a dry run). */
function applyRegistry(registry: ConsentRegistry, accepted: readonly Candidate[]): void {
  for (const c of accepted) {
    if (!c.redacted && ConsentRegistry.concerns(c.record.thread)) registry.apply({ id: c.id, record: c.record, stored_at: Date.now() })
  }
}

/** A registry record of `did` for a dry run's registry (never stored, never signed). */
function fakeRegistryRecord(did: string, thread: string, entry: NamespaceEntry) {
  return {
    id: crypto.randomBytes(32).toString('hex'),
    record: { parents: [], thread, actor: did, act: 'LEARN' as const, body: { ...entry }, clock: 0, data_type: 'SCALAR' as const },
    stored_at: Date.now(),
  }
}
