import { type Binding, ConsentRegistry, type GrantState, type NamespaceEntry } from '@spl/consent'
import type { RecordStore } from '@spl/records'
import type { Logger } from './logger.js'
import type { RecordService } from './records-service.js'

const META_KEY = 'identity_did'

/** The registry of another identity, as entries to sign again under this one. */
export interface RegistryEntries {
  namespaces: readonly NamespaceEntry[]
  grants: readonly GrantState[]
  bindings: readonly Binding[]
}

/**
 * Signs with this instance's key the namespaces, live grants and bindings of another identity
 * that this registry lacks (the registry trusts only records signed by its own DID). Returns how
 * many records it emitted.
 */
export async function resignRegistry(
  old: RegistryEntries,
  registry: ConsentRegistry,
  records: RecordService,
  logger: Logger,
): Promise<number> {
  let carried = 0
  const emit = async (thread: string, body: Record<string, unknown>) => {
    try {
      await records.emit({ act: 'LEARN', thread, body, parents: [], data_type: 'SCALAR' })
      carried++
    } catch (err) {
      logger.warn({ err, body }, 'could not carry a registry entry over to the new identity')
    }
  }
  for (const entry of old.namespaces) {
    if (entry.namespace === 'default' || registry.namespace(entry.namespace)) continue
    const { kind, namespace, status, description } = entry
    await emit('th_namespace_registry', { kind, namespace, status, description })
  }
  for (const g of old.grants) {
    if (g.revoked || registry.grant(g.grant_id)) continue
    const { clock: _c, record_id: _r, created_at: _t, revoked: _v, ...body } = g
    await emit('th_consent', { ...body })
  }
  for (const b of old.bindings) {
    if (registry.bindingOf(b.did) !== null) continue
    await emit('th_consent', { kind: 'core.consent.bind.v1', did: b.did, bound_namespace: b.namespace })
  }
  return carried
}

/**
 * After `spl init --force` the instance signs with a new key, and the registry only trusts
 * records signed by the current DID. So the first start under a new DID re-signs what the
 * previous identity had set up — active namespaces, live grants, bindings — with the new key.
 */
export async function carryRegistryOver(
  store: RecordStore,
  registry: ConsentRegistry,
  records: RecordService,
  did: string,
  logger: Logger,
): Promise<void> {
  const previous = await store.getMeta(META_KEY)
  if (previous && previous !== did) {
    const old = await ConsentRegistry.load(store, previous)
    const carried = await resignRegistry(
      { namespaces: old.namespaces(), grants: old.grants(), bindings: old.bindings() },
      registry,
      records,
      logger,
    )
    logger.info({ previous, did, carried }, 'new identity: re-signed the namespace registry, grants and bindings of the previous one')
  }
  if (previous !== did) await store.setMeta(META_KEY, did)
}
