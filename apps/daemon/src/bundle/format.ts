// The bundle of `spl export` / `spl import` (docs/backup.md): a ustar archive whose first two
// members are manifest.json and manifest.sig, then the staged files the manifest lists, each
// gzip-compressed NDJSON (identity.jwk, when present, as it is on disk). The manifest names every
// staged file with its size and the SHA-256 of its bytes as stored, and manifest.sig is the
// exporting instance's Ed25519 signature over manifest.json's exact bytes.
import { SplError } from '@spl/identity'
import { z } from 'zod'
import { MEMBER_NAME_RE } from './tar.js'

export const BUNDLE_FORMAT = 'spl-bundle/1'
export const MANIFEST = 'manifest.json'
export const SIGNATURE = 'manifest.sig'
export const IDENTITY = 'identity.jwk'

/** The staged files, in the order they are written and read. */
export const MEMBERS = {
  namespaces: 'namespaces.ndjson.gz',
  grants: 'grants.ndjson.gz',
  bindings: 'bindings.ndjson.gz',
  records: 'records.ndjson.gz',
  pairs: 'pairs.ndjson.gz',
  links: 'links.ndjson.gz',
  blocklist: 'blocklist.ndjson.gz',
  revocations: 'revocations.ndjson.gz',
} as const
export type MemberKey = keyof typeof MEMBERS

const hex64 = z.string().regex(/^[0-9a-f]{64}$/)

/** One staged file as the manifest lists it. */
export const memberSchema = z
  .object({
    name: z.string().regex(MEMBER_NAME_RE),
    bytes: z.number().int().nonnegative(),
    sha256: hex64,
    /** Lines (items) in it; absent for identity.jwk. */
    items: z.number().int().nonnegative().optional(),
  })
  .strict()
export type ManifestMember = z.infer<typeof memberSchema>

/** manifest.json. */
export const manifestSchema = z
  .object({
    format: z.literal(BUNDLE_FORMAT),
    /** The exporting instance: manifest.sig verifies against this did:key. */
    did: z.string().startsWith('did:key:'),
    handle: z.string().nullable(),
    spl_version: z.string(),
    created_at: z.string(),
    /** The threads asked for with --threads (the registry threads always go with them), or null for all. */
    threads: z.array(z.string()).nullable(),
    identity: z.boolean(),
    /** The exporting store's head sequence when the export started. */
    head_seq: z.number().int().nonnegative(),
    members: z.array(memberSchema).min(1),
  })
  .strict()
export type Manifest = z.infer<typeof manifestSchema>

/** A line of records.ndjson.gz: the envelope as the change feed serves it, and who it came from. */
export interface RecordLine {
  id: string
  record: unknown
  sig?: string
  stored_at: number
  redacted?: boolean
  /** The peer the record was received from (echo suppression, SPEC 3); null for this instance's own. */
  origin: string | null
}

/** The bundle fails a check: altered, truncated, not a bundle. Nothing was stored. */
export class BundleRejectedError extends SplError {
  override readonly name = 'BundleRejectedError'
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super('BUNDLE_REJECTED', `${file} is refused: ${reason}; nothing was stored.`, {
      status: 422,
      fix: 'export the bundle again from its source (spl export --out FILE), or restore an intact copy',
    })
  }
}
