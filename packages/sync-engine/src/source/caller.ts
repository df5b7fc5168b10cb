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

/** A request to a peer door, before the thread (or threads) it reads. */
export interface PeerDoorRequest {
  method: string
  pathAndQuery: string
  proof: string | undefined
  authorization: string | undefined
  targetNamespace: string | undefined
}

async function verifyCaller(d: CallerDoorDeps, replay: ReplayCache, req: PeerDoorRequest) {
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
  return { proof, caller, token }
}

function contextOf(d: CallerDoorDeps, caller: string, token: PeerTokenClaims | null, claimed: string | undefined): CallerContext {
  const bound = d.registry.bindingOf(caller) ?? token?.ns ?? null
  const namespace = resolveCallerNamespace(
    { did: caller, claimed, boundNamespace: bound, known: bound !== null || token !== null || d.pullsFrom(caller) },
    d.servePolicy,
  )
  return { namespace, boundNamespace: bound }
}

/** Why an admitted caller may not read `thread` (a private thread, one its token does not cover), or null. */
export function threadRefusal(token: PeerTokenClaims | null, thread: string): SplError | null {
  if (PRIVATE_THREADS.has(thread)) return new ThreadPrivateError(thread)
  if (token && token.threads !== '*' && !token.threads.includes(thread)) {
    return new SplError('THREAD_NOT_GRANTED', `the peer token does not cover ${thread}.`, {
      status: 403,
      fix: 're-pair with that thread',
    })
  }
  return null
}

/**
 * Checks the request's proof (aud = this instance, not replayed) and bearer token, refuses the
 * private threads and a thread the token does not cover, and resolves the caller's namespace.
 */
export async function admitCaller(
  d: CallerDoorDeps,
  replay: ReplayCache,
  req: PeerDoorRequest & { thread: string },
): Promise<AdmittedCaller> {
  const { proof, caller, token } = await verifyCaller(d, replay, req)
  // A private thread is refused before anything is said about the caller's namespace.
  if (PRIVATE_THREADS.has(req.thread)) throw new ThreadPrivateError(req.thread)
  const ctx = contextOf(d, caller, token, req.targetNamespace)
  const refusal = threadRefusal(token, req.thread)
  if (refusal) throw refusal
  return { proof, caller, token, ctx }
}

/** admitCaller for a door that reads many threads (a watch): each thread is checked with threadRefusal. */
export async function admitWatcher(d: CallerDoorDeps, replay: ReplayCache, req: PeerDoorRequest): Promise<AdmittedCaller> {
  const { proof, caller, token } = await verifyCaller(d, replay, req)
  return { proof, caller, token, ctx: contextOf(d, caller, token, req.targetNamespace) }
}
