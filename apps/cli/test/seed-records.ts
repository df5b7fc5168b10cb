import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { Keypair } from '@spl/identity'
import { type Candidate, RecordStore, signRecord } from '@spl/records'

// Fast, honest seeding of a real home's store (before its daemon starts): records signed with the
// home's own key, written through the same RecordStore the daemon uses, 1000 per transaction.

/** better-sqlite3 and kysely are dependencies of @spl/daemon only: load them from there. */
const requireFromDaemon = createRequire(new URL('../../daemon/package.json', import.meta.url))

/** A prepared statement of better-sqlite3 (the part these tests use). */
export interface SqliteStatement {
  get(...params: unknown[]): unknown
  all(...params: unknown[]): unknown[]
  pluck(on?: boolean): SqliteStatement
}
/** The subset of better-sqlite3 these tests use. */
export interface SqliteDb {
  pragma(source: string, options?: { simple?: boolean }): unknown
  prepare(source: string): SqliteStatement
  exec(source: string): unknown
  close(): void
}
type SqliteCtor = new (file: string, options?: { readonly?: boolean; fileMustExist?: boolean }) => SqliteDb
export const Database = requireFromDaemon('better-sqlite3') as SqliteCtor

interface KyselyModule {
  Kysely: new (config: { dialect: unknown }) => RecordStore['db']
  SqliteDialect: new (config: { database: SqliteDb }) => unknown
}
const { Kysely, SqliteDialect } = requireFromDaemon('kysely') as KyselyModule

/** The keypair of an initialised home (keys/primary.key: an Ed25519 JWK, `d` = base64url seed). */
export function homeKeypair(home: string): Keypair {
  const jwk = JSON.parse(readFileSync(path.join(home, 'keys', 'primary.key'), 'utf8')) as { d: string }
  return Keypair.fromSeed(new Uint8Array(Buffer.from(jwk.d, 'base64url')))
}

export interface SeedResult {
  did: string
  epoch: string
  count: number
  /** Average size of one envelope as served (JSON bytes). */
  envelopeBytes: number
  ms: number
}

/**
 * Writes `count` records signed by the home's key into `thread` of `home/spl.db`, as local
 * emits (origin null), clocks 0…count−1, in transactions of `batch`. The daemon must not run.
 */
export async function seedRecords(home: string, thread: string, count: number, batch = 1000): Promise<SeedResult> {
  const t0 = Date.now()
  const keypair = homeKeypair(home)
  const sqlite = new Database(path.join(home, 'spl.db'))
  sqlite.pragma('journal_mode = WAL')
  sqlite.pragma('synchronous = NORMAL')
  const db = new Kysely({ dialect: new SqliteDialect({ database: sqlite }) })
  let bytes = 0
  try {
    const store = await RecordStore.open(db)
    // ~200 characters of text make an envelope of about 500 bytes.
    const filler = 'lorem ipsum dolor sit amet, consectetur adipiscing elit '.repeat(4).slice(0, 190)
    for (let start = 0; start < count; start += batch) {
      const candidates: Candidate[] = []
      for (let clock = start; clock < Math.min(count, start + batch); clock++) {
        const signed = signRecord(keypair, {
          parents: [],
          thread,
          actor: keypair.did,
          act: 'KNOW',
          body: { text: `record ${clock}: ${filler}` },
          clock,
          data_type: 'SCALAR',
        })
        if (clock === start) bytes += JSON.stringify({ ...signed, canonical: undefined, stored_at: Date.now() }).length
        candidates.push({
          ok: true,
          id: signed.id,
          record: signed.record,
          canonical: signed.canonical,
          sig: signed.sig,
          namespace: 'default',
          redacted: false,
          storedAt: null,
        })
      }
      const now = Date.now()
      const outcomes = await store.transaction((trx) => store.ingest(candidates, { origin: null, now }, trx))
      const bad = outcomes.find((o) => !('status' in o) || o.status !== 'stored')
      if (bad) throw new Error(`seeding ${thread}: a record was not stored: ${JSON.stringify(bad)}`)
    }
    return {
      did: keypair.did,
      epoch: store.epoch,
      count,
      envelopeBytes: Math.round(bytes / Math.ceil(count / batch)),
      ms: Date.now() - t0,
    }
  } finally {
    await db.destroy()
  }
}
