import { SplError } from '@spl/identity'

export const NAMESPACE_REGISTRY_THREAD = 'th_namespace_registry'
export const DEFAULT_NAMESPACE = 'default'
const SEGMENT = '[a-z0-9][a-z0-9_-]*'
export const NAMESPACE_RE = new RegExp(`^${SEGMENT}(/${SEGMENT})*$`)
export const NAMESPACE_STATUSES = ['active', 'archived', 'deleted'] as const
export type NamespaceStatus = (typeof NAMESPACE_STATUSES)[number]

/** A namespace id that breaks the rules of SPEC 6.1. */
export class InvalidNamespaceError extends SplError {
  override readonly name = 'InvalidNamespaceError'
  constructor(
    readonly namespace: string,
    reason: string,
  ) {
    super('INVALID_NAMESPACE', `'${namespace.slice(0, 300)}' is not a valid namespace: ${reason}.`, {
      status: 400,
      fix: 'use lowercase segments of [a-z0-9_-] joined by /, at most 4 segments of 63 characters, e.g. acme/ops',
    })
  }
}

/** A record (or claim) in a namespace whose ancestor is not active here. */
export class NamespaceRejectedError extends SplError {
  override readonly name = 'NamespaceRejectedError'
  constructor(
    readonly namespace: string,
    readonly ancestor: string,
  ) {
    super('NAMESPACE_REJECTED', `NAMESPACE_REJECTED: ancestor '${ancestor}' is not Active in the registry.`, {
      status: 403,
      fix: `spl namespace create ${ancestor}`,
    })
  }
}

/** Throws InvalidNamespaceError unless `ns` is a well-formed namespace id. */
export function assertNamespaceId(ns: unknown): asserts ns is string {
  if (typeof ns !== 'string') throw new InvalidNamespaceError(String(ns), 'it is not a string')
  if (ns.length > 256) throw new InvalidNamespaceError(ns, 'it is longer than 256 characters')
  if (!NAMESPACE_RE.test(ns)) throw new InvalidNamespaceError(ns, 'it has characters or separators not allowed')
  const segments = ns.split('/')
  if (segments.length > 4) throw new InvalidNamespaceError(ns, 'it has more than 4 segments')
  if (segments.some((s) => s.length > 63)) throw new InvalidNamespaceError(ns, 'a segment is longer than 63 characters')
}

/** True when `ns` is a well-formed namespace id (the non-throwing assertNamespaceId). */
export function isNamespaceId(ns: unknown): ns is string {
  try {
    assertNamespaceId(ns)
    return true
  } catch {
    return false
  }
}

/** `a/b/c` → `['a', 'a/b', 'a/b/c']`: the chain that must be active for `a/b/c` to be usable. */
export function ancestorsOf(ns: string): string[] {
  const parts = ns.split('/')
  return parts.map((_, i) => parts.slice(0, i + 1).join('/'))
}

/** The body of a registry record (SPEC 6.1). */
export interface NamespaceEntry {
  kind: 'core.namespace.v1'
  namespace: string
  status: NamespaceStatus
  description: string
}

/** Parses a registry record body; null for anything that is not a well-formed entry. */
export function parseNamespaceEntry(body: Record<string, unknown>): NamespaceEntry | null {
  if (body['kind'] !== 'core.namespace.v1') return null
  const { namespace, status, description } = body
  if (!isNamespaceId(namespace)) return null
  if (!NAMESPACE_STATUSES.includes(status as NamespaceStatus)) return null
  return {
    kind: 'core.namespace.v1',
    namespace,
    status: status as NamespaceStatus,
    description: typeof description === 'string' ? description : '',
  }
}
