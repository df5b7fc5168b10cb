import type { Candidate, EnvelopeChecker, StoredRow } from '@spl/records'
import type { ChangesPage, ChangesRequest, ReconcileAnswer, ReconcileRequest, WatchedChange, WatchRequest } from '@spl/transport'
import type { Logger } from '../logger.js'
import type { Pair, PairNotice } from '../pair.js'
import type { PairLeases, PairStore, RecordSink } from '../stores.js'

/** Pulls change-feed pages from a peer (PeerClient from @spl/transport fits). */
export interface PeerTransport {
  fetchChanges(req: ChangesRequest): Promise<ChangesPage>
  /** One request to the source's reconcile door (audits, SPEC 13); without it the engine cannot audit. */
  reconcile?(req: ReconcileRequest): Promise<ReconcileAnswer>
  /** One per-peer watch of many threads (docs/federation.md); without it each pair long-polls alone. */
  watch?(req: WatchRequest): Promise<WatchedChange[]>
}

/** The engine's collaborators, handed in rather than imported. */
export interface SyncEngineComponents {
  /** This instance's DID (pair ids derive from it). */
  localDid: string
  pairs: PairStore
  sink: RecordSink
  transport: PeerTransport
  /** Runs every check of a record (schema, hash, signature): inlineChecker or threadPoolChecker. */
  checker: EnvelopeChecker
  /** Namespace check of SPEC 7.2: the first inactive ancestor for a record, or null when usable. */
  namespaces: { namespaceGate(record: Candidate['record']): string | null }
  clock?: { now(): number }
  logger?: Logger
  /** The bearer token of a peer link towards `peerDid`, when there is one. */
  credentials?: (peerDid: string) => string | null
  /** The namespace to claim towards `peerDid` when a peer link maps one (SPEC 9.3); else targetNamespace. */
  targetNamespaceFor?: (peerDid: string) => string | null
  /** Called with the rows just stored (wake long polls, refresh registries), in store order. */
  onStored?: (thread: string, rows: readonly StoredRow[]) => void
  /** Called with each stored record's delivery latency (for exporters such as Prometheus). */
  observeLatency?: (pairId: string, ms: number) => void
  /** The ids this instance holds in a thread, sorted (what an audit reconciles; RecordStore.threadIds fits). */
  threadIds?: (thread: string) => Promise<string[]>
  /** Replicas on one database (SPEC 11): each pair is pulled by the replica holding its lease. Without: every pair here. */
  leases?: PairLeases
}

export interface SyncOptions {
  /** The namespace this instance reads as (its identity.namespace). */
  targetNamespace?: string
  pageLimit?: number
  longpollTimeoutMs?: number
  defaultPollIntervalMs?: number
  random?: () => number
  /** Caught-up pairs towards one peer wait in one watch (default true; false: one long poll per pair). */
  watch?: boolean
}

/** The options a SyncEngine takes when none are given. */
export const DEFAULT_OPTIONS: Required<SyncOptions> = {
  targetNamespace: 'default',
  // Records asked per page: two pages in flight (one committing, one checked or on its way) are
  // most of a catch-up's memory, and 1000 measured no faster (docs/performance.md).
  pageLimit: 500,
  longpollTimeoutMs: 30_000,
  defaultPollIntervalMs: 5000,
  random: Math.random,
  watch: true,
}

/** The components with their defaults filled in. */
export type ResolvedComponents = Required<
  Omit<SyncEngineComponents, 'credentials' | 'targetNamespaceFor' | 'onStored' | 'observeLatency' | 'threadIds' | 'leases'>
> &
  Pick<SyncEngineComponents, 'credentials' | 'targetNamespaceFor' | 'onStored' | 'observeLatency' | 'threadIds' | 'leases'>

/** A pair as the API shows it: the stored pair plus its live scheduling state. */
export interface PairView extends Pair {
  backoff_ms: number
  attempt: number
  next_attempt_at: number | null
  /** Why the pair polls although its mode is longpoll (null when it does not, or not seen since the start). */
  notice: PairNotice | null
}

/** Progress of a catch-up, page by page. */
export interface PullProgress {
  pages: number
  received: number
  stored: number
  duplicates: number
  rejected: number
  cursor: string | null
  hasMore: boolean
}
