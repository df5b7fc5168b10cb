import crypto from 'node:crypto'
import { JwtInvalidError, type Keypair, SplError, signJwt, verifyDidJwt } from '@spl/identity'

export const PROOF_HEADER = 'SPL-Proof'
const PROOF_TYP = 'spl-proof+jwt'
const PROOF_RESPONSE_TYP = 'spl-proof-response+jwt'
/** SPEC 7.4: a proof lives at most 60 s (`exp - iat`). */
export const PROOF_MAX_LIFETIME_S = 60
/** SPEC 7.4: the clock skew allowed between two instances (`iat` in the future, past `exp`). */
export const PROOF_SKEW_S = 30
const MAX_LIFETIME_S = PROOF_MAX_LIFETIME_S
const SKEW_S = PROOF_SKEW_S

/** A request or response proof that does not hold (SPEC 7.4). */
export class ProofInvalidError extends SplError {
  override readonly name = 'ProofInvalidError'
  constructor(reason: string) {
    super('PROOF_INVALID', `SPL-Proof rejected: ${reason}`, {
      status: 401,
      fix: `sign each request anew with the caller key (SPL-Proof header, aud = the callee's DID); keep both clocks within ${SKEW_S} s (NTP)`,
    })
  }
}

/**
 * Where used proof ids are remembered until they expire (SPEC 7.4: "also across restarts").
 * `MemoryReplayStore` is the in-process one (tests, embedders); the daemon uses a durable one
 * on its database (`KyselyReplayStore` in @spl/sync-engine).
 */
export interface ReplayStore {
  /**
   * Atomically remembers `key` until `untilMs` and answers true, unless `key` is already held
   * with an expiry after `nowMs` (a replay): then false and nothing changes.
   */
  claim(key: string, untilMs: number, nowMs: number): boolean | Promise<boolean>
}

/** A ReplayStore in memory: forgotten on restart, so only for tests and embedders that accept it. */
export class MemoryReplayStore implements ReplayStore {
  readonly #seen = new Map<string, number>()
  #nextPrune = 0

  claim(key: string, untilMs: number, nowMs: number): boolean {
    if (nowMs >= this.#nextPrune) {
      for (const [k, until] of this.#seen) if (until <= nowMs) this.#seen.delete(k)
      this.#nextPrune = nowMs + 10_000
    }
    const held = this.#seen.get(key)
    if (held !== undefined && held > nowMs) return false
    this.#seen.set(key, untilMs)
    return true
  }

  /** How many ids are held (tests). */
  get size(): number {
    return this.#seen.size
  }
}

/** Refuses a proof id seen before, until that proof could no longer be accepted anyway. */
export class ReplayCache {
  constructor(readonly store: ReplayStore = new MemoryReplayStore()) {}

  /** Records `jti` of `iss` until `untilMs`; false when it was already used (a replay). */
  async claim(iss: string, jti: string, untilMs: number, nowMs: number): Promise<boolean> {
    return this.store.claim(`${iss}\n${jti}`, untilMs, nowMs)
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

/** What the callee expects of a request proof. */
export interface ProofExpectation {
  /** This instance's DID: the `aud` a proof must name. */
  selfDid: string
  method: string
  /** Path and query exactly as received. */
  pathAndQuery: string
  replay: ReplayCache
  /**
   * Also accept `aud: "*"`: only for the first contact of a handshake, where the caller cannot
   * know this instance's DID yet (SPEC 7.4). Off on every other door.
   */
  allowAnyAudience?: boolean
  nowMs?: number
}

/** Checks a request proof on the callee side; returns its claims or throws ProofInvalidError. */
export async function verifyRequestProof(token: string | undefined | null, expected: ProofExpectation): Promise<RequestProof> {
  if (!token) throw new ProofInvalidError('the SPL-Proof header is missing')
  const realNow = Date.now()
  const nowMs = expected.nowMs ?? realNow
  let claims: Awaited<ReturnType<typeof verifyDidJwt>>
  try {
    // The signature here; the time window below, against `nowMs` (jose reads the real clock, so
    // its own exp check is widened by any offset of an injected clock and by one second of
    // rounding, and never refuses what the window below accepts).
    const offsetS = Math.ceil(Math.abs(realNow - nowMs) / 1000)
    claims = await verifyDidJwt(token, { typ: PROOF_TYP, clockToleranceSec: SKEW_S + 1 + offsetS })
  } catch (err) {
    throw new ProofInvalidError(err instanceof JwtInvalidError ? err.message : 'it does not verify')
  }
  const { aud, htm, htu, iat, exp, jti } = claims as Partial<RequestProof> & { iss: string }
  if (typeof iat !== 'number' || typeof exp !== 'number' || !Number.isFinite(iat) || !Number.isFinite(exp)) {
    throw new ProofInvalidError('iat and exp are required')
  }
  if (exp < iat) throw new ProofInvalidError('exp is before iat')
  if (exp - iat > MAX_LIFETIME_S) throw new ProofInvalidError(`exp is more than ${MAX_LIFETIME_S} s after iat`)
  const now = nowMs / 1000
  if (iat > now + SKEW_S) throw new ProofInvalidError(`iat is more than ${SKEW_S} s in the future`)
  if (now > exp + SKEW_S) throw new ProofInvalidError(`the proof expired (exp plus ${SKEW_S} s has passed)`)
  if (typeof aud !== 'string') throw new ProofInvalidError('aud is required')
  if (aud === '*') {
    if (!expected.allowAnyAudience)
      throw new ProofInvalidError(`aud "*" is not accepted on this door: name this instance (${expected.selfDid})`)
  } else if (aud !== expected.selfDid) {
    throw new ProofInvalidError(`aud names ${aud.slice(0, 100)}, not this instance (${expected.selfDid})`)
  }
  if (htm !== expected.method.toUpperCase()) throw new ProofInvalidError('htm does not match the request method')
  if (htu !== expected.pathAndQuery) throw new ProofInvalidError('htu does not match the request path and query')
  if (typeof jti !== 'string' || jti.length < 16 || jti.length > 128) throw new ProofInvalidError('jti is missing')
  // Held until the proof could no longer pass the window above anyway.
  if (!(await expected.replay.claim(claims.iss, jti, (exp + SKEW_S + 1) * 1000, nowMs))) {
    throw new ProofInvalidError('jti was already used (replay)')
  }
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
