import type { RecordFields, RecordStore } from '@spl/records'
import { type Binding, CONSENT_THREAD, type GrantState, parseGrant } from './grants.js'
import {
  ancestorsOf,
  DEFAULT_NAMESPACE,
  NAMESPACE_REGISTRY_THREAD,
  type NamespaceEntry,
  NamespaceRejectedError,
  parseNamespaceEntry,
} from './namespace.js'

/** A registry record as stored (only what the fold needs). */
export interface RegistryRecord {
  id: string
  record: RecordFields
  stored_at: number
}

const PAGE = 1000

/**
 * The namespace registry, grants and bindings of one instance: a fold over the LEARN records
 * that THIS instance signed on th_namespace_registry and th_consent (records by anyone else on
 * those threads, e.g. synced from a peer, never count). Latest clock wins.
 */
export class ConsentRegistry {
  readonly #namespaces = new Map<string, NamespaceEntry & { clock: number }>()
  readonly #grants = new Map<string, GrantState>()
  readonly #revokedAt = new Map<string, number>()
  readonly #bindings = new Map<string, { namespace: string | null; clock: number }>()

  /** The highest seq read from the store per registry thread (where `refresh` goes on from). */
  readonly #seen = new Map<string, number>()

  constructor(readonly selfDid: string) {}

  /** Builds the registry from the store. */
  static async load(store: RecordStore, selfDid: string): Promise<ConsentRegistry> {
    const reg = new ConsentRegistry(selfDid)
    await reg.refresh(store)
    return reg
  }

  /**
   * Folds in the registry records stored since the last load or refresh — those another daemon on
   * the same database (a replica) stored; records folded already through `apply` fold again to the
   * same state. Returns how many rows it read.
   */
  async refresh(store: RecordStore): Promise<number> {
    let read = 0
    for (const thread of [NAMESPACE_REGISTRY_THREAD, CONSENT_THREAD]) {
      let after = this.#seen.get(thread) ?? 0
      for (;;) {
        const rows = await store.listAfter(thread, after, PAGE)
        for (const row of rows) {
          if (!row.redacted) this.apply({ id: row.id, record: JSON.parse(row.record), stored_at: row.stored_at })
        }
        read += rows.length
        if (rows.length > 0) after = rows[rows.length - 1]!.seq
        if (rows.length < PAGE) break
      }
      this.#seen.set(thread, after)
    }
    return read
  }

  /** True when a record on `thread` may change the registry (so callers know to apply it). */
  static concerns(thread: string): boolean {
    return thread === NAMESPACE_REGISTRY_THREAD || thread === CONSENT_THREAD
  }

  /** Folds one stored record in; ignores records not signed here, not LEARN, or malformed. */
  apply({ id, record, stored_at }: RegistryRecord): void {
    if (record.actor !== this.selfDid || record.act !== 'LEARN') return
    const body = record.body
    if (record.thread === NAMESPACE_REGISTRY_THREAD) {
      const entry = parseNamespaceEntry(body)
      if (!entry || entry.namespace === DEFAULT_NAMESPACE) return
      const prev = this.#namespaces.get(entry.namespace)
      if (!prev || prev.clock < record.clock) this.#namespaces.set(entry.namespace, { ...entry, clock: record.clock })
      return
    }
    if (record.thread !== CONSENT_THREAD) return
    const kind = body['kind']
    if (kind === 'core.consent.v1') {
      const grant = parseGrant(body)
      if (!grant) return
      // Latest clock wins here too: a refresh may fold an older record after a newer one.
      const prev = this.#grants.get(grant.grant_id)
      if (prev && prev.clock > record.clock) return
      const revokedAt = this.#revokedAt.get(grant.grant_id)
      this.#grants.set(grant.grant_id, {
        ...grant,
        clock: record.clock,
        record_id: id,
        created_at: stored_at,
        revoked: revokedAt !== undefined && revokedAt > record.clock,
      })
    } else if (kind === 'core.consent.revoke.v1' && typeof body['grant_id'] === 'string') {
      const grantId = body['grant_id']
      this.#revokedAt.set(grantId, Math.max(record.clock, this.#revokedAt.get(grantId) ?? -1))
      const g = this.#grants.get(grantId)
      if (g && g.clock < record.clock) g.revoked = true
    } else if (kind === 'core.consent.bind.v1' || kind === 'core.consent.unbind.v1') {
      // The field is `bound_namespace`, not `namespace`, so the record itself stays in `default`.
      const did = body['did']
      const ns = kind === 'core.consent.bind.v1' ? body['bound_namespace'] : null
      if (typeof did !== 'string' || (ns !== null && typeof ns !== 'string')) return
      const prev = this.#bindings.get(did)
      if (!prev || prev.clock < record.clock) this.#bindings.set(did, { namespace: ns, clock: record.clock })
    }
  }

  /** The registry entry of `ns` (`default` is always active). */
  namespace(ns: string): NamespaceEntry | undefined {
    if (ns === DEFAULT_NAMESPACE) {
      return { kind: 'core.namespace.v1', namespace: ns, status: 'active', description: 'always present' }
    }
    const e = this.#namespaces.get(ns)
    return e && { kind: e.kind, namespace: e.namespace, status: e.status, description: e.description }
  }

  /** All registered namespaces (with `default`), sorted. */
  namespaces(): NamespaceEntry[] {
    const all = [...this.#namespaces.keys(), DEFAULT_NAMESPACE].sort()
    return all.map((ns) => this.namespace(ns)!)
  }

  /** The first ancestor of `ns` (itself included) that is not active, or null when all are. */
  inactiveAncestor(ns: string): string | null {
    if (ns === DEFAULT_NAMESPACE) return null
    for (const a of ancestorsOf(ns)) {
      if (this.namespace(a)?.status !== 'active') return a
    }
    return null
  }

  /**
   * The namespace check of SPEC 7.2 for one record: the first inactive ancestor, or null when
   * the record may be stored. A registry entry (core.namespace.v1 on th_namespace_registry)
   * names the namespace it registers, so it is checked against that namespace's parent —
   * otherwise no namespace could ever be created.
   */
  namespaceGate(record: Pick<RecordFields, 'thread' | 'body'>): string | null {
    const body = record.body
    const ns = typeof body['namespace'] === 'string' ? body['namespace'] : DEFAULT_NAMESPACE
    if (record.thread === NAMESPACE_REGISTRY_THREAD && body['kind'] === 'core.namespace.v1') {
      const slash = ns.lastIndexOf('/')
      return slash < 0 ? null : this.inactiveAncestor(ns.slice(0, slash))
    }
    return this.inactiveAncestor(ns)
  }

  /** Throws NamespaceRejectedError unless `ns` and all its ancestors are active (SPEC 6.1). */
  assertUsable(ns: string): void {
    const bad = this.inactiveAncestor(ns)
    if (bad !== null) throw new NamespaceRejectedError(ns, bad)
  }

  /** Every grant, revoked and expired ones included, most recent first. */
  grants(): GrantState[] {
    return [...this.#grants.values()].sort((a, b) => b.clock - a.clock)
  }

  /** One grant by id. */
  grant(grantId: string): GrantState | undefined {
    return this.#grants.get(grantId)
  }

  /** The namespace `did` is bound to here, or null. */
  bindingOf(did: string): string | null {
    return this.#bindings.get(did)?.namespace ?? null
  }

  /** Every live binding. */
  bindings(): Binding[] {
    const out: Binding[] = []
    for (const [did, b] of this.#bindings) if (b.namespace !== null) out.push({ did, namespace: b.namespace })
    // Code-unit order: localeCompare would depend on the locale (and fold case).
    return out.sort((a, b) => (a.did < b.did ? -1 : a.did > b.did ? 1 : 0))
  }
}
