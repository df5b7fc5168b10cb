import crypto from 'node:crypto'
import { decodeJwt, decodeProtectedHeader, type JWTPayload, jwtVerify, UnsecuredJWT } from 'jose'
import { SplError } from './errors.js'
import { type Keypair, publicKeyObjectForDid } from './keypair.js'

/** A JWT that is malformed, badly signed, expired or of the wrong type. */
export class JwtInvalidError extends SplError {
  override readonly name = 'JwtInvalidError'
  constructor(reason: string, code = 'PROOF_INVALID') {
    super(code, reason, { status: 401 })
  }
}

const b64u = (text: string): string => Buffer.from(text, 'utf8').toString('base64url')

/**
 * Signs `claims` as a compact EdDSA JWS with header `typ`. `iss` defaults to the keypair's DID.
 *
 * The same bytes jose's SignJWT makes (header `{"alg":"EdDSA","typ":…}`, the claims as
 * JSON.stringify writes them, Ed25519 being deterministic), signed with node:crypto on the
 * calling thread: WebCrypto's sign is a job on libuv's threadpool, where it would queue behind
 * the record verifications of a catch-up (a page's 1000 jobs) and hold up the next request.
 */
export async function signJwt(keypair: Keypair, typ: string, claims: JWTPayload): Promise<string> {
  const payload: JWTPayload = { iss: keypair.did, ...claims }
  for (const claim of ['iat', 'nbf', 'exp'] as const) {
    const v = payload[claim]
    if (typeof v === 'number' && !Number.isFinite(v)) throw new TypeError(`"${claim}" claim must be a finite number`)
  }
  const input = `${b64u(JSON.stringify({ alg: 'EdDSA', typ }))}.${b64u(JSON.stringify(payload))}`
  const sig = crypto.sign(null, Buffer.from(input, 'latin1'), keypair.privateKeyObject)
  return `${input}.${sig.toString('base64url')}`
}

/** A compact JWS whose parts are plain base64url and whose signature is 64 bytes (86 characters). */
const COMPACT_ED25519 = /^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]*)\.([A-Za-z0-9_-]{86})$/

/**
 * Verifies a JWT signed by the did:key in its own `iss` claim, with header `typ`.
 * Returns the claims; throws JwtInvalidError with the reason otherwise.
 */
export async function verifyDidJwt(
  token: string,
  options: { typ: string; clockToleranceSec?: number; maxTokenAge?: number; code?: string },
): Promise<JWTPayload & { iss: string }> {
  const code = options.code ?? 'PROOF_INVALID'
  let iss: unknown
  let header: ReturnType<typeof decodeProtectedHeader>
  try {
    header = decodeProtectedHeader(token)
    if (header.alg !== 'EdDSA') throw new JwtInvalidError(`alg must be EdDSA, got ${String(header.alg)}`, code)
    if (header.typ !== options.typ) throw new JwtInvalidError(`typ must be ${options.typ}`, code)
    iss = decodeJwt(token).iss
  } catch (err) {
    if (err instanceof JwtInvalidError) throw err
    throw new JwtInvalidError('the token is not a compact JWS', code)
  }
  if (typeof iss !== 'string') throw new JwtInvalidError('the token has no iss', code)
  let key: ReturnType<typeof publicKeyObjectForDid>
  try {
    key = publicKeyObjectForDid(iss)
  } catch {
    throw new JwtInvalidError(`iss '${iss.slice(0, 100)}' is not a did:key`, code)
  }
  const claimOptions = {
    typ: options.typ,
    clockTolerance: options.clockToleranceSec ?? 120,
    ...(options.maxTokenAge === undefined ? {} : { maxTokenAge: options.maxTokenAge }),
  }
  const parts = COMPACT_ED25519.exec(token)
  // The usual token (a header of exactly alg and typ): the signature checked with node:crypto on
  // this thread (the same OpenSSL check WebCrypto runs, without a threadpool job queued behind a
  // catch-up's verifications), then jose's own claim checks on the verified payload. Anything
  // else (crit, b64, other header members) goes through jose's jwtVerify as before.
  if (parts && Object.keys(header).length === 2) {
    const [, h, p, s] = parts as unknown as [string, string, string, string]
    if (!crypto.verify(null, Buffer.from(`${h}.${p}`, 'latin1'), key, Buffer.from(s, 'base64url'))) {
      throw new JwtInvalidError('the token does not verify: signature verification failed', code)
    }
    try {
      const unsecured = `${b64u(JSON.stringify({ alg: 'none', typ: header.typ }))}.${p}.`
      return UnsecuredJWT.decode(unsecured, claimOptions).payload as JWTPayload & { iss: string }
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err)
      throw new JwtInvalidError(`the token does not verify: ${reason}`, code)
    }
  }
  try {
    const { payload } = await jwtVerify(token, key, { algorithms: ['EdDSA'], ...claimOptions })
    return payload as JWTPayload & { iss: string }
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err)
    throw new JwtInvalidError(`the token does not verify: ${reason}`, code)
  }
}
