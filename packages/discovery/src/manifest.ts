// The signed federation manifest served at /.well-known/syncropel (SPEC 8): what a peer
// fetches to learn, and prove, who answers at a URL before it trusts an mDNS TXT record, a
// directory entry or a DID document.
import { isDidKey, type Keypair, SplError, verifySignature } from '@spl/identity'
import { canonicalJson } from '@spl/records'
import { httpGet, PullError } from '@spl/transport'
import { z } from 'zod'

export const MANIFEST_PATH = '/.well-known/syncropel'
/** A manifest is valid this long after it was signed. */
export const MANIFEST_VALIDITY_MS = 7 * 24 * 3600 * 1000
/** The daemon signs it again when its signature is older than this. */
export const MANIFEST_RESIGN_MS = 24 * 3600 * 1000
/** A manifest signed further in the future than this is refused (clocks drift, not by days). */
const FUTURE_SKEW_MS = 5 * 60 * 1000
/** The largest manifest read from a peer. */
const MAX_MANIFEST_BYTES = 64 * 1024

export const PAIR_POLICIES = ['manual', 'invite', 'auto', 'never'] as const
export type PairPolicy = (typeof PAIR_POLICIES)[number]

const signatureSchema = z.object({
  alg: z.literal('Ed25519'),
  key_id: z.string().max(200),
  signature: z.string().regex(/^[A-Za-z0-9_-]{86}$/, 'a base64url Ed25519 signature (86 characters)'),
  signed_at: z.iso.datetime({ offset: true }),
  expires_at: z.iso.datetime({ offset: true }),
})

const manifestSchema = z.looseObject({
  object: z.literal('federation_manifest'),
  manifest_version: z.literal('1'),
  daemon: z.looseObject({
    did: z.string().max(200),
    version: z.string().max(100),
    federation_protocol_version: z.string().max(20),
  }),
  federation: z.looseObject({
    enabled: z.boolean(),
    pair_endpoint: z.url().max(2048),
    sync_change_endpoint: z.url().max(2048),
  }),
  advertises: z.looseObject({ namespaces: z.array(z.string().max(200)).max(1000) }),
  consent_policy: z.looseObject({ accepts_pair_requests: z.enum(PAIR_POLICIES) }),
  /** The relays this instance collects deposits from (SPEC 10); absent in older manifests. */
  relays: z
    .array(z.looseObject({ url: z.url({ protocol: /^https?$/ }).max(2048), did: z.string().max(200) }))
    .max(16)
    .optional(),
  signature: signatureSchema,
})

const wellKnownSchema = z.looseObject({ object: z.literal('syncropel_well_known'), federation_manifest: z.unknown() })

export type FederationManifest = z.output<typeof manifestSchema>
export interface WellKnownDocument {
  object: 'syncropel_well_known'
  federation_manifest: FederationManifest
}

export interface ManifestInit {
  keypair: Keypair
  /** The daemon's version. */
  version: string
  /** The base URL peers reach this daemon at (advertise_url, else the address they used). */
  url: string
  namespaces: readonly string[]
  acceptsPairRequests: PairPolicy
  /** The relays this instance collects deposits from (SPEC 10). */
  relays?: readonly { url: string; did: string }[]
  /** Signing time (ms); now by default. */
  now?: number
}

const b64url = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url')

/** The bytes the signature covers: RFC 8785 form of the manifest without `signature.signature`. */
function signingInput(manifest: Record<string, unknown>): Uint8Array {
  const { signature, ...rest } = manifest as { signature: Record<string, unknown> }
  const { signature: _sig, ...covered } = signature
  return new TextEncoder().encode(canonicalJson({ ...rest, signature: covered }))
}

/** Builds and signs the well-known document for `init.url`. */
export function signManifest(init: ManifestInit): WellKnownDocument {
  const now = init.now ?? Date.now()
  const base = init.url.replace(/\/+$/, '')
  const did = init.keypair.did
  const manifest = {
    object: 'federation_manifest' as const,
    manifest_version: '1' as const,
    daemon: { did, version: init.version, federation_protocol_version: '1' },
    federation: {
      enabled: true,
      pair_endpoint: `${base}/v1/federation/pair`,
      sync_change_endpoint: `${base}/v1/sync/changes`,
    },
    advertises: { namespaces: [...init.namespaces] },
    consent_policy: { accepts_pair_requests: init.acceptsPairRequests },
    relays: (init.relays ?? []).map((r) => ({ url: r.url, did: r.did })),
    signature: {
      alg: 'Ed25519' as const,
      key_id: `${did}#key-1`,
      signature: '',
      signed_at: new Date(now).toISOString(),
      expires_at: new Date(now + MANIFEST_VALIDITY_MS).toISOString(),
    },
  }
  manifest.signature.signature = b64url(init.keypair.sign(signingInput(manifest)))
  return { object: 'syncropel_well_known', federation_manifest: manifest }
}

/** Why a manifest was refused: a stable code per reason, so scripts can tell them apart. */
export class ManifestInvalidError extends SplError {
  override readonly name = 'ManifestInvalidError'
  constructor(
    code: 'MANIFEST_MALFORMED' | 'MANIFEST_SIGNATURE_INVALID' | 'MANIFEST_DID_MISMATCH' | 'MANIFEST_EXPIRED',
    message: string,
    fix: string,
  ) {
    super(code, message, { status: 422, fix })
  }
}

/** The manifest could not be fetched at all. */
export class ManifestUnreachableError extends SplError {
  override readonly name = 'ManifestUnreachableError'
  constructor(url: string, code: 'MANIFEST_UNREACHABLE' | 'MANIFEST_NOT_FOUND', detail: string, cause?: unknown) {
    super(code, `${url}${MANIFEST_PATH}: ${detail}`, {
      status: 502,
      cause,
      fix:
        code === 'MANIFEST_NOT_FOUND'
          ? 'the URL answers but is not an spl daemon (or an old one): check the URL and the peer version'
          : 'check the URL and that the peer daemon runs and listens on an address you can reach',
    })
  }
}

export interface VerifiedManifest {
  manifest: FederationManifest
  did: string
  /** The signature's validity ended (only without `strict`; with it this throws). */
  expired: boolean
  signedAt: number
  expiresAt: number
}

export interface VerifyOptions {
  /** The DID the caller expects (from mDNS TXT, a directory, a DID document, a pair). */
  expectedDid?: string | undefined
  /** Refuse an expired manifest instead of flagging it. */
  strict?: boolean | undefined
  now?: number | undefined
}

/** Checks shape, signature, DID and validity window of a well-known document; throws ManifestInvalidError. */
export function verifyManifest(document: unknown, options: VerifyOptions = {}): VerifiedManifest {
  const now = options.now ?? Date.now()
  const outer = wellKnownSchema.safeParse(document)
  const inner = outer.success ? manifestSchema.safeParse(outer.data.federation_manifest) : undefined
  if (!inner?.success) {
    const issue = (inner?.error ?? outer.error)?.issues[0]
    const where = issue ? `${issue.path.join('.') || '(top)'}: ${issue.message}` : 'not a syncropel_well_known document'
    throw new ManifestInvalidError(
      'MANIFEST_MALFORMED',
      `the manifest is malformed (${where})`,
      'the peer is not an spl daemon, or a version this one does not read',
    )
  }
  const manifest = inner.data
  const did = manifest.daemon.did
  if (!isDidKey(did)) {
    throw new ManifestInvalidError(
      'MANIFEST_MALFORMED',
      `daemon.did '${String(did).slice(0, 80)}' is not a did:key`,
      'the peer is not an spl daemon',
    )
  }
  if (manifest.signature.key_id !== `${did}#key-1`) {
    throw new ManifestInvalidError(
      'MANIFEST_SIGNATURE_INVALID',
      `signature.key_id '${manifest.signature.key_id.slice(0, 120)}' is not ${did}#key-1`,
      'the manifest was signed by another key than the one it names: do not trust this URL',
    )
  }
  const signature = Buffer.from(manifest.signature.signature, 'base64url')
  if (!verifySignature(did, signingInput(manifest as unknown as Record<string, unknown>), signature)) {
    throw new ManifestInvalidError(
      'MANIFEST_SIGNATURE_INVALID',
      `the manifest's signature does not verify against ${did}`,
      'the manifest was altered on the way or forged: do not trust this URL',
    )
  }
  if (options.expectedDid !== undefined && options.expectedDid !== did) {
    throw new ManifestInvalidError(
      'MANIFEST_DID_MISMATCH',
      `the manifest is signed by ${did}, not by ${options.expectedDid}`,
      'another daemon answers at this URL: check the URL, or the DID you were given',
    )
  }
  const signedAt = Date.parse(manifest.signature.signed_at)
  const expiresAt = Date.parse(manifest.signature.expires_at)
  if (signedAt > now + FUTURE_SKEW_MS) {
    throw new ManifestInvalidError(
      'MANIFEST_SIGNATURE_INVALID',
      `the manifest says it was signed at ${manifest.signature.signed_at}, in the future`,
      "check the peer's clock (and this machine's)",
    )
  }
  const expired = expiresAt <= now
  if (expired && options.strict) {
    throw new ManifestInvalidError(
      'MANIFEST_EXPIRED',
      `the manifest expired at ${manifest.signature.expires_at}`,
      'the peer re-signs it daily while it runs: it may have been down for a week, or serve a stale copy from a cache',
    )
  }
  return { manifest, did, expired, signedAt, expiresAt }
}

/** GETs `<url>/.well-known/syncropel` and parses it; throws ManifestUnreachableError. */
export async function fetchManifest(url: string, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<unknown> {
  let target: URL
  try {
    // Under the URL's own path: a daemon behind a proxy at https://host/spl/ serves /spl/.well-known/syncropel.
    target = new URL(`${url.replace(/\/+$/, '')}${MANIFEST_PATH}`)
  } catch {
    throw new SplError('URL_INVALID', `'${url.slice(0, 200)}' is not a URL`, { fix: 'give a URL such as http://host:9100' })
  }
  if (target.protocol !== 'http:' && target.protocol !== 'https:') {
    throw new SplError('URL_INVALID', `'${url.slice(0, 200)}' is not an http(s) URL`, { fix: 'give a URL such as http://host:9100' })
  }
  const timeout = AbortSignal.timeout(options.timeoutMs ?? 5000)
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout
  let answer: Awaited<ReturnType<typeof httpGet>>
  try {
    answer = await httpGet(target, () => ({ accept: 'application/json' }), signal, MAX_MANIFEST_BYTES)
  } catch (err) {
    const detail = err instanceof PullError ? `${err.pullCode}: ${err.message}` : err instanceof Error ? err.message : String(err)
    throw new ManifestUnreachableError(url, 'MANIFEST_UNREACHABLE', detail, err)
  }
  if (answer.status !== 200) {
    throw new ManifestUnreachableError(url, 'MANIFEST_NOT_FOUND', `answered HTTP ${answer.status}`)
  }
  try {
    return JSON.parse(answer.body) as unknown
  } catch {
    throw new ManifestInvalidError('MANIFEST_MALFORMED', 'the manifest is not JSON', 'the peer is not an spl daemon')
  }
}

/** Fetches and verifies the manifest at `url` (what `spl discover --peer-url` and discovery's `verified` rest on). */
export async function fetchVerifiedManifest(
  url: string,
  options: VerifyOptions & { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<VerifiedManifest> {
  return verifyManifest(await fetchManifest(url, options), options)
}

/**
 * Signs the manifest once per base URL and again when the signature is a day old (SPEC 8:
 * "re-signed at start and daily"). With `advertiseUrl` every answer names that URL; without
 * it, the URL the caller reached this daemon at.
 */
export class ManifestSigner {
  #init: Omit<ManifestInit, 'url' | 'now'>
  readonly #advertiseUrl: string | undefined
  readonly #now: () => number
  readonly #signed = new Map<string, WellKnownDocument>()

  constructor(init: Omit<ManifestInit, 'url' | 'now'> & { advertiseUrl?: string | undefined; now?: () => number }) {
    const { advertiseUrl, now, ...rest } = init
    this.#init = rest
    this.#advertiseUrl = advertiseUrl ? advertiseUrl.replace(/\/+$/, '') : undefined
    this.#now = now ?? Date.now
  }

  /** Names these relays from the next answer on (each document is signed again). */
  setRelays(relays: readonly { url: string; did: string }[]): void {
    this.#init = { ...this.#init, relays: [...relays] }
    this.#signed.clear()
  }

  /** The signed document for a caller that reached this daemon at `origin`. */
  forOrigin(origin: string): WellKnownDocument {
    const url = this.#advertiseUrl ?? origin.replace(/\/+$/, '')
    const now = this.#now()
    const cached = this.#signed.get(url)
    if (cached && now - Date.parse(cached.federation_manifest.signature.signed_at) < MANIFEST_RESIGN_MS) return cached
    const doc = signManifest({ ...this.#init, url, now })
    if (this.#signed.size >= 64) this.#signed.clear()
    this.#signed.set(url, doc)
    return doc
  }
}
