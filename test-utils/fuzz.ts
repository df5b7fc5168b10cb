import crypto from 'node:crypto'
import { prng } from './prng.js'

// Generators of hostile HTTP requests for the daemon's doors (issue 18, "the suite that keeps it
// so"). Pure and deterministic: a case is a function of (seed, door, index) only, so one failing
// case is replayed by its seed and index alone (SPL_FUZZ_SEED, SPL_FUZZ_ONLY). Nothing here sends
// a request: the runners (apps/daemon/test/fuzz/, apps/cli/test/fuzz-socket.e2e.test.ts) do.
//
// Every URL a case carries in a body or a query names 127.0.0.1 on a closed port: a door that
// fetches what it is given (sync once, discovery) never leaves this machine.

/** One door of the daemon as openapi.json lists it. */
export interface Door {
  method: string
  /** The OpenAPI path template, e.g. `/v1/records/{id}`. */
  path: string
  auth: 'open' | 'admin' | 'proof' | 'none'
}

/** The pseudo-door of paths no route serves. */
export const UNKNOWN_DOOR: Door = { method: 'GET', path: '(unknown paths)', auth: 'none' }

export const doorKey = (d: Door): string => `${d.method} ${d.path}`

/** Every door of an OpenAPI document (the daemon's openApiDocument()), in document order. */
export function doorsOf(doc: { paths: Record<string, Record<string, { security?: Record<string, unknown>[] }>> }): Door[] {
  const doors: Door[] = []
  for (const [p, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const sec = op.security ?? []
      const auth = sec.length === 0 ? 'open' : sec.some((s) => 'splProof' in s) ? 'proof' : 'admin'
      doors.push({ method: method.toUpperCase(), path: p, auth })
    }
  }
  return doors
}

/** What the runner knows of the daemon under test: its objects, so that some cases name real ones. */
export interface Known {
  /** A URL of this daemon (Host, Origin and proof checks). */
  origin: string
  adminToken: string
  recordIds: string[]
  pairIds: string[]
  grantIds: string[]
  namespaces: string[]
  dids: string[]
  threads: string[]
}

/** One request to make. `body` is text, or raw bytes for invalid UTF-8; GET/HEAD never carry one. */
export interface FuzzCase {
  door: string
  index: number
  seed: number
  method: string
  /** Path and query as sent (relative to the daemon's origin). */
  target: string
  headers: Record<string, string>
  body?: string | Uint8Array
  /** What the generator meant (e.g. "body: wrong type at thread"): printed with a failure. */
  what: string[]
  /** The case carries a valid SPL-Proof for `target` (signed by the runner, see `needsProof`). */
  needsProof: boolean
}

/** A small PRNG with helpers. */
export class Rng {
  readonly next: () => number
  constructor(seed: number) {
    this.next = prng(seed)
  }
  int(n: number): number {
    return Math.floor(this.next() * n)
  }
  chance(p: number): boolean {
    return this.next() < p
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!
  }
  hex(n: number): string {
    let s = ''
    for (let i = 0; i < n; i++) s += '0123456789abcdef'[this.int(16)]
    return s
  }
}

/** The seed of one case: FNV-1a of "seed|door|index". */
export function caseSeed(seed: number, door: string, index: number): number {
  let h = 0x811c9dc5
  const s = `${seed}|${door}|${index}`
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return h
}

export const MiB = 1024 * 1024
/** SPEC 7.6: request bodies over 16 MiB are 413. */
export const MAX_BODY = 16 * MiB

/** Strings that break parsers, normalizers, regexes and stores. */
export const EDGE_STRINGS: readonly string[] = [
  '',
  ' ',
  '\u0000',
  'a\u0000b',
  '\ud800',
  '\udfff',
  'x\ud83d',
  '\udc00\ud800',
  '\u202eevil\u202c',
  '\u200f\u200e',
  '\ufeffbom',
  '\uffff\ufffe',
  '😀',
  '👩‍👩‍👧‍👦',
  'e\u0301\u0301\u0301',
  '\u{10ffff}',
  'Ω≈ç√∫',
  '𝕿𝖍𝖗𝖊𝖆𝖉',
  'ＴＨ＿ｆｕｌｌ',
  'th_\u0130',
  '\r\n\r\n',
  '\t',
  '%00',
  '%2F%2e%2e',
  '../../etc/passwd',
  '..\\..\\',
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  'null',
  'undefined',
  'true',
  '0',
  '-0',
  '1e309',
  'NaN',
  "'; DROP TABLE spl_records; --",
  '<script>alert(1)</script>',
  '$' + '{7*7}{{7*7}}',
  '\\',
  '"',
  '\\u0000',
  'th_',
  'th_fuzz',
  'th_consent',
  'th_namespace_registry',
  'default',
  'did:key:',
  'did:key:z6Mk',
  'did:web:127.0.0.1%3A1',
  'cg_',
  'a'.repeat(201),
  'x'.repeat(5000),
]

/** Numbers at the edges (as JS values; the raw texts below go in textually). */
export const EDGE_NUMBERS: readonly number[] = [
  0,
  -0,
  -1,
  1,
  1.5,
  0.1,
  99,
  100,
  2 ** 31,
  2 ** 32,
  2 ** 53 - 1,
  2 ** 53,
  2 ** 53 + 2,
  -(2 ** 53),
  1e21,
  1e308,
  -1e308,
  5e-324,
  Number.MAX_VALUE,
  3_600_001,
  30_001,
]

/** Number texts JSON.stringify never makes: overflow to Infinity, huge integers, odd forms. */
export const RAW_NUMBERS: readonly string[] = [
  '1e309',
  '-1e309',
  '123456789012345678901234567890123456789',
  '9'.repeat(400),
  '1.0',
  '-0.0',
  '0e0',
  '1E+2',
  '0.000000000000000000000000000001',
  '4.9e-325',
]

/** Bodies that are not JSON. */
export const MALFORMED_JSON: readonly string[] = [
  '{',
  '}',
  '{"a":',
  '{"a":1,}',
  "{'a':1}",
  '{a:1}',
  '{"a":1} trailing',
  '{"a":1}{"b":2}',
  '[1,2,',
  '{"a":NaN}',
  '{"a":Infinity}',
  '{"a":undefined}',
  '{"a":0x10}',
  '{"a":01}',
  '{"a":.5}',
  '{"a":+1}',
  '{"a":"\\x41"}',
  '{"a":"\\u12"}',
  '{"a":"unterminated}',
  '{"a":"tab\there"}',
  '{"a":"nl\nhere"}',
  '/* comment */ {}',
  '{} // comment',
  '\ufeff{}',
  '\u0000',
  'null',
  'true',
  '0',
  '"string"',
  '[]',
  '[{}]',
  ' ',
  '\r\n',
  'act=INTEND&thread=th_fuzz',
  '<xml/>',
]

/** Content types other than JSON, and JSON in odd spellings. */
export const CONTENT_TYPES: readonly string[] = [
  'application/json',
  'application/json; charset=utf-8',
  'APPLICATION/JSON',
  'application/json;charset=utf-16',
  'application/json, text/plain',
  'application/jsonx',
  'application/json5',
  'application/ld+json',
  'application/problem+json',
  'text/json',
  'text/plain',
  'text/plain; charset=utf-8',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=----x',
  'application/octet-stream',
  'application/xml',
  '*/*',
  '',
  ' ',
  'json',
  ';',
  'application/',
]

/** Methods a door may be called with besides its own (fetch's Request refuses CONNECT, TRACE, TRACK). */
export const ODD_METHODS: readonly string[] = [
  'GET',
  'POST',
  'PUT',
  'PATCH',
  'DELETE',
  'OPTIONS',
  'HEAD',
  'PROPFIND',
  'FOO',
  'M-SEARCH',
  'patch',
]

/** Query keys: the daemon's own and junk. */
const QUERY_KEYS: readonly string[] = [
  'thread',
  'since',
  'limit',
  'feed',
  'timeout',
  'target_namespace',
  'max_bytes',
  'include_own',
  'after',
  'all',
  'namespace',
  'method',
  'did',
  'timeout_ms',
  'domain',
  'directory',
  '__proto__',
  'constructor',
  'prototype',
  '',
  'a[b]',
  'a[]',
  '%00',
  '%ZZ',
  'x'.repeat(300),
]

/** Query values, percent-encoded already (or deliberately not). */
const QUERY_VALUES: readonly string[] = [
  '',
  '0',
  '-1',
  '-0',
  '1e3',
  '1.5',
  '0x10',
  '10000',
  '10001',
  '30000',
  '30001',
  '999999999999999999999999',
  '9'.repeat(400),
  'NaN',
  'Infinity',
  'true',
  'false',
  'TRUE',
  'normal',
  'longpoll',
  'th_fuzz',
  'th_consent',
  'th_namespace_registry',
  'default',
  'mdns',
  'static',
  'did-sync',
  'mdns,static',
  ',',
  '%00',
  '%ZZ',
  '%',
  '%E2%80%AE',
  '%ED%A0%80',
  '%C0%AF',
  '%F0%9F%98%80',
  '%2F..%2F',
  '..',
  'c1.0.0',
  'c1.zz.1',
  'c1.00000000000000000000000000000000.99999999999999999999',
  'c2.x.y',
  '__proto__',
  'http%3A%2F%2F127.0.0.1%3A1%2F',
  'file%3A%2F%2F%2Fetc%2Fpasswd',
  'x'.repeat(3000),
  '%20%20',
  '+',
  '&',
  '=',
  '#frag',
]

/** Values a query key must never be given: things a door would fetch. Only loopback, closed port. */
const SAFE_URL_VALUES: readonly string[] = [
  'http%3A%2F%2F127.0.0.1%3A1',
  'https%3A%2F%2F127.0.0.1%3A1%2Fx',
  'http%3A%2F%2F%5B%3A%3A1%5D%3A1',
  'ftp%3A%2F%2F127.0.0.1%3A1',
]
/** `domain` values that resolve nowhere but loopback (no DNS query leaves the machine). */
const SAFE_DOMAINS: readonly string[] = ['127.0.0.1%3A1', 'localhost%3A1', '%5B%3A%3A1%5D%3A1', '127.0.0.1', '', 'x'.repeat(2001)]

/** URLs for bodies: loopback on a closed port, or not URLs at all. */
export const SAFE_URLS: readonly string[] = [
  'http://127.0.0.1:1',
  'http://127.0.0.1:1/',
  'https://127.0.0.1:1/base',
  'http://[::1]:1',
  'http://localhost:1',
  'ftp://127.0.0.1:1',
  'file:///etc/passwd',
  'javascript:alert(1)',
  'http://',
  'http:// 127.0.0.1',
  '127.0.0.1:1',
  '',
]

/** Header values for the headers a door reads; latin-1 only (fetch's Headers refuses more). */
function oddHeaders(r: Rng, known: Known): Record<string, string> {
  const h: Record<string, string> = {}
  const n = 1 + r.int(3)
  for (let i = 0; i < n; i++) {
    switch (r.int(14)) {
      case 0:
        h['origin'] = r.pick(['http://evil.example', 'null', known.origin, `${known.origin}/`, 'http://127.0.0.1', 'file://', ''])
        break
      case 1:
        h['sec-fetch-site'] = r.pick(['cross-site', 'same-site', 'same-origin', 'none', '', 'CROSS-SITE'])
        break
      case 2:
        h[r.pick(['x-forwarded-for', 'forwarded', 'x-real-ip', 'via', 'cf-connecting-ip', 'true-client-ip'])] = r.pick([
          '127.0.0.1',
          '10.0.0.1',
          'for=1.2.3.4',
          '',
        ])
        break
      case 3:
        h['host'] = r.pick(['evil.example', '127.0.0.1', 'localhost:1', '[::1]', '', 'a b', '127.0.0.1:99999', '%00', 'x'.repeat(300)])
        break
      case 4:
        h['spl-proof'] = r.pick([
          '',
          'x',
          'a.b.c',
          'eyJhbGciOiJub25lIn0.e30.',
          `${'e'.repeat(100)}.${'e'.repeat(100)}.${'e'.repeat(86)}`,
          'x'.repeat(20_000),
        ])
        break
      case 5:
        // A large header: in process nothing limits it; on a socket Node answers 431 over 16 KiB.
        h['x-fuzz-big'] = 'b'.repeat(r.pick([1000, 8000, 20_000, 70_000]))
        break
      case 6:
        h['accept'] = r.pick(['*/*', 'text/html', 'application/xml', '', 'x'.repeat(1000)])
        break
      case 7:
        h['content-encoding'] = r.pick(['gzip', 'br', 'deflate', 'identity', 'x'])
        break
      case 8:
        h['cookie'] = r.pick(['a=b', '__proto__=1', 'x'.repeat(4000)])
        break
      case 9:
        h['x-latin1'] = r.pick(['\u00ff\u00fe', 'caf\u00e9', '\u0080\u0081'])
        break
      case 10:
        h['if-none-match'] = r.pick(['*', '"x"', 'W/"y"'])
        break
      case 11:
        h['range'] = r.pick(['bytes=0-1', 'bytes=-1', 'x'])
        break
      case 12:
        setKey(h, '__proto__', r.pick(['1', '{}']))
        break
      default:
        h['authorization'] = r.pick([
          'Bearer',
          'Bearer ',
          `Bearer ${known.adminToken} x`,
          `bearer ${known.adminToken}`,
          'Basic YTpi',
          `Bearer ${'z'.repeat(5000)}`,
        ])
    }
  }
  return h
}

/** The kinds of fields a body template has: what a valid value of each looks like. */
type FieldKind =
  | 'act'
  | 'thread'
  | 'ns'
  | 'did'
  | 'url'
  | 'id64'
  | 'idList'
  | 'object'
  | 'text'
  | 'int'
  | 'datetime'
  | 'hashLevels'
  | 'threads'
  | 'mode'
  | 'dataType'
type Template = Record<string, { kind: FieldKind; required: boolean }>

/** Body templates of the JSON doors (SPEC 2.5, 4.1, 6; docs/http-api.md). Doors without one get generic bodies. */
const TEMPLATES: Record<string, Template> = {
  'POST /v1/records': {
    act: { kind: 'act', required: true },
    thread: { kind: 'thread', required: true },
    body: { kind: 'object', required: false },
    parents: { kind: 'idList', required: false },
    data_type: { kind: 'dataType', required: false },
    clock: { kind: 'int', required: false },
    judged_by: { kind: 'id64', required: false },
  },
  'POST /v1/namespaces': { namespace: { kind: 'ns', required: true }, description: { kind: 'text', required: false } },
  'POST /v1/sync/pairs': {
    peer_did: { kind: 'did', required: true },
    peer_url: { kind: 'url', required: true },
    thread_id: { kind: 'thread', required: true },
    mode: { kind: 'mode', required: false },
    poll_interval_ms: { kind: 'int', required: false },
  },
  'POST /v1/sync/once': { peer: { kind: 'url', required: true }, thread: { kind: 'thread', required: true } },
  'POST /v1/consent/grants': {
    source_namespace: { kind: 'ns', required: false },
    target_namespace: { kind: 'ns', required: true },
    hash_levels: { kind: 'hashLevels', required: false },
    threads: { kind: 'threads', required: false },
    purpose: { kind: 'text', required: false },
    expires_at: { kind: 'datetime', required: false },
  },
  'POST /v1/consent/bindings': { did: { kind: 'did', required: true }, namespace: { kind: 'ns', required: true } },
}

const ACTS = ['INTEND', 'DO', 'KNOW', 'LEARN', 'GET', 'PUT', 'CALL', 'MAP'] as const
const DIDS_FOR_FUZZ = [
  'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK',
  'did:key:z6MkpTHR8VNsBxYAAWHut2Geadd9jSwuBV8xRoAnwWsdvktH',
  'did:key:z6MkjchhfUsD6mmvni8mCdXHw216Xrm9bQe2mBH1P5RDjVJG',
]

/** A valid value of `kind` (often one the daemon already holds). */
function validValue(kind: FieldKind, r: Rng, known: Known, unique: string): unknown {
  switch (kind) {
    case 'act':
      return r.pick(ACTS)
    case 'thread':
      return r.chance(0.3) && known.threads.length ? r.pick(known.threads) : `th_fuzz.${unique}`
    case 'ns':
      return r.chance(0.5) && known.namespaces.length
        ? r.pick(known.namespaces)
        : r.pick(['default', `fuzz/n${unique.replace(/\W/g, '')}`, 'fuzz', 'fuzz/a/b'])
    case 'did':
      return r.chance(0.5) && known.dids.length ? r.pick(known.dids) : r.pick(DIDS_FOR_FUZZ)
    case 'url':
      return r.pick(['http://127.0.0.1:1', 'http://127.0.0.1:1/', 'http://localhost:1'])
    case 'id64':
      return r.chance(0.5) && known.recordIds.length ? r.pick(known.recordIds) : r.hex(64)
    case 'idList':
      return r.chance(0.5) ? [] : [r.chance(0.5) && known.recordIds.length ? r.pick(known.recordIds) : r.hex(64)]
    case 'object':
      return r.chance(0.5)
        ? { text: `fuzz ${unique}` }
        : {
            text: r.pick(EDGE_STRINGS.filter((s) => !/[\ud800-\udfff]/.test(s) || s === '😀')),
            n: r.pick(EDGE_NUMBERS.filter(Number.isFinite)),
          }
    case 'text':
      return `fuzz ${unique}`
    case 'int':
      return r.pick([0, 1, 100, 1000, 5000])
    case 'datetime':
      return r.pick(['2099-01-01T00:00:00Z', '2099-01-01T00:00:00.000+02:00'])
    case 'hashLevels':
      return r.pick([['L1'], ['L0', 'L1', 'L2', 'L3'], ['L2', 'L3'], ['L3']])
    case 'threads':
      return r.chance(0.5) ? '*' : [`th_fuzz.${unique}`]
    case 'mode':
      return r.pick(['longpoll', 'poll', 'live', 'manual'])
    case 'dataType':
      return r.pick(['SCALAR', 'FORMULA', 'DISTRIBUTION', 'REFERENCE', 'MORPHISM', 'VOID'])
  }
}

/** A value of the wrong type or at an edge for `kind` (never a URL off this machine for 'url'). */
function badValue(kind: FieldKind, r: Rng): unknown {
  if (kind === 'url') return r.pick(SAFE_URLS)
  switch (r.int(8)) {
    case 0:
      return r.pick([null, true, false])
    case 1:
      return r.pick(EDGE_NUMBERS)
    case 2:
      return r.pick(EDGE_STRINGS)
    case 3:
      return r.pick([[], [null], [1, 2], ['th_a', 'th_a'], Array.from({ length: 1001 }, (_, i) => i)])
    case 4:
      return r.pick([{}, { a: 1 }, { thread: 'th_x' }, { namespace: r.pick(EDGE_STRINGS) }])
    case 5:
      return `${r.pick(['th_', 'fuzz/', 'did:key:z6Mk', 'cg_', ''])}${r.pick(EDGE_STRINGS)}`
    case 6:
      return r.pick(EDGE_STRINGS).repeat(1 + r.int(50))
    default:
      return kind === 'object' ? r.pick(EDGE_STRINGS) : { nested: r.pick(EDGE_STRINGS) }
  }
}

/** Sets own enumerable `key` (also `__proto__`, which a plain assignment would not make a key). */
function setKey(o: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true })
}

/** Placeholders for raw number texts, swapped in after JSON.stringify. */
const RAW = '\u0001raw:'
function raw(text: string): string {
  return `${RAW}${text}\u0001`
}
function stringifyWithRaw(v: unknown): string {
  return JSON.stringify(v).replace(/"\\u0001raw:([^"\\]*)\\u0001"/g, '$1')
}

/** `[[[…]]]` or `{"a":{"a":…}}` `depth` levels deep. */
export function deepJson(depth: number, kind: 'array' | 'object'): string {
  return kind === 'array' ? '['.repeat(depth) + ']'.repeat(depth) : '{"a":'.repeat(depth) + '1' + '}'.repeat(depth)
}

let oversized: string | undefined
/** A JSON emit body one byte over 16 MiB (built once: cases share it). */
export function oversizedBody(): string {
  if (oversized === undefined) {
    const head = '{"act":"INTEND","thread":"th_fuzz","body":{"text":"'
    const tail = '"}}'
    oversized = head + 'o'.repeat(MAX_BODY + 1 - head.length - tail.length) + tail
  }
  return oversized
}

let large: string | undefined
/** A valid emit body of ~1.1 MiB: over the default record limit (413 RECORD_TOO_LARGE), under the body limit. */
export function largeBody(): string {
  large ??= JSON.stringify({ act: 'INTEND', thread: 'th_fuzz', body: { text: '汉'.repeat(400_000) } })
  return large
}

/** A JSON body for `door`: valid, mutated, malformed, deep, large, oversized or invalid UTF-8. */
function bodyFor(door: Door, r: Rng, known: Known, unique: string, what: string[]): string | Uint8Array | undefined {
  const t = TEMPLATES[doorKey(door)]
  // Per mille: the large bodies are rare (each costs tens of milliseconds), the rest common.
  const roll = r.int(1000)
  if (roll < 4) {
    what.push('body: over 16 MiB')
    return oversizedBody()
  }
  if (roll < 12) {
    what.push('body: ~1.1 MiB record')
    return largeBody()
  }
  if (roll < 60) {
    const depth = r.pick([100, 1000, 10_000, 10_000])
    const kind = r.pick(['array', 'object'] as const)
    what.push(`body: ${kind} nested ${depth} deep`)
    const deep = deepJson(depth, kind)
    // Deep inside the record body (reaches the canonical form), or as the whole body.
    return r.chance(0.6) ? `{"act":"INTEND","thread":"th_fuzz.${unique}","body":{"deep":${deep}}}` : deep
  }
  if (roll < 120) {
    what.push('body: malformed JSON')
    return r.pick(MALFORMED_JSON)
  }
  if (roll < 150) {
    what.push('body: invalid UTF-8')
    const bytes = r.pick([[0xff, 0xfe], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0x80], [0xe2, 0x82]])
    const head = Buffer.from(`{"act":"INTEND","thread":"th_fuzz.${unique}","body":{"text":"`)
    return new Uint8Array(Buffer.concat([head, Buffer.from(bytes), Buffer.from('"}}')]))
  }
  if (roll < 170) {
    what.push('body: empty')
    return ''
  }
  if (!t) {
    // A door without a template: {} (what the CLI sends), junk objects, keys that poison prototypes.
    const o: Record<string, unknown> = {}
    const n = r.int(4)
    for (let i = 0; i < n; i++)
      setKey(o, r.pick(['__proto__', 'constructor', 'prototype', 'a', '', 'thread', 'id', '\u0000']), badValue('text', r))
    what.push(`body: generic ${JSON.stringify(Object.keys(o))}`)
    return JSON.stringify(o)
  }
  // A valid body, then 0-3 mutations.
  const o: Record<string, unknown> = {}
  for (const [k, f] of Object.entries(t)) if (f.required || r.chance(0.5)) o[k] = validValue(f.kind, r, known, unique)
  const mutations = r.chance(0.25) ? 0 : 1 + r.int(3)
  if (mutations === 0) what.push('body: valid')
  const keys = Object.keys(t)
  for (let i = 0; i < mutations; i++) {
    const k = r.pick(keys)
    const f = t[k]!
    switch (r.int(9)) {
      case 0:
        delete o[k]
        what.push(`body: without ${k}`)
        break
      case 1:
      case 2:
        o[k] = badValue(f.kind, r)
        what.push(`body: bad ${k}`)
        break
      case 3: {
        const key = r.pick(['__proto__', 'constructor', 'prototype', 'extra', '', '\u0000', '\ud800', '😀', 'toString'])
        setKey(o, key, r.pick([{}, { polluted: true }, 1, 'x', null, { prototype: { polluted: true } }]))
        what.push(`body: extra key ${JSON.stringify(key)}`)
        break
      }
      case 4: {
        // Inside the record body: keys that JS treats specially, values at the edges.
        const inner: Record<string, unknown> = {}
        setKey(
          inner,
          r.pick(['__proto__', 'constructor', 'namespace', 'text', '']),
          r.pick([{ polluted: true }, 'default', r.pick(EDGE_STRINGS), []]),
        )
        o['body'] = inner
        what.push(`body.body: ${JSON.stringify(Object.keys(inner))}`)
        break
      }
      case 5:
        o[k] = raw(r.pick(RAW_NUMBERS))
        what.push(`body: raw number at ${k}`)
        break
      case 6:
        if (f.kind !== 'url') {
          o[k] = r.pick(EDGE_STRINGS)
          what.push(`body: edge string at ${k}`)
        }
        break
      case 7: {
        const text = stringifyWithRaw(o)
        what.push('body: duplicate key')
        return `${text.slice(0, -1)}${text.length > 2 ? ',' : ''}"${k}":${JSON.stringify(badValue(f.kind, r))}}`
      }
      default:
        o[k] = r.pick(EDGE_NUMBERS)
        what.push(`body: number at ${k}`)
    }
  }
  return stringifyWithRaw(o)
}

/** A value for path parameter `name` (encoded, or deliberately not). */
function paramFor(name: string, doorPath: string, r: Rng, known: Known): { value: string; note: string } {
  if (r.chance(0.35)) {
    // A value of the right shape: often one that exists.
    let v: string
    if (name === 'id') {
      if (doorPath.startsWith('/v1/records')) v = known.recordIds.length && r.chance(0.7) ? r.pick(known.recordIds) : r.hex(64)
      else if (doorPath.startsWith('/v1/consent/grants'))
        v = known.grantIds.length && r.chance(0.7) ? r.pick(known.grantIds) : `cg_${r.hex(12)}`
      else v = known.pairIds.length && r.chance(0.7) ? r.pick(known.pairIds).slice(0, r.pick([16, 8, 4, 1])) : r.hex(16)
    } else if (name === 'thread')
      v = known.threads.length && r.chance(0.6) ? r.pick(known.threads) : r.pick(['th_fuzz', 'th_consent', 'th_a:b.c-d'])
    else if (name === 'ns')
      v = known.namespaces.length && r.chance(0.6) ? r.pick(known.namespaces) : r.pick(['default', 'fuzz/x', 'fuzz', 'fuzz/a'])
    else if (name === 'did') v = known.dids.length && r.chance(0.6) ? r.pick(known.dids) : r.pick(DIDS_FOR_FUZZ)
    else v = r.hex(8)
    return { value: encodeAny(v), note: `{${name}}=valid` }
  }
  const s = r.pick(EDGE_STRINGS)
  switch (r.int(6)) {
    case 0:
      return { value: encodeAny(s), note: `{${name}}=${JSON.stringify(s.slice(0, 40))} encoded` }
    case 1:
      return {
        value: r.pick(['%2F', '%2e%2e', '..', '.', '%2F..%2F..%2Fhealth', 'a%2Fb', '%252F', '%00', '%', '%ZZ', '%C0%AF', '%ED%A0%80']),
        note: `{${name}}=percent junk`,
      }
    case 2:
      return { value: 'x'.repeat(r.pick([300, 3000, 20_000])), note: `{${name}}=very long` }
    case 3:
      return { value: `${r.hex(64)}${r.pick(['/', '//', '/x', '?', '#', ';x'])}`, note: `{${name}}=with a separator` }
    case 4:
      // Raw: the URL parser decides what happens to it.
      return { value: s.replace(/[?#]/g, ''), note: `{${name}}=${JSON.stringify(s.slice(0, 40))} raw` }
    default:
      return { value: encodeAny(`${name === 'ns' ? 'fuzz/' : 'th_'}${s}`), note: `{${name}}=prefixed edge` }
  }
}

/** Paths that no door serves. */
function unknownPath(r: Rng): string {
  return r.pick([
    '/',
    '//',
    '/v1',
    '/v1/',
    '/v2/records',
    '/V1/RECORDS',
    '/health/',
    '/health/x',
    '/v1/records/',
    '/v1//records',
    '/v1/./records',
    '/v1/../v1/records',
    '/v1/%2e%2e/health',
    '/v1%2Frecords',
    '/%2e%2e/%2e%2e/etc/passwd',
    '/..%2F..%2Fetc%2Fpasswd',
    '/.well-known/',
    '/.well-known/did.json',
    '/.git/config',
    '/v1/sync',
    '/v1/sync/changes/x',
    '/v1/admin',
    '/__proto__',
    '/constructor',
    '/v1/__proto__/x',
    `/${'a'.repeat(r.pick([100, 2000, 8000, 60_000]))}`,
    `/v1/${encodeAny(r.pick(EDGE_STRINGS))}`,
    `/v1/threads/${encodeAny(r.pick(EDGE_STRINGS))}/records/x`,
    '/%00',
    '/%',
    '/%ZZ',
    '/%ED%A0%80',
    '/;a=b',
    '/metrics/x',
    '/openapi.yaml',
    `/v1/records/${'f'.repeat(64)}/x`,
  ])
}

/** 0-4 query parameters of junk (or of the door's own keys with odd values). */
function queryJunk(r: Rng, doorPath: string): string {
  const n = r.int(5)
  const parts: string[] = []
  for (let i = 0; i < n; i++) {
    const k = r.pick(QUERY_KEYS)
    let v = r.pick(QUERY_VALUES)
    // Doors that fetch what the query names: only loopback, closed port.
    if (k === 'directory') v = r.pick(SAFE_URL_VALUES)
    if (k === 'domain') v = r.pick(SAFE_DOMAINS)
    if (/^http|^file/i.test(decodeURIComponentSafe(v)) && k !== 'directory') v = r.pick(SAFE_URL_VALUES)
    parts.push(r.chance(0.05) ? k : `${k}=${v}`)
  }
  if (doorPath === '/v1/discovery/peers') parts.push(`timeout_ms=${r.pick(['0', '1', '5'])}`)
  return parts.length ? `?${parts.join(r.chance(0.1) ? '&&' : '&')}` : r.pick(['', '', '?', '?&', '?=', '?#'])
}

/** encodeURIComponent that also takes lone surrogates (as the WTF-8 bytes a sloppy client sends). */
export function encodeAny(s: string): string {
  try {
    return encodeURIComponent(s)
  } catch {
    return s
      .split(/([\ud800-\udfff])/)
      .map((part) => {
        if (part.length !== 1 || !/[\ud800-\udfff]/.test(part)) return part === '' ? '' : encodeURIComponent(part)
        const c = part.charCodeAt(0)
        return [0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f)].map((b) => `%${b.toString(16).toUpperCase()}`).join('')
      })
      .join('')
  }
}

function decodeURIComponentSafe(v: string): string {
  try {
    return decodeURIComponent(v)
  } catch {
    return v
  }
}

/** Queries of the change feed: valid ones (with a real thread) and junk. */
function feedQuery(r: Rng, known: Known): string {
  const q: string[] = []
  if (r.chance(0.85))
    q.push(
      `thread=${encodeAny(r.chance(0.7) && known.threads.length ? r.pick(known.threads) : r.pick(['th_fuzz', 'th_consent', 'th_namespace_registry', ...EDGE_STRINGS]))}`,
    )
  if (r.chance(0.4)) q.push(`since=${r.pick(QUERY_VALUES)}`)
  if (r.chance(0.4)) q.push(`limit=${r.pick(['1', '0', '10000', '10001', '-1', '1e3', 'x', ''])}`)
  // A long poll is held until its timeout: only short ones here.
  if (r.chance(0.3))
    q.push(r.pick(['feed=normal', 'feed=longpoll&timeout=0', 'feed=longpoll&timeout=5', 'feed=LONGPOLL', 'feed=', 'feed=stream']))
  if (r.chance(0.2)) q.push(`max_bytes=${r.pick(['1', '1024', '999999999', '1000000000', '-1', 'x'])}`)
  if (r.chance(0.2)) q.push(`target_namespace=${encodeAny(r.pick(['default', 'fuzz', ...EDGE_STRINGS]))}`)
  if (r.chance(0.1)) q.push(`include_own=${r.pick(['true', 'false', 'yes', ''])}`)
  if (r.chance(0.2)) q.push(queryJunk(r, '/v1/sync/changes').slice(1))
  return q.length ? `?${q.filter(Boolean).join('&')}` : ''
}

export interface CaseOptions {
  known: Known
  /**
   * The case goes out as raw bytes on a socket: control characters and spaces in the request
   * target are percent-encoded (raw, they would split the request line: the framing tests of
   * the socket suite send those on purpose).
   */
  socket?: boolean
}

/** The case `index` of `door` under `seed`. */
export function caseFor(door: Door, seed: number, index: number, options: CaseOptions): FuzzCase {
  const { known } = options
  const key = doorKey(door)
  const cs = caseSeed(seed, key, index)
  const r = new Rng(cs)
  const unique = `${index}.${r.hex(6)}`
  const what: string[] = []
  let method = door.method
  if (r.chance(0.1)) {
    method = r.pick(ODD_METHODS)
    what.push(`method ${method}`)
  }
  let target: string
  if (door === UNKNOWN_DOOR) {
    target = unknownPath(r)
    method = r.chance(0.7) ? r.pick(['GET', 'POST', 'DELETE']) : r.pick(ODD_METHODS)
    what.push(`path ${target.slice(0, 80)}`)
  } else {
    target = door.path.replace(/\{(\w+)\}/g, (_m, name: string) => {
      const p = paramFor(name, door.path, r, known)
      what.push(p.note)
      return p.value
    })
    if (r.chance(0.05)) {
      target = r.pick([
        `${target}/`,
        `${target}//`,
        target.toUpperCase(),
        `/v1/..${target}`,
        target.replace(/\//g, '//'),
        `${target};x`,
        `${target}%00`,
      ])
      what.push('path mutated')
    }
  }
  if (door.path === '/v1/sync/changes' && method === 'GET') target += feedQuery(r, known)
  else if (r.chance(door.method === 'GET' ? 0.5 : 0.15)) target += queryJunk(r, door.path)
  else if (door.path === '/v1/discovery/peers') target += '?timeout_ms=0'

  if (options.socket)
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this escapes
    target = target.replace(/[\u0000-\u0020\u007f]/g, (ch) => `%${ch.charCodeAt(0).toString(16).padStart(2, '0').toUpperCase()}`)

  const headers: Record<string, string> = {}
  if (door.auth === 'admin' || door.auth === 'none' || r.chance(0.2)) {
    const a = r.int(100)
    if (a < 85) headers['authorization'] = `Bearer ${known.adminToken}`
    else if (a < 90) what.push('no token')
    else {
      headers['authorization'] = r.pick([
        'Bearer wrong',
        `Bearer ${known.adminToken.slice(1)}`,
        `Token ${known.adminToken}`,
        'Bearer',
        `Bearer ${known.adminToken}\u00a0`,
      ])
      what.push(`authorization ${JSON.stringify(headers['authorization'].slice(0, 16))}…`)
    }
  }
  const needsProof = door.auth === 'proof' && method === 'GET' && r.chance(0.5)
  if (needsProof) what.push('valid SPL-Proof')

  let body: string | Uint8Array | undefined
  const mayHaveBody = method !== 'GET' && method !== 'HEAD'
  if (mayHaveBody && (door.method !== 'GET' || r.chance(0.3)) && r.chance(0.9)) {
    body = bodyFor(door, r, known, unique, what)
    const ct = r.chance(0.8) ? 'application/json' : r.pick(CONTENT_TYPES)
    if (ct !== 'application/json') what.push(`content-type ${JSON.stringify(ct)}`)
    if (r.chance(0.97)) headers['content-type'] = ct
    else what.push('no content-type')
  } else if (mayHaveBody && r.chance(0.3)) {
    headers['content-type'] = r.pick(CONTENT_TYPES)
    what.push(`no body, content-type ${JSON.stringify(headers['content-type'])}`)
  }
  if (r.chance(0.12)) {
    const h = oddHeaders(r, known)
    Object.assign(headers, h)
    what.push(`headers ${Object.keys(h).join(',')}`)
  }
  return { door: key, index, seed, method, target, headers, ...(body === undefined ? {} : { body }), what, needsProof }
}

/** A case as a replayable description (bodies and long values shortened). */
export function describeCase(c: FuzzCase): string {
  const short = (s: string) => (s.length > 300 ? `${s.slice(0, 200)}…(${s.length} chars)…${s.slice(-40)}` : s)
  const body =
    c.body === undefined
      ? '(none)'
      : typeof c.body === 'string'
        ? JSON.stringify(short(c.body))
        : `bytes ${Buffer.from(c.body.slice(0, 120)).toString('hex')}… (${c.body.length} bytes)`
  const headers = Object.fromEntries(Object.entries(c.headers).map(([k, v]) => [k, short(v)]))
  return [
    `door ${c.door} case #${c.index} (seed ${c.seed}; replay: SPL_FUZZ_SEED=${c.seed} SPL_FUZZ_ONLY='${c.door}#${c.index}')`,
    `  ${c.method} ${short(c.target)}`,
    `  headers ${JSON.stringify(headers)}`,
    `  body ${body}`,
    `  what ${c.what.join('; ') || 'as documented'}`,
  ].join('\n')
}

/** The seed of a run: SPL_FUZZ_SEED, else `fallback`, else a fresh random one (the runners print it). */
export function runSeed(fallback?: number, env: NodeJS.ProcessEnv = process.env): number {
  const s = env['SPL_FUZZ_SEED']
  if (s !== undefined && s !== '') return Number(s) >>> 0
  return fallback ?? crypto.randomInt(2 ** 31)
}

/** `SPL_FUZZ_ONLY='POST /v1/records#17'`: the one case to run, or null. */
export function onlyCase(env: NodeJS.ProcessEnv = process.env): { door: string; index: number } | null {
  const s = env['SPL_FUZZ_ONLY']
  if (!s) return null
  const m = /^(.*)#(\d+)$/.exec(s)
  if (!m) throw new Error(`SPL_FUZZ_ONLY must look like 'POST /v1/records#17', not ${s}`)
  return { door: m[1]!, index: Number(m[2]) }
}
