import type { Kysely } from 'kysely'

/** The directory's tables (created by migrations.ts) in the daemon's database. */
export interface DirectoryTables {
  /** One live registration per DID, as it was signed. */
  spl_directory_entries: {
    did: string
    url: string
    handle: string | null
    /** JSON array of the namespaces (also rows of spl_directory_namespaces). */
    namespaces: string
    /** The registration's iat and exp, seconds since the epoch. */
    iat: number
    exp: number
    /** The compact JWS exactly as registered (what the export hands out). */
    jwt: string
    /** When this directory stored it (ms). */
    stored_at: number
  }
  /** Which DID is registered in which namespace (the lookup by namespace). */
  spl_directory_namespaces: {
    namespace: string
    did: string
  }
  /** A signed delete: registrations of `did` issued at or before `before_iat` are refused until `until_s`. */
  spl_directory_tombstones: {
    did: string
    before_iat: number
    until_s: number
  }
}

export type DirectoryDb = Kysely<DirectoryTables>
