import { decodeJwt, decodeProtectedHeader, type JWTPayload, jwtVerify, SignJWT } from 'jose'
import { SplError } from './errors.js'
import { type Keypair, publicKeyObjectForDid } from './keypair.js'

/** A JWT that is malformed, badly signed, expired or of the wrong type. */
export class JwtInvalidError extends SplError {
  override readonly name = 'JwtInvalidError'
  constructor(reason: string, code = 'PROOF_INVALID') {
    super(code, reason, { status: 401 })
  }
}

/** Signs `claims` as a compact EdDSA JWS with header `typ`. `iss` defaults to the keypair's DID. */
export async function signJwt(keypair: Keypair, typ: string, claims: JWTPayload): Promise<string> {
  return new SignJWT({ iss: keypair.did, ...claims }).setProtectedHeader({ alg: 'EdDSA', typ }).sign(keypair.privateKeyObject)
}

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
  try {
    const header = decodeProtectedHeader(token)
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
  try {
    const { payload } = await jwtVerify(token, key, {
      algorithms: ['EdDSA'],
      typ: options.typ,
      clockTolerance: options.clockToleranceSec ?? 120,
      ...(options.maxTokenAge === undefined ? {} : { maxTokenAge: options.maxTokenAge }),
    })
    return payload as JWTPayload & { iss: string }
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err)
    throw new JwtInvalidError(`the token does not verify: ${reason}`, code)
  }
}
