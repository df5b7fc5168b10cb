import crypto from 'node:crypto'
import { JwtInvalidError, type Keypair, SplError, signJwt, verifyDidJwt } from '@spl/identity'

export const PROOF_HEADER = 'SPL-Proof'
const PROOF_TYP = 'spl-proof+jwt'
const PROOF_RESPONSE_TYP = 'spl-proof-response+jwt'
const MAX_LIFETIME_S = 60
const SKEW_S = 120

/** A request or response proof that does not hold (SPEC 7.4). */
export class ProofInvalidError extends SplError {
  override readonly name = 'ProofInvalidError'
  constructor(reason: string) {
    super('PROOF_INVALID', `SPL-Proof rejected: ${reason}`, {
      status: 401,
      fix: 'sign each request with the caller key (SPL-Proof header); check both clocks are within 120 s',
    })
  }
}

/** Remembers proof ids for five minutes so a captured request cannot be replayed. */
export class ReplayCache {
  readonly #seen = new Map<string, number>()
  constructor(
    private readonly windowMs = 5 * 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Records `jti`; false when it was already seen inside the window. */
  claim(jti: string): boolean {
    const t = this.now()
    if (this.#seen.size > 1000) {
      for (const [k, exp] of this.#seen) {
        if (exp > t) break
        this.#seen.delete(k)
      }
    }
    const exp = this.#seen.get(jti)
    if (exp !== undefined && exp > t) return false
    this.#seen.delete(jti)
    this.#seen.set(jti, t + this.windowMs)
    return true
  }
}

/** Claims of a request proof. */
export interface RequestProof {
  iss: string
  aud: string
  htm: string
  htu: string
  iat: number
  exp: number
  jti: string
}

/** Signs a request proof for `method` `pathAndQuery` (exactly as sent) towards `aud` (DID or '*'). */
export async function createRequestProof(
  keypair: Keypair,
  request: { method: string; pathAndQuery: string; aud?: string },
  nowMs = Date.now(),
): Promise<{ token: string; jti: string }> {
  const iat = Math.floor(nowMs / 1000)
  const jti = crypto.randomBytes(16).toString('base64url')
  const token = await signJwt(keypair, PROOF_TYP, {
    aud: request.aud ?? '*',
    htm: request.method.toUpperCase(),
    htu: request.pathAndQuery,
    iat,
    exp: iat + MAX_LIFETIME_S,
    jti,
  })
  return { token, jti }
}

/** Checks a request proof on the callee side; returns its claims or throws ProofInvalidError. */
export async function verifyRequestProof(
  token: string | undefined | null,
  expected: { selfDid: string; method: string; pathAndQuery: string; replay: ReplayCache; nowMs?: number },
): Promise<RequestProof> {
  if (!token) throw new ProofInvalidError('the SPL-Proof header is missing')
  let claims: Awaited<ReturnType<typeof verifyDidJwt>>
  try {
    claims = await verifyDidJwt(token, { typ: PROOF_TYP, clockToleranceSec: SKEW_S })
  } catch (err) {
    throw new ProofInvalidError(err instanceof JwtInvalidError ? err.message : 'it does not verify')
  }
  const { aud, htm, htu, iat, exp, jti } = claims as Partial<RequestProof> & { iss: string }
  if (typeof iat !== 'number' || typeof exp !== 'number') throw new ProofInvalidError('iat and exp are required')
  if (exp - iat > MAX_LIFETIME_S) throw new ProofInvalidError('exp is more than 60 s after iat')
  const now = Math.floor((expected.nowMs ?? Date.now()) / 1000)
  if (iat > now + SKEW_S) throw new ProofInvalidError('iat is in the future')
  if (aud !== '*' && aud !== expected.selfDid) throw new ProofInvalidError('aud is neither this instance nor *')
  if (htm !== expected.method.toUpperCase()) throw new ProofInvalidError('htm does not match the request method')
  if (htu !== expected.pathAndQuery) throw new ProofInvalidError('htu does not match the request path and query')
  if (typeof jti !== 'string' || jti.length < 16) throw new ProofInvalidError('jti is missing')
  if (!expected.replay.claim(`${claims.iss}\n${jti}`)) throw new ProofInvalidError('jti was already used (replay)')
  return { iss: claims.iss, aud, htm, htu, iat, exp, jti }
}

/** base64url SHA-256 of a response body. */
function bodyDigest(body: string | Uint8Array): string {
  return crypto.createHash('sha256').update(body).digest('base64url')
}

/** Signs the response proof: who answered, to whom, for which request, over which bytes. */
export async function createResponseProof(
  keypair: Keypair,
  response: { callerDid: string; jti: string; body: string | Uint8Array },
  nowMs = Date.now(),
): Promise<string> {
  const iat = Math.floor(nowMs / 1000)
  return signJwt(keypair, PROOF_RESPONSE_TYP, {
    aud: response.callerDid,
    jti: response.jti,
    iat,
    exp: iat + MAX_LIFETIME_S,
    body_sha256: bodyDigest(response.body),
  })
}

/** The responder signed as someone other than the DID we expected. */
export class IdentityMismatchError extends SplError {
  override readonly name = 'IdentityMismatchError'
  constructor(
    readonly expected: string,
    readonly actual: string,
  ) {
    super('IDENTITY_MISMATCH', `the peer answered as ${actual}, not ${expected}.`, {
      status: 502,
      fix: 'check peer_url points at the daemon whose DID the pair names (curl <peer_url>/v1/identity)',
    })
  }
}

/** Checks a response proof on the caller side; throws ProofInvalidError or IdentityMismatchError. */
export async function verifyResponseProof(
  token: string | null | undefined,
  expected: { peerDid: string; callerDid: string; jti: string; body: string | Uint8Array },
): Promise<void> {
  if (!token) throw new ProofInvalidError('the response has no SPL-Proof header')
  let claims: Awaited<ReturnType<typeof verifyDidJwt>>
  try {
    claims = await verifyDidJwt(token, { typ: PROOF_RESPONSE_TYP, clockToleranceSec: SKEW_S })
  } catch (err) {
    throw new ProofInvalidError(err instanceof JwtInvalidError ? `response: ${err.message}` : 'response does not verify')
  }
  if (claims.iss !== expected.peerDid) throw new IdentityMismatchError(expected.peerDid, claims.iss)
  if (claims.aud !== expected.callerDid) throw new ProofInvalidError('response aud is not this instance')
  if (claims['jti'] !== expected.jti) throw new ProofInvalidError('response jti does not match the request')
  if (claims['body_sha256'] !== bodyDigest(expected.body)) throw new ProofInvalidError('response body does not match its proof')
}
