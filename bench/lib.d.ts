// Types of the bench helpers that TypeScript tests use (apps/cli/test/audit.e2e.test.ts seeds a store as bench/catchup.js does).
import type { Keypair } from '@spl/identity'

export interface SignedBenchRecord {
  id: string
  record: unknown
  sig: string
  canonical: string
}

/** `spl init` on a new temporary home; returns its path. */
export function initHome(prefix?: string): Promise<string>
/** The instance key of an initialised home. */
export function keypairOfHome(home: string): Promise<Keypair>
/** `n` signed benchmark records (~500 B each) of `thread` by `keypair`. */
export function signedRecords(keypair: Keypair, thread: string, n: number): Promise<SignedBenchRecord[]>
/** Writes signed records into the store of `home` (daemon not running), or into the PostgreSQL `database` it will run on; returns records per second. */
export function seedHome(home: string, records: readonly SignedBenchRecord[], namespace?: string, database?: string): Promise<number>
/** Opens a SQLite file the way the daemon does: the kysely instance and the raw better-sqlite3 handle. */
export function openDb(file: string): Promise<{
  db: { destroy(): Promise<void> }
  sqlite: { prepare(sql: string): { get(): unknown }; pragma(text: string): unknown }
}>
