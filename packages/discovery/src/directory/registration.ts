// The did:sync directory's wire format (SPEC 8): a registration is a compact JWS signed by the
// registering did:key, and a delete is another, short-lived one. The directory stores each
// registration as it was signed, so any copy of it (an export, a mirror) can be checked again by
// whoever reads it: an entry is a claim of its DID, never the directory's word.
import { isDidKey, type Keypair, SplError, signJwt, verifyDidJwt } from '@spl/identity'

/** `typ` of a registration. */
export const REGISTRATION_TYP = 'spl-directory+jwt'
/** `typ` of a signed delete (`Authorization: Bearer` of `DELETE /directory/{did}`). */
export const DELETE_TYP = 'spl-directory-delete+jwt'
/** The largest registration, in bytes of its compact form. */
export const MAX_REGISTRATION_BYTES = 8 * 1024
/** The longest a registration may be valid (`exp - iat`). */
export const MAX_REGISTRATION_LIFETIME_S = 365 * 24 * 3600
/** What `spl directory register` asks for unless told otherwise. */
export const DEFAULT_REGISTRATION_LIFETIME_S = 30 * 24 * 3600
/** A delete is valid this long at most (`exp - iat`): a captured one is soon useless. */
export const MAX_DELETE_LIFETIME_S = 300
/** How far in the future `iat` may be (clocks drift). */
export const REGISTRATION_SKEW_S = 120
export const MAX_REGISTRATION_NAMESPACES = 32
export const MAX_REGISTRATION_URL_LENGTH = 2048

/** A handle: lowercase letters, digits and inner hyphens, 1 to 63 characters (a DNS label). */
export const HANDLE_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/
/** A namespace id as SPEC 6.1 spells it (the rule of @spl/consent's NAMESPACE_RE). */
const NAMESPACE_RE = /^[a-z0-9][a-z0-9_-]*(\/[a-z0-9][a-z0-9_-]*)*$/
/** `did:sync:<handle>`: the name a handle is known by. */
export const DID_SYNC_PREFIX = 'did:sync:'

/** What a registration says, once checked. */
export interface Registration {
  did: string
  /** The daemon's base URL (no trailing slash). */
  url: string
  namespaces: string[]
  handle?: string | undefined
  /** Seconds since the epoch, as in the JWT. */
  iat: number
  exp: number
  /** The signed compact JWS, exactly as registered. */
  jwt: string
}

export type RegistrationCode =
  | 'REGISTRATION_INVALID'
  | 'REGISTRATION_SIGNATURE_INVALID'
  | 'REGISTRATION_TOO_LARGE'
  | 'REGISTRATION_EXPIRED'
  | 'REGISTRATION_STALE'
  | 'HANDLE_TAKEN'

const STATUS: Record<RegistrationCode, number> = {
  REGISTRATION_INVALID: 400,
  REGISTRATION_SIGNATURE_INVALID: 401,
  REGISTRATION_TOO_LARGE: 413,
  REGISTRATION_EXPIRED: 400,
  REGISTRATION_STALE: 409,
  HANDLE_TAKEN: 409,
}

const FIX: Record<RegistrationCode, string> = {
  REGISTRATION_INVALID: `send {"registration": "<compact JWS, typ ${REGISTRATION_TYP}>"} as made by \`spl directory register\` (see docs/discovery.md)`,
  REGISTRATION_SIGNATURE_INVALID: 'sign the registration with the key of the DID it names (iss = did): `spl directory register` does',
  REGISTRATION_TOO_LARGE: `a registration is at most ${MAX_REGISTRATION_BYTES} bytes: list fewer namespaces`,
  REGISTRATION_EXPIRED: 'register again with a later exp (`spl directory register --expires 30d`)',
  REGISTRATION_STALE: 'a newer registration (or a delete) of this DID is held: register again with a fresh one',
  HANDLE_TAKEN: 'pick another handle (--handle), or wait until the entry holding it expires',
}

/** Why a registration (or an imported entry) was refused: a stable code per reason. */
export class RegistrationError extends SplError {
  override readonly name = 'RegistrationError'
  constructor(
    override readonly code: RegistrationCode,
    message: string,
  ) {
    super(code, message, { status: STATUS[code], fix: FIX[code] })
  }
}

/** Why a delete was refused. */
export class DeleteRefusedError extends SplError {
  override readonly name = 'DeleteRefusedError'
  constructor(code: 'DELETE_UNAUTHORIZED' | 'DELETE_FORBIDDEN', message: string) {
    super(code, message, {
      status: code === 'DELETE_UNAUTHORIZED' ? 401 : 403,
      fix:
        code === 'DELETE_UNAUTHORIZED'
          ? `send \`Authorization: Bearer <JWT typ ${DELETE_TYP}, iss = the DID, action "delete", exp ≤ iat + ${MAX_DELETE_LIFETIME_S}>\` (\`spl directory unregister\` does)`
          : 'only the DID of an entry may delete it: sign the delete with its key',
    })
  }
}

/** Checks a handle (without the `did:sync:` prefix): lowercase, 1-63 characters of [a-z0-9-]. */
export function isHandle(value: unknown): value is string {
  return typeof value === 'string' && HANDLE_RE.test(value)
}

/** A handle as given, with or without `did:sync:` (and `@`), else undefined. */
export function handleOf(value: string): string | undefined {
  const bare = value.startsWith(DID_SYNC_PREFIX) ? value.slice(DID_SYNC_PREFIX.length) : value.replace(/^@/, '')
  return isHandle(bare) ? bare : undefined
}

function isNamespace(ns: unknown): ns is string {
  return (
    typeof ns === 'string' &&
    ns.length <= 256 &&
    NAMESPACE_RE.test(ns) &&
    ns.split('/').every((s) => s.length <= 63) &&
    ns.split('/').length <= 4
  )
}

/** `url` as stored: an http(s) URL without credentials, query or fragment, no trailing slash; else undefined. */
export function normalizeDaemonUrl(url: unknown): string | undefined {
  if (typeof url !== 'string' || url.length === 0 || url.length > MAX_REGISTRATION_URL_LENGTH) return undefined
  let u: URL
  try {
    u = new URL(url)
  } catch {
    return undefined
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return undefined
  if (u.username || u.password || u.search || u.hash) return undefined
  return `${u.origin}${u.pathname}`.replace(/\/+$/, '')
}

/** The two JSON parts of a compact JWS, without checking the signature; undefined when it is not one. */
function decodeCompact(token: string): { header: Record<string, unknown>; payload: Record<string, unknown> } | undefined {
  const parts = token.split('.')
  if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]*$/.test(p)) || parts[2]!.length === 0) return undefined
  try {
    const header: unknown = JSON.parse(Buffer.from(parts[0]!, 'base64url').toString('utf8'))
    const payload: unknown = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8'))
    const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
    return isObject(header) && isObject(payload) ? { header, payload } : undefined
  } catch {
    return undefined
  }
}

const isSeconds = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0

export interface RegistrationInit {
  url: string
  namespaces: readonly string[]
  handle?: string | undefined
  /** How long it is valid, in seconds (30 days by default). */
  lifetimeS?: number
  /** Signing time, ms since the epoch (now by default). */
  now?: number
}

/** Signs a registration of `keypair.did` (checked first, so a bad one fails here and not at the directory). */
export async function signRegistration(keypair: Keypair, init: RegistrationInit): Promise<string> {
  const iat = Math.floor((init.now ?? Date.now()) / 1000)
  const url = normalizeDaemonUrl(init.url)
  if (url === undefined)
    throw new RegistrationError(
      'REGISTRATION_INVALID',
      `url '${String(init.url).slice(0, 200)}' is not an http(s) URL without query or credentials`,
    )
  const claims = {
    did: keypair.did,
    url,
    namespaces: [...init.namespaces],
    ...(init.handle === undefined ? {} : { handle: init.handle }),
    iat,
    exp: iat + (init.lifetimeS ?? DEFAULT_REGISTRATION_LIFETIME_S),
  }
  const jwt = await signJwt(keypair, REGISTRATION_TYP, claims)
  await verifyRegistration(jwt, { now: iat * 1000 })
  return jwt
}

/**
 * Checks a registration: size, form, claims, signature by `iss`, validity window. Returns what it
 * says; throws RegistrationError with the reason's code.
 */
export async function verifyRegistration(token: unknown, options: { now?: number } = {}): Promise<Registration> {
  const nowS = Math.floor((options.now ?? Date.now()) / 1000)
  const invalid = (why: string) => new RegistrationError('REGISTRATION_INVALID', `the registration ${why}`)
  if (typeof token !== 'string') throw invalid('is not a string (a compact JWS)')
  if (Buffer.byteLength(token, 'utf8') > MAX_REGISTRATION_BYTES) {
    throw new RegistrationError(
      'REGISTRATION_TOO_LARGE',
      `the registration is ${Buffer.byteLength(token, 'utf8')} bytes, over ${MAX_REGISTRATION_BYTES}`,
    )
  }
  const decoded = decodeCompact(token)
  if (!decoded) throw invalid('is not a compact JWS (three base64url parts of JSON)')
  const { header, payload: p } = decoded
  if (header['alg'] !== 'EdDSA') throw invalid(`has alg ${String(header['alg']).slice(0, 40)}, not EdDSA`)
  if (header['typ'] !== REGISTRATION_TYP) throw invalid(`has typ ${String(header['typ']).slice(0, 60)}, not ${REGISTRATION_TYP}`)
  if (typeof p['iss'] !== 'string' || !isDidKey(p['iss'])) throw invalid('has no iss that is a did:key')
  if (p['did'] !== p['iss']) throw invalid('names another did than its iss: a DID registers only itself')
  const url = normalizeDaemonUrl(p['url'])
  if (url === undefined)
    throw invalid(`url is not an http(s) URL without query or credentials (at most ${MAX_REGISTRATION_URL_LENGTH} characters)`)
  if (url !== p['url']) throw invalid(`url must be written as ${url.slice(0, 200)} (no trailing slash)`)
  const ns = p['namespaces']
  if (!Array.isArray(ns) || ns.length === 0 || ns.length > MAX_REGISTRATION_NAMESPACES)
    throw invalid(`namespaces must be a list of 1 to ${MAX_REGISTRATION_NAMESPACES} namespaces`)
  const bad = ns.find((n) => !isNamespace(n))
  if (bad !== undefined)
    throw invalid(`namespace ${JSON.stringify(bad).slice(0, 80)} is not a namespace id (lowercase segments of [a-z0-9_-] joined by /)`)
  if (new Set(ns).size !== ns.length) throw invalid('lists a namespace twice')
  if (p['handle'] !== undefined && !isHandle(p['handle'])) {
    throw invalid('handle must be 1 to 63 lowercase letters, digits or inner hyphens (e.g. alice)')
  }
  if (p['action'] !== undefined) throw invalid('has an action claim (a delete is not a registration)')
  if (!isSeconds(p['iat']) || !isSeconds(p['exp'])) throw invalid('needs iat and exp in whole seconds')
  if (p['exp'] <= p['iat']) throw invalid('expires before it was issued')
  if (p['exp'] - p['iat'] > MAX_REGISTRATION_LIFETIME_S) throw invalid(`is valid longer than ${MAX_REGISTRATION_LIFETIME_S / 86400} days`)
  if (p['iat'] > nowS + REGISTRATION_SKEW_S) throw invalid(`was issued in the future (iat ${p['iat']}, now ${nowS}): check the clock`)
  // The signature: every claim checked above is covered by it. The window is checked here, not by jose.
  try {
    await verifyDidJwt(token, { typ: REGISTRATION_TYP, clockToleranceSec: Number.MAX_SAFE_INTEGER, code: 'REGISTRATION_SIGNATURE_INVALID' })
  } catch {
    throw new RegistrationError('REGISTRATION_SIGNATURE_INVALID', `the registration's signature does not verify against ${p['iss']}`)
  }
  if (p['exp'] <= nowS)
    throw new RegistrationError('REGISTRATION_EXPIRED', `the registration expired at ${new Date(p['exp'] * 1000).toISOString()}`)
  return {
    did: p['iss'],
    url,
    namespaces: ns as string[],
    ...(p['handle'] === undefined ? {} : { handle: p['handle'] as string }),
    iat: p['iat'],
    exp: p['exp'],
    jwt: token,
  }
}

/** Signs the delete of `keypair.did`'s entry (valid 60 s). */
export function signDelete(keypair: Keypair, options: { now?: number } = {}): Promise<string> {
  const iat = Math.floor((options.now ?? Date.now()) / 1000)
  return signJwt(keypair, DELETE_TYP, { did: keypair.did, action: 'delete', iat, exp: iat + 60 })
}

/** What a checked delete says: whose entry, and when it was signed (entries registered later survive it). */
export interface DeleteClaim {
  did: string
  iat: number
}

/**
 * Checks the `Authorization` header of `DELETE /directory/{did}`: a bearer JWT of `typ`
 * DELETE_TYP signed by `did` itself, `action: "delete"`, valid now and for at most 5 minutes.
 */
export async function verifyDelete(authorization: string | undefined, did: string, options: { now?: number } = {}): Promise<DeleteClaim> {
  const nowS = Math.floor((options.now ?? Date.now()) / 1000)
  const unauthorized = (why: string) => new DeleteRefusedError('DELETE_UNAUTHORIZED', `the delete ${why}`)
  const m = authorization === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(authorization)
  if (!m) throw unauthorized('needs `Authorization: Bearer <signed delete>`')
  const token = m[1]!
  if (token.length > MAX_REGISTRATION_BYTES) throw unauthorized('token is too large')
  const decoded = decodeCompact(token)
  if (!decoded) throw unauthorized('token is not a compact JWS')
  const { header, payload: p } = decoded
  if (header['alg'] !== 'EdDSA' || header['typ'] !== DELETE_TYP) throw unauthorized(`token must have alg EdDSA and typ ${DELETE_TYP}`)
  if (typeof p['iss'] !== 'string' || !isDidKey(p['iss'])) throw unauthorized('token has no iss that is a did:key')
  if (p['action'] !== 'delete') throw unauthorized('token has no action "delete"')
  if (!isSeconds(p['iat']) || !isSeconds(p['exp'])) throw unauthorized('token needs iat and exp in whole seconds')
  if (p['exp'] <= p['iat'] || p['exp'] - p['iat'] > MAX_DELETE_LIFETIME_S)
    throw unauthorized(`token must be valid for at most ${MAX_DELETE_LIFETIME_S} s`)
  if (p['iat'] > nowS + REGISTRATION_SKEW_S) throw unauthorized('token was issued in the future: check the clock')
  if (p['exp'] + REGISTRATION_SKEW_S <= nowS) throw unauthorized(`token expired at ${new Date(p['exp'] * 1000).toISOString()}`)
  try {
    // The window was checked above (against `now`), not by jose's clock.
    await verifyDidJwt(token, { typ: DELETE_TYP, clockToleranceSec: Number.MAX_SAFE_INTEGER, code: 'DELETE_UNAUTHORIZED' })
  } catch {
    throw unauthorized(`token's signature does not verify against ${p['iss']}`)
  }
  if (p['iss'] !== did || (p['did'] !== undefined && p['did'] !== did)) {
    throw new DeleteRefusedError('DELETE_FORBIDDEN', `the delete is signed by ${p['iss']}, not by ${did.slice(0, 200)}`)
  }
  return { did, iat: p['iat'] }
}
