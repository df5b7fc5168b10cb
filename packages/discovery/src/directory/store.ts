// The did:sync directory's store: signed registrations in the daemon's database, looked up by
// namespace, DID and handle; every registration or import is checked first and written in one
// transaction, and an expired entry is in no answer (and pruned on the next write).
import { SplError } from '@spl/identity'
import type { Kysely, Transaction } from 'kysely'
import { migrateDirectory } from './migrations.js'
import {
  type DeleteClaim,
  MAX_REGISTRATION_LIFETIME_S,
  type Registration,
  RegistrationError,
  verifyDelete,
  verifyRegistration,
} from './registration.js'
import type { DirectoryDb, DirectoryTables } from './tables.js'

/** An entry as the directory answers it: what the registration says, and the registration itself. */
export interface DirectoryEntry {
  object: 'directory_entry'
  did: string
  url: string
  handle: string | null
  namespaces: string[]
  issued_at: string
  expires_at: string
  /** The signed registration: check it yourself, the directory is not trusted. */
  jwt: string
}

export interface DirectoryPage {
  entries: DirectoryEntry[]
  /** Give this as `after` for the next page; absent on the last one. */
  next?: string | undefined
}

/** What an import did with each entry. */
export interface ImportResult {
  object: 'directory_import'
  /** New DIDs. */
  added: number
  /** Newer registrations of DIDs held already. */
  replaced: number
  /** The very registration held already. */
  unchanged: number
  /** Refused: the index in `entries`, the DID when readable, and why. */
  skipped: { index: number; did?: string | undefined; code: string; message: string }[]
}

export const DIRECTORY_PAGE_DEFAULT = 100
export const DIRECTORY_PAGE_MAX = 1000
/** The most entries one import request may carry. */
export const DIRECTORY_IMPORT_MAX = 1000

/** No entry for that DID or handle. */
export class EntryNotFoundError extends SplError {
  override readonly name = 'EntryNotFoundError'
  constructor(what: string) {
    super('DIRECTORY_ENTRY_NOT_FOUND', `${what.slice(0, 200)} is not registered in this directory (or its registration expired).`, {
      status: 404,
      fix: 'register it with `spl directory register --directory URL` (registrations expire: renew them)',
    })
  }
}

type Row = DirectoryTables['spl_directory_entries']
type Outcome = 'added' | 'replaced' | 'unchanged'

function entryOf(row: Row): DirectoryEntry {
  return {
    object: 'directory_entry',
    did: row.did,
    url: row.url,
    handle: row.handle,
    namespaces: JSON.parse(row.namespaces) as string[],
    issued_at: new Date(row.iat * 1000).toISOString(),
    expires_at: new Date(row.exp * 1000).toISOString(),
    jwt: row.jwt,
  }
}

const seconds = (ms: number) => Math.floor(ms / 1000)

export interface DirectoryStoreOptions {
  now?: () => number
}

export class DirectoryStore {
  readonly #db: DirectoryDb
  readonly #now: () => number

  private constructor(db: DirectoryDb, now: () => number) {
    this.#db = db
    this.#now = now
  }

  /** Migrates the directory tables on `db` (the daemon's database) and prunes what expired meanwhile. */
  static async open<DB>(db: Kysely<DB>, options: DirectoryStoreOptions = {}): Promise<DirectoryStore> {
    await migrateDirectory(db as unknown as Kysely<unknown>)
    const store = new DirectoryStore(db as unknown as DirectoryDb, options.now ?? Date.now)
    await store.prune()
    return store
  }

  /** Checks a registration and stores it, replacing an older one of the same DID; throws RegistrationError. */
  async register(jwt: unknown): Promise<{ entry: DirectoryEntry; replaced: boolean; unchanged: boolean }> {
    const now = this.#now()
    const reg = await verifyRegistration(jwt, { now })
    const outcome = await this.#db.transaction().execute(async (trx) => {
      await pruneIn(trx, now)
      return put(trx, reg, now)
    })
    const entry = await this.resolve(reg.did)
    if (!entry) throw new EntryNotFoundError(reg.did) // expired between the check and the read: no
    return { entry, replaced: outcome === 'replaced', unchanged: outcome === 'unchanged' }
  }

  /**
   * Imports registrations exported by another directory: each is checked as if registered here;
   * the good ones are written in one transaction, the others reported in `skipped`.
   */
  async import(jwts: readonly unknown[]): Promise<ImportResult> {
    if (jwts.length > DIRECTORY_IMPORT_MAX) {
      throw new SplError('IMPORT_TOO_LARGE', `an import carries at most ${DIRECTORY_IMPORT_MAX} entries, got ${jwts.length}`, {
        status: 413,
        fix: `send the export in batches of ${DIRECTORY_IMPORT_MAX} (\`spl directory import\` does)`,
      })
    }
    const now = this.#now()
    const result: ImportResult = { object: 'directory_import', added: 0, replaced: 0, unchanged: 0, skipped: [] }
    const checked: { index: number; reg: Registration }[] = []
    for (const [index, jwt] of jwts.entries()) {
      try {
        checked.push({ index, reg: await verifyRegistration(jwt, { now }) })
      } catch (err) {
        const e = SplError.from(err)
        result.skipped.push({ index, code: e.code, message: e.message })
      }
    }
    // Oldest first: when an export holds two registrations of one DID, the newer wins.
    checked.sort((a, b) => a.reg.iat - b.reg.iat)
    await this.#db.transaction().execute(async (trx) => {
      await pruneIn(trx, now)
      for (const { index, reg } of checked) {
        try {
          result[await put(trx, reg, now)]++
        } catch (err) {
          if (!(err instanceof RegistrationError)) throw err
          result.skipped.push({ index, did: reg.did, code: err.code, message: err.message })
        }
      }
    })
    result.skipped.sort((a, b) => a.index - b.index)
    return result
  }

  /** The live entry of `did`, if any. */
  async resolve(did: string): Promise<DirectoryEntry | undefined> {
    const row = await this.#db
      .selectFrom('spl_directory_entries')
      .selectAll()
      .where('did', '=', did)
      .where('exp', '>', seconds(this.#now()))
      .executeTakeFirst()
    return row && entryOf(row)
  }

  /** The live entry that claims `handle` (handles are unique among live entries). */
  async byHandle(handle: string): Promise<DirectoryEntry | undefined> {
    const row = await this.#db
      .selectFrom('spl_directory_entries')
      .selectAll()
      .where('handle', '=', handle)
      .where('exp', '>', seconds(this.#now()))
      .executeTakeFirst()
    return row && entryOf(row)
  }

  /** The live entries registered in `namespace`, by DID, a page at a time. */
  async byNamespace(namespace: string, page: { after?: string | undefined; limit?: number | undefined } = {}): Promise<DirectoryPage> {
    const limit = Math.min(page.limit ?? DIRECTORY_PAGE_DEFAULT, DIRECTORY_PAGE_MAX)
    let q = this.#db
      .selectFrom('spl_directory_namespaces as n')
      .innerJoin('spl_directory_entries as e', 'e.did', 'n.did')
      .selectAll('e')
      .where('n.namespace', '=', namespace)
      .where('e.exp', '>', seconds(this.#now()))
    if (page.after !== undefined) q = q.where('e.did', '>', page.after)
    const rows = await q
      .orderBy('e.did')
      .limit(limit + 1)
      .execute()
    return pageOf(rows, limit)
  }

  /** Every live entry, by DID, a page at a time (the export). */
  async list(page: { after?: string | undefined; limit?: number | undefined } = {}): Promise<DirectoryPage> {
    const limit = Math.min(page.limit ?? DIRECTORY_PAGE_MAX, DIRECTORY_PAGE_MAX)
    let q = this.#db.selectFrom('spl_directory_entries').selectAll().where('exp', '>', seconds(this.#now()))
    if (page.after !== undefined) q = q.where('did', '>', page.after)
    const rows = await q
      .orderBy('did')
      .limit(limit + 1)
      .execute()
    return pageOf(rows, limit)
  }

  /**
   * Deletes the entry of `did` on a delete signed by `did` (the `Authorization` header); the
   * DID's registrations issued up to the delete stay refused (here and on import) until they
   * could have expired. Throws DeleteRefusedError or EntryNotFoundError.
   */
  async remove(did: string, authorization: string | undefined): Promise<DeleteClaim> {
    const now = this.#now()
    const claim = await verifyDelete(authorization, did, { now })
    const deleted = await this.#db.transaction().execute(async (trx) => {
      await pruneIn(trx, now)
      const held = await trx.selectFrom('spl_directory_entries').select('iat').where('did', '=', did).executeTakeFirst()
      if (!held) return 'missing'
      if (held.iat > claim.iat) return 'stale'
      await trx.deleteFrom('spl_directory_namespaces').where('did', '=', did).execute()
      await trx.deleteFrom('spl_directory_entries').where('did', '=', did).execute()
      const tomb = { did, before_iat: claim.iat, until_s: claim.iat + MAX_REGISTRATION_LIFETIME_S }
      await trx
        .insertInto('spl_directory_tombstones')
        .values(tomb)
        .onConflict((oc) => oc.column('did').doUpdateSet({ before_iat: tomb.before_iat, until_s: tomb.until_s }))
        .execute()
      return 'deleted'
    })
    if (deleted === 'missing') throw new EntryNotFoundError(did)
    if (deleted === 'stale') {
      throw new SplError('DELETE_STALE', `the entry of ${did} was registered after this delete was signed: it stays`, {
        status: 409,
        fix: 'sign a new delete (`spl directory unregister`)',
      })
    }
    return claim
  }

  /** Deletes expired entries and tombstones; returns how many entries went. */
  async prune(): Promise<number> {
    const now = this.#now()
    return this.#db.transaction().execute((trx) => pruneIn(trx, now))
  }

  /** How many live entries there are (tests, status). */
  async size(): Promise<number> {
    const r = await this.#db
      .selectFrom('spl_directory_entries')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('exp', '>', seconds(this.#now()))
      .executeTakeFirstOrThrow()
    return Number(r.n)
  }
}

function pageOf(rows: Row[], limit: number): DirectoryPage {
  const more = rows.length > limit
  const kept = more ? rows.slice(0, limit) : rows
  return { entries: kept.map(entryOf), ...(more ? { next: kept[kept.length - 1]!.did } : {}) }
}

async function pruneIn(trx: Transaction<DirectoryTables>, now: number): Promise<number> {
  const nowS = seconds(now)
  const gone = await trx.selectFrom('spl_directory_entries').select('did').where('exp', '<=', nowS).execute()
  if (gone.length > 0) {
    const dids = gone.map((g) => g.did)
    for (let i = 0; i < dids.length; i += 500) {
      const slice = dids.slice(i, i + 500)
      await trx.deleteFrom('spl_directory_namespaces').where('did', 'in', slice).execute()
      await trx.deleteFrom('spl_directory_entries').where('did', 'in', slice).execute()
    }
  }
  await trx.deleteFrom('spl_directory_tombstones').where('until_s', '<=', nowS).execute()
  return gone.length
}

/** Writes one checked registration inside `trx` (after pruning); throws RegistrationError when it may not be. */
async function put(trx: Transaction<DirectoryTables>, reg: Registration, now: number): Promise<Outcome> {
  const tomb = await trx.selectFrom('spl_directory_tombstones').select('before_iat').where('did', '=', reg.did).executeTakeFirst()
  if (tomb && reg.iat <= tomb.before_iat) {
    throw new RegistrationError('REGISTRATION_STALE', `${reg.did} deleted its entry after this registration was issued`)
  }
  const held = await trx.selectFrom('spl_directory_entries').select(['iat', 'jwt']).where('did', '=', reg.did).executeTakeFirst()
  if (held?.jwt === reg.jwt) return 'unchanged'
  if (held && held.iat > reg.iat) {
    throw new RegistrationError(
      'REGISTRATION_STALE',
      `a newer registration of ${reg.did} is held (issued ${new Date(held.iat * 1000).toISOString()})`,
    )
  }
  if (reg.handle !== undefined) {
    const holder = await trx.selectFrom('spl_directory_entries').select('did').where('handle', '=', reg.handle).executeTakeFirst()
    if (holder && holder.did !== reg.did) {
      throw new RegistrationError('HANDLE_TAKEN', `the handle '${reg.handle}' is held by ${holder.did}`)
    }
  }
  const row: Row = {
    did: reg.did,
    url: reg.url,
    handle: reg.handle ?? null,
    namespaces: JSON.stringify(reg.namespaces),
    iat: reg.iat,
    exp: reg.exp,
    jwt: reg.jwt,
    stored_at: now,
  }
  const { did: _did, ...update } = row
  await trx
    .insertInto('spl_directory_entries')
    .values(row)
    .onConflict((oc) => oc.column('did').doUpdateSet(update))
    .execute()
  await trx.deleteFrom('spl_directory_namespaces').where('did', '=', reg.did).execute()
  await trx
    .insertInto('spl_directory_namespaces')
    .values(reg.namespaces.map((namespace) => ({ namespace, did: reg.did })))
    .execute()
  return held ? 'replaced' : 'added'
}
