// did:web (SPEC 8): a domain publishes a W3C DID document naming this daemon's Ed25519 key and
// its URL. Here: the DID ↔ URL mapping, the document `spl identity publish-did-web` writes, the
// reading and fetching of a document; the cache is did-web-cache.ts, the `did-web` PeerSource
// did-web-source.ts. The document proves nothing by itself about the daemon: discovery still
// verifies the manifest at the service endpoint against the document's key.
import { isDidKey, type Keypair, SplError } from '@spl/identity'
import { httpGet, PullError } from '@spl/transport'

export const DID_WEB_PREFIX = 'did:web:'
/** Where a daemon with `identity.web_domain` serves its did:web document. */
export const DID_WEB_PATH = '/.well-known/did.json'
/** The largest DID document read from a domain. */
export const MAX_DID_DOCUMENT_BYTES = 64 * 1024
/** The service type naming an spl daemon in a DID document. */
export const SYNCROPEL_SERVICE_TYPE = 'SyncropelDaemon'
export const DID_DOCUMENT_CONTEXT = ['https://www.w3.org/ns/did/v1', 'https://w3id.org/security/suites/ed25519-2020/v1'] as const
/** Hosts resolved over plain http (SPEC 8); every other host is https only. */
const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]'])
const KEY_TYPES = new Set(['Ed25519VerificationKey2020', 'Multikey'])

export type DidWebErrorCode = 'DID_WEB_INVALID' | 'DID_NOT_FOUND' | 'DID_RESOLVE_FAILED' | 'DID_DOCUMENT_INVALID'

const STATUS: Record<DidWebErrorCode, number> = {
  DID_WEB_INVALID: 400,
  DID_NOT_FOUND: 404,
  DID_RESOLVE_FAILED: 502,
  DID_DOCUMENT_INVALID: 502,
}

/**
 * Why a did:web did not resolve: malformed (DID_WEB_INVALID), the domain says there is no such
 * document (DID_NOT_FOUND: 404/410), the domain could not be asked (DID_RESOLVE_FAILED: DNS,
 * connection, TLS, timeout, another HTTP status), or what it serves is no usable document
 * (DID_DOCUMENT_INVALID).
 */
export class DidWebError extends SplError {
  override readonly name = 'DidWebError'
  constructor(
    override readonly code: DidWebErrorCode,
    message: string,
    fix: string,
    cause?: unknown,
  ) {
    super(code, message, { status: STATUS[code], fix, cause })
  }
}

const INPUT_FIX = 'give a domain (alice.dev), a domain and port (alice.dev:8443) or a did:web DID (did:web:example.com:u:alice)'

function invalid(input: string, reason: string): DidWebError {
  return new DidWebError('DID_WEB_INVALID', `'${input.slice(0, 200)}' is not a did:web: ${reason}`, INPUT_FIX)
}

/** A DNS name (or IPv4 address) as did:web allows it: ASCII labels, at most 253 characters. */
const DNS_NAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/
/** One did:web segment: DID idchars (ALPHA / DIGIT / "." / "-" / "_" / pct-encoded). */
const SEGMENT = /^(?:[A-Za-z0-9._-]|%[0-9A-Fa-f]{2})+$/

/** Percent-encodes everything but the unreserved DID idchars. */
function encodeSegment(text: string): string {
  let out = ''
  for (const byte of new TextEncoder().encode(text)) {
    const c = String.fromCharCode(byte)
    out += /[A-Za-z0-9._-]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`
  }
  return out
}

/** A did:web taken apart: the host (lowercase, IPv6 in brackets), the port, the path segments. */
export interface ParsedDidWeb {
  /** The DID in its one spelling (lowercase host, `%3A` for the port): the cache key and document id. */
  did: string
  host: string
  port: number | undefined
  path: string[]
}

/** Splits `host[:port]` (IPv6 in brackets) and checks both; throws DID_WEB_INVALID. */
function parseHostPort(input: string, hostPort: string): { host: string; port: number | undefined } {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(hostPort)
  if (!m) throw invalid(input, `'${hostPort.slice(0, 100)}' is not a host or host:port`)
  let host = m[1]!.toLowerCase()
  if (host.startsWith('[')) {
    try {
      host = new URL(`http://${host}/`).hostname
    } catch {
      throw invalid(input, `'${host}' is not an IPv6 address`)
    }
  } else if (!DNS_NAME.test(host)) {
    throw invalid(input, `'${host.slice(0, 100)}' is not a domain name`)
  }
  const port = m[2] === undefined ? undefined : Number(m[2])
  if (port !== undefined && (port < 1 || port > 65535)) throw invalid(input, `port ${m[2]} is out of range`)
  return { host, port }
}

/** Takes a did:web apart; throws DidWebError DID_WEB_INVALID on anything malformed. */
export function parseDidWeb(did: string): ParsedDidWeb {
  if (typeof did !== 'string' || !did.startsWith(DID_WEB_PREFIX)) throw invalid(String(did), 'it does not start with did:web:')
  if (did.length > 2048) throw invalid(did, 'it is longer than 2048 characters')
  const segments = did.slice(DID_WEB_PREFIX.length).split(':')
  for (const s of segments) {
    if (!SEGMENT.test(s)) {
      throw invalid(
        did,
        s === ''
          ? 'it has an empty segment'
          : `'${s.slice(0, 100)}' has characters a DID does not allow (a DID URL's path, query or fragment is not resolved)`,
      )
    }
  }
  const decoded = segments.map((s) => {
    try {
      return decodeURIComponent(s)
    } catch {
      throw invalid(did, `'${s.slice(0, 100)}' is not valid percent-encoding`)
    }
  })
  const { host, port } = parseHostPort(did, decoded[0]!)
  const path = decoded.slice(1)
  for (const p of path) {
    if (p === '.' || p === '..' || /[/\\?#]/.test(p) || [...p].some((c) => c.charCodeAt(0) < 0x20))
      throw invalid(did, `the path segment '${p.slice(0, 100)}' is not allowed`)
  }
  const authority = encodeSegment(port === undefined ? host : `${host}:${port}`)
  return { did: [DID_WEB_PREFIX + authority, ...path.map(encodeSegment)].join(':'), host, port, path }
}

/**
 * The did:web for what an operator types: a domain (`alice.dev`), a domain and port
 * (`alice.dev:8443`, written `did:web:alice.dev%3A8443`), or a did:web itself (path forms such
 * as `did:web:example.com:u:alice` need the prefix). Throws DID_WEB_INVALID.
 */
export function toDidWeb(input: string): string {
  const text = typeof input === 'string' ? input.trim() : ''
  if (text.startsWith(DID_WEB_PREFIX)) return parseDidWeb(text).did
  if (text === '') throw invalid(String(input), 'it is empty')
  if (text.startsWith('did:')) throw invalid(text, 'it is a DID of another method')
  if (/[/@?#\s]/.test(text)) throw invalid(text, 'it looks like a URL, not a domain')
  const { host, port } = parseHostPort(text, text)
  return parseDidWeb(DID_WEB_PREFIX + encodeSegment(port === undefined ? host : `${host}:${port}`)).did
}

/**
 * Where the document of `did` is (SPEC 8): `did:web:example.com` →
 * `https://example.com/.well-known/did.json`, `did:web:example.com:u:alice` →
 * `https://example.com/u/alice/did.json`; `%3A` encodes a port; `http://` only for localhost,
 * 127.0.0.1 and [::1]. Throws DID_WEB_INVALID.
 */
export function didWebUrl(did: string): string {
  const { host, port, path } = parseDidWeb(did)
  const scheme = LOOPBACK_HOSTS.has(host) ? 'http' : 'https'
  const base = `${scheme}://${host}${port === undefined ? '' : `:${port}`}`
  const where = path.length === 0 ? '/.well-known' : `/${path.map(encodeURIComponent).join('/')}`
  return new URL(`${where}/did.json`, base).toString()
}

/** What `didWebDocument` needs: the instance key (only its DID), the domain and the daemon URL. */
export interface DidWebDocumentInit {
  keypair: Pick<Keypair, 'did'>
  /** A domain, domain:port or did:web (as `toDidWeb` reads it). */
  domain: string
  /** The URL peers reach the daemon at (the SyncropelDaemon service endpoint). */
  endpoint: string
}

/** A W3C DID document as this daemon publishes it. */
export interface DidWebDocument {
  '@context': string[]
  id: string
  alsoKnownAs: string[]
  verificationMethod: { id: string; type: 'Ed25519VerificationKey2020'; controller: string; publicKeyMultibase: string }[]
  authentication: string[]
  assertionMethod: string[]
  service: { id: string; type: typeof SYNCROPEL_SERVICE_TYPE; serviceEndpoint: string }[]
}

/** Checks an endpoint is an http(s) URL and drops trailing slashes; throws URL_INVALID. */
export function endpointUrl(endpoint: string): string {
  let url: URL | undefined
  try {
    url = new URL(endpoint)
  } catch {
    url = undefined
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.username || url.password || url.search || url.hash) {
    throw new SplError('URL_INVALID', `'${String(endpoint).slice(0, 200)}' is not an http(s) URL of a daemon`, {
      fix: 'give the URL peers reach the daemon at, such as https://alice.dev or http://203.0.113.5:9100',
    })
  }
  return url.toString().replace(/\/+$/, '')
}

/**
 * The did:web document of `init.keypair`'s instance: one Ed25519VerificationKey2020 (`#key-1`,
 * its publicKeyMultibase is the z6Mk… part of the did:key), used for authentication and
 * assertions, the did:key as `alsoKnownAs`, and the SyncropelDaemon service at `endpoint`.
 */
export function didWebDocument(init: DidWebDocumentInit): DidWebDocument {
  const did = toDidWeb(init.domain)
  if (!isDidKey(init.keypair.did)) throw new SplError('INVALID_DID', `'${String(init.keypair.did).slice(0, 120)}' is not a did:key`)
  const keyId = `${did}#key-1`
  return {
    '@context': [...DID_DOCUMENT_CONTEXT],
    id: did,
    alsoKnownAs: [init.keypair.did],
    verificationMethod: [
      {
        id: keyId,
        type: 'Ed25519VerificationKey2020',
        controller: did,
        publicKeyMultibase: init.keypair.did.slice('did:key:'.length),
      },
    ],
    authentication: [keyId],
    assertionMethod: [keyId],
    service: [{ id: '#spl', type: SYNCROPEL_SERVICE_TYPE, serviceEndpoint: endpointUrl(init.endpoint) }],
  }
}

/** What a did:web resolved to: the daemon's did:key (from the document's key) and its URL. */
export interface DidWebResolution {
  /** The did:web (normalised). */
  did: string
  /** The did:key of the document's Ed25519 key: what signs the peer's manifest and records. */
  didKey: string
  /** The verification method that key came from. */
  keyId: string
  /** The SyncropelDaemon service endpoint, without trailing slashes. */
  url: string
  /** When the document was fetched (ms). */
  fetchedAt: number
}

type Json = Record<string, unknown>
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v)
const asList = (v: unknown): unknown[] => (v === undefined ? [] : Array.isArray(v) ? v : [v])

function badDocument(did: string, reason: string): DidWebError {
  return new DidWebError(
    'DID_DOCUMENT_INVALID',
    `the DID document of ${did} is not usable: ${reason}`,
    'the domain serves a document spl cannot use: regenerate it with spl identity publish-did-web --domain DOMAIN and upload it again',
  )
}

/**
 * Reads a fetched document of `did`: its `id` must be `did`; the key is the first Ed25519 key
 * (Ed25519VerificationKey2020 or Multikey with a z6Mk… publicKeyMultibase) that
 * `assertionMethod` names, else the first listed; the URL is the first SyncropelDaemon service.
 * Throws DID_DOCUMENT_INVALID.
 */
export function readDidWebDocument(document: unknown, did: string, fetchedAt: number): DidWebResolution {
  if (!isObject(document)) throw badDocument(did, 'it is not a JSON object')
  if (document['id'] !== did) throw badDocument(did, `its id is ${JSON.stringify(String(document['id']).slice(0, 200))}, not ${did}`)
  const absolute = (id: unknown) => (typeof id === 'string' && id.startsWith('#') ? `${did}${id}` : id)
  const keys: { id: string; didKey: string }[] = []
  const embedded = [...asList(document['assertionMethod']), ...asList(document['authentication'])].filter(isObject)
  for (const vm of [...asList(document['verificationMethod']), ...embedded]) {
    if (!isObject(vm) || typeof vm['type'] !== 'string' || !KEY_TYPES.has(vm['type'])) continue
    const mb = vm['publicKeyMultibase']
    const id = absolute(vm['id'])
    if (typeof mb !== 'string' || typeof id !== 'string' || !isDidKey(`did:key:${mb}`)) continue
    keys.push({ id, didKey: `did:key:${mb}` })
  }
  if (keys.length === 0) throw badDocument(did, 'it has no Ed25519VerificationKey2020 key with a z6Mk… publicKeyMultibase')
  const asserted = new Set(asList(document['assertionMethod']).map((r) => absolute(isObject(r) ? r['id'] : r)))
  const key = keys.find((k) => asserted.has(k.id)) ?? keys[0]!
  let url: string | undefined
  for (const service of asList(document['service'])) {
    if (!isObject(service) || !asList(service['type']).includes(SYNCROPEL_SERVICE_TYPE)) continue
    const endpoint = asList(service['serviceEndpoint']).find((e) => typeof e === 'string')
    if (typeof endpoint !== 'string') continue
    try {
      url = endpointUrl(endpoint)
      break
    } catch {
      throw badDocument(did, `its SyncropelDaemon service endpoint '${endpoint.slice(0, 200)}' is not an http(s) URL`)
    }
  }
  if (!url) throw badDocument(did, `it has no ${SYNCROPEL_SERVICE_TYPE} service naming the daemon's URL`)
  return { did, didKey: key.didKey, keyId: key.id, url, fetchedAt }
}

/**
 * GETs the document of `did` (node:https through @spl/transport's httpGet, so
 * NODE_EXTRA_CA_CERTS applies; redirects are not followed; at most 64 KiB) and parses its JSON.
 * Throws DID_NOT_FOUND (404, 410), DID_RESOLVE_FAILED (no answer, another status) or
 * DID_DOCUMENT_INVALID (too large, not JSON).
 */
export async function fetchDidWebDocument(did: string, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<unknown> {
  const url = didWebUrl(did)
  const timeout = AbortSignal.timeout(options.timeoutMs ?? 5000)
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout
  let answer: Awaited<ReturnType<typeof httpGet>>
  try {
    answer = await httpGet(new URL(url), () => ({ accept: 'application/did+json, application/json' }), signal, MAX_DID_DOCUMENT_BYTES)
  } catch (err) {
    if (err instanceof PullError && err.pullCode === 'PARSE_ERROR' && /larger than/.test(err.message)) {
      throw badDocument(did, `${url} is larger than ${MAX_DID_DOCUMENT_BYTES} bytes`)
    }
    const detail = err instanceof PullError ? `${err.pullCode}: ${err.message}` : err instanceof Error ? err.message : String(err)
    throw new DidWebError(
      'DID_RESOLVE_FAILED',
      `${url} could not be fetched (${detail})`,
      'check the domain resolves from this machine and serves HTTPS with a certificate this machine trusts (NODE_EXTRA_CA_CERTS for a private CA); a copy resolved before is used until it expires',
      err,
    )
  }
  if (answer.status === 404 || answer.status === 410) {
    throw new DidWebError(
      'DID_NOT_FOUND',
      `${url} answered HTTP ${answer.status}: ${did} has no DID document`,
      'the domain does not publish one: run spl identity publish-did-web --domain DOMAIN on the peer and upload the file to that URL (or set identity.web_domain there)',
    )
  }
  if (answer.status !== 200) {
    const where =
      answer.status >= 300 && answer.status < 400 && answer.headers.location
        ? ` (to ${String(answer.headers.location).slice(0, 200)}; redirects are not followed)`
        : ''
    throw new DidWebError(
      'DID_RESOLVE_FAILED',
      `${url} answered HTTP ${answer.status}${where}`,
      'the domain did not serve the document: check its web server (did.json must answer 200 at that URL)',
    )
  }
  try {
    return JSON.parse(answer.body) as unknown
  } catch {
    throw badDocument(did, `${url} is not JSON`)
  }
}
