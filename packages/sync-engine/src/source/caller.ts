import {
  type CallerContext,
  CONSENT_THREAD,
  type GrantState,
  NAMESPACE_REGISTRY_THREAD,
  resolveCallerNamespace,
  type ServePolicy,
} from '@spl/consent'
import { type Keypair, SplError } from '@spl/identity'
import { type PeerTokenClaims, type ReplayCache, type RequestProof, verifyPeerToken, verifyRequestProof } from '@spl/transport'

// Who may read what at the source's peer doors (the change feed, the reconcile door): the
// caller's SPL-Proof, its peer token if any, the namespace it reads as (SPEC 6.4, 7.1).

/** The consent state the feed needs (ConsentRegistry fits). */
export interface ConsentView {
  bindingOf(did: string): string | null
  grants(): readonly GrantState[]
}

/**
 * Threads that hold this instance's own configuration (SPEC 3): served to no peer, whoever asks.
 * Grants, bindings and the namespace registry say who may read what; they are not themselves
 * for reading. A thread added for federation state (pairs, relay, directory) goes here too.
 */
export const PRIVATE_THREADS: ReadonlySet<string> = new Set([CONSENT_THREAD, NAMESPACE_REGISTRY_THREAD, 'th_federation_pairs'])

/** A feed request for one of PRIVATE_THREADS. */
export class ThreadPrivateError extends SplError {
  override readonly name = 'ThreadPrivateError'
  constructor(thread: string) {
    super('THREAD_PRIVATE', `${thread} holds this instance's own configuration and is served to no peer.`, {
      status: 403,
      fix: 'pull a thread of records instead; grants and namespaces are made on each instance (spl consent, spl namespace)',
    })
  }
}

/** What a peer door needs to admit a caller. */
export interface CallerDoorDeps {
  keypair: Keypair
  registry: ConsentView
  servePolicy: ServePolicy
  /** True when this instance holds a pair towards `did` (it counts as known under "paired"). */
  pullsFrom: (did: string) => boolean
  /** Peer-token revocation list (SPEC 7.5). */
  isTokenRevoked: (jti: string) => boolean
}

/** A caller admitted to read `thread`: its proof, its DID and the consent context it reads under. */
export interface AdmittedCaller {
  proof: RequestProof
  caller: string
  token: PeerTokenClaims | null
  ctx: CallerContext
}

/**
 * Checks the request's proof (aud = this instance, not replayed) and bearer token, refuses the
 * private threads and a thread the token does not cover, and resolves the caller's namespace.
 */
export async function admitCaller(
  d: CallerDoorDeps,
  replay: ReplayCache,
  req: {
    method: string
    pathAndQuery: string
    proof: string | undefined
    authorization: string | undefined
    thread: string
    targetNamespace: string | undefined
  },
): Promise<AdmittedCaller> {
  const proof = await verifyRequestProof(req.proof, {
    selfDid: d.keypair.did,
    method: req.method,
    pathAndQuery: req.pathAndQuery,
    replay,
  })
  const caller = proof.iss
  let token: PeerTokenClaims | null = null
  if (req.authorization?.startsWith('Bearer ')) {
    token = await verifyPeerToken(req.authorization.slice(7).trim(), {
      selfDid: d.keypair.did,
      proofIss: caller,
      isRevoked: d.isTokenRevoked,
    })
  }
  if (PRIVATE_THREADS.has(req.thread)) throw new ThreadPrivateError(req.thread)
  const bound = d.registry.bindingOf(caller) ?? token?.ns ?? null
  const namespace = resolveCallerNamespace(
    {
      did: caller,
      claimed: req.targetNamespace,
      boundNamespace: bound,
      known: bound !== null || token !== null || d.pullsFrom(caller),
    },
    d.servePolicy,
  )
  if (token && token.threads !== '*' && !token.threads.includes(req.thread)) {
    throw new SplError('THREAD_NOT_GRANTED', `the peer token does not cover ${req.thread}.`, {
      status: 403,
      fix: 're-pair with that thread',
    })
  }
  return { proof, caller, token, ctx: { namespace, boundNamespace: bound } }
}
