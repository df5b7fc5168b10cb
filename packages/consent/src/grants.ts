import { SplError } from '@spl/identity'
import { z } from 'zod'
import { assertNamespaceId, NAMESPACE_RE } from './namespace.js'

export const CONSENT_THREAD = 'th_consent'
export const HASH_LEVELS = ['L0', 'L1', 'L2', 'L3'] as const
export type HashLevel = (typeof HASH_LEVELS)[number]
/** Levels granted when none are named: everything but L0, so bodies stay home. */
export const DEFAULT_HASH_LEVELS: HashLevel[] = ['L1', 'L2', 'L3']

/** A consent grant: records of `source_namespace` may be served to callers in `target_namespace`. */
export interface Grant {
  kind: 'core.consent.v1'
  grant_id: string
  source_namespace: string
  target_namespace: string
  hash_levels: HashLevel[]
  threads: '*' | string[]
  purpose?: string
  expires_at?: string
}

/** A grant as it stands in the registry: with when it was made and whether it still counts. */
export interface GrantState extends Grant {
  /** Clock of the grant record (orders grants: higher is more recent). */
  clock: number
  record_id: string
  created_at: number
  revoked: boolean
}

/** Binds a caller DID to the namespace it may claim (SPEC 6.4). */
export interface Binding {
  did: string
  namespace: string
}

const threadList = z.array(z.string().regex(/^th_[A-Za-z0-9_.:-]{1,200}$/)).min(1)

/** What a grant request must contain (HTTP body and CLI flags alike). */
export const grantInputSchema = z
  .object({
    source_namespace: z.string().regex(NAMESPACE_RE).default('default'),
    target_namespace: z.string().regex(NAMESPACE_RE),
    hash_levels: z.array(z.enum(HASH_LEVELS)).min(1).default(DEFAULT_HASH_LEVELS),
    threads: z.union([z.literal('*'), threadList]).default('*'),
    purpose: z.string().max(500).optional(),
    expires_at: z.iso.datetime({ offset: true }).optional(),
  })
  .strict()
export type GrantInput = z.input<typeof grantInputSchema>

/** A grant id: `cg_` + 12 lowercase hex. */
export const GRANT_ID_RE = /^cg_[0-9a-f]{12}$/

/** An unknown grant id. */
export class GrantNotFoundError extends SplError {
  override readonly name = 'GrantNotFoundError'
  constructor(readonly grantId: string) {
    super('GRANT_NOT_FOUND', `no grant '${grantId.slice(0, 40)}' on this instance.`, {
      status: 404,
      fix: 'spl consent list',
    })
  }
}

/** Builds the body of a grant record from checked input. */
export function grantBody(input: z.output<typeof grantInputSchema>, grantId: string): Grant {
  assertNamespaceId(input.source_namespace)
  assertNamespaceId(input.target_namespace)
  const levels = HASH_LEVELS.filter((l) => input.hash_levels.includes(l))
  return {
    kind: 'core.consent.v1',
    grant_id: grantId,
    source_namespace: input.source_namespace,
    target_namespace: input.target_namespace,
    hash_levels: levels,
    threads: input.threads === '*' ? '*' : [...new Set(input.threads)].sort(),
    ...(input.purpose === undefined ? {} : { purpose: input.purpose }),
    ...(input.expires_at === undefined ? {} : { expires_at: new Date(input.expires_at).toISOString() }),
  }
}

/** Parses a grant record body; null for anything else. */
export function parseGrant(body: Record<string, unknown>): Grant | null {
  if (body['kind'] !== 'core.consent.v1') return null
  const parsed = grantInputSchema.safeParse({
    source_namespace: body['source_namespace'],
    target_namespace: body['target_namespace'],
    hash_levels: body['hash_levels'],
    threads: body['threads'],
    purpose: body['purpose'],
    expires_at: body['expires_at'],
  })
  if (!parsed.success || typeof body['grant_id'] !== 'string' || !GRANT_ID_RE.test(body['grant_id'])) return null
  return grantBody(parsed.data, body['grant_id'])
}
