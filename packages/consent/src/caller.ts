import { SplError } from '@spl/identity'
import { DEFAULT_NAMESPACE } from './namespace.js'

export const SERVE_POLICIES = ['open', 'paired'] as const
export type ServePolicy = (typeof SERVE_POLICIES)[number]

/** A caller claimed a namespace it is not bound to. */
export class NamespaceClaimDeniedError extends SplError {
  override readonly name = 'NamespaceClaimDeniedError'
  constructor(
    readonly callerDid: string,
    readonly claimed: string,
    readonly bound: string | null,
  ) {
    super(
      'NAMESPACE_CLAIM_DENIED',
      bound === null
        ? `caller ${callerDid} is not bound to namespace '${claimed}' on this source; run \`spl consent bind ${callerDid} --namespace ${claimed}\` on the source to allow it.`
        : `caller ${callerDid} is bound to namespace '${bound}', not '${claimed}'.`,
      {
        status: 403,
        fix:
          bound === null
            ? `spl consent bind ${callerDid} --namespace ${claimed}`
            : `pull with target namespace '${bound}' (set [identity] namespace = "${bound}" on the caller)`,
      },
    )
  }
}

/** A stranger asked a source whose serve policy is `paired`. */
export class PeerNotPairedError extends SplError {
  override readonly name = 'PeerNotPairedError'
  constructor(readonly callerDid: string) {
    super('PEER_NOT_PAIRED', `this source serves only paired peers (serve_policy = "paired"), and ${callerDid} is not one.`, {
      status: 403,
      fix: `on the source: spl consent bind ${callerDid} --namespace default (or pair with it), or set [sync] serve_policy = "open"`,
    })
  }
}

/** What the source knows about a caller when it decides which namespace it may read as. */
export interface CallerFacts {
  did: string
  claimed: string | undefined
  boundNamespace: string | null
  /** True when the caller has a peer link, a binding, or this source holds a pair towards it. */
  known: boolean
}

/**
 * SPEC 6.4: the namespace the caller reads as. `default` is always accepted; any other only
 * when the caller is bound to exactly it. Throws NamespaceClaimDeniedError / PeerNotPairedError.
 */
export function resolveCallerNamespace(facts: CallerFacts, policy: ServePolicy): string {
  if (policy === 'paired' && !facts.known) throw new PeerNotPairedError(facts.did)
  const claimed = facts.claimed ?? DEFAULT_NAMESPACE
  if (claimed === DEFAULT_NAMESPACE) return claimed
  if (facts.boundNamespace !== claimed) throw new NamespaceClaimDeniedError(facts.did, claimed, facts.boundNamespace)
  return claimed
}
