import { describe, expect, it } from 'vitest'
import {
  ancestorsOf,
  assertNamespaceId,
  DEFAULT_NAMESPACE,
  InvalidNamespaceError,
  NAMESPACE_RE,
  NamespaceRejectedError,
  parseNamespaceEntry,
} from './namespace.js'

const seg = (n: number, c = 'a') => c.repeat(n)

describe('namespace ids (SPEC 6.1)', () => {
  it.each([
    'default',
    'a',
    '0',
    'acme',
    'acme/ops',
    'partner-team',
    'a_b-c/0-x_y',
    'a/b/c/d',
    seg(63),
    [seg(63), seg(63, 'b'), seg(63, 'c'), seg(63, 'd')].join('/'),
  ])('accepts %s', (ns) => {
    expect(() => assertNamespaceId(ns)).not.toThrow()
    expect(NAMESPACE_RE.test(ns)).toBe(true)
  })

  it.each([
    ['empty', ''],
    ['upper case', 'Acme'],
    ['upper case in a later segment', 'acme/Ops'],
    ['a trailing slash', 'acme/'],
    ['a leading slash', '/acme'],
    ['an empty segment', 'acme//ops'],
    ['a segment starting with -', '-acme'],
    ['a segment starting with _', 'acme/_ops'],
    ['a space', 'acme ops'],
    ['a dot', 'acme.ops'],
    ['non-ASCII', 'äcme'],
    ['a backslash', 'acme\\ops'],
    ['a newline', 'acme\nops'],
    ['five segments', 'a/b/c/d/e'],
    ['a 64-character segment', seg(64)],
    ['a 64-character later segment', `acme/${seg(64)}`],
    ['more than 256 characters', `${seg(63)}/${seg(63)}/${seg(63)}/${seg(63)}/${seg(3)}`],
    ['257 characters in one piece', seg(257)],
  ])('rejects %s', (_why, ns) => {
    let err: unknown
    try {
      assertNamespaceId(ns)
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(InvalidNamespaceError)
    expect((err as InvalidNamespaceError).code).toBe('INVALID_NAMESPACE')
    expect((err as InvalidNamespaceError).status).toBe(400)
  })

  it.each([[42], [null], [undefined], [{}], [['acme']]])('rejects the non-string %j', (value) => {
    expect(() => assertNamespaceId(value)).toThrow(InvalidNamespaceError)
  })

  it('says which rule was broken', () => {
    expect(() => assertNamespaceId('a/b/c/d/e')).toThrow(/more than 4 segments/)
    expect(() => assertNamespaceId(seg(64))).toThrow(/longer than 63/)
    expect(() => assertNamespaceId(seg(257))).toThrow(/longer than 256/)
    expect(() => assertNamespaceId('Acme')).toThrow(/not allowed/)
  })
})

describe('ancestorsOf', () => {
  it('lists the chain from the root to the namespace itself', () => {
    expect(ancestorsOf('acme')).toEqual(['acme'])
    expect(ancestorsOf('acme/ops')).toEqual(['acme', 'acme/ops'])
    expect(ancestorsOf('a/b/c/d')).toEqual(['a', 'a/b', 'a/b/c', 'a/b/c/d'])
  })
})

describe('NamespaceRejectedError', () => {
  it('carries the seed text and the exact fix', () => {
    const e = new NamespaceRejectedError('acme/ops', 'acme')
    expect(e.code).toBe('NAMESPACE_REJECTED')
    expect(e.status).toBe(403)
    expect(e.message).toBe("NAMESPACE_REJECTED: ancestor 'acme' is not Active in the registry.")
    expect(e.fix).toBe('spl namespace create acme')
  })
})

describe('parseNamespaceEntry', () => {
  it('reads a well-formed entry', () => {
    expect(parseNamespaceEntry({ kind: 'core.namespace.v1', namespace: 'acme/ops', status: 'archived', description: 'ops' })).toEqual({
      kind: 'core.namespace.v1',
      namespace: 'acme/ops',
      status: 'archived',
      description: 'ops',
    })
    expect(parseNamespaceEntry({ kind: 'core.namespace.v1', namespace: 'acme', status: 'active' })?.description).toBe('')
    expect(parseNamespaceEntry({ kind: 'core.namespace.v1', namespace: 'acme', status: 'active', description: 7 })?.description).toBe('')
  })

  it.each([
    ['another kind', { kind: 'core.consent.v1', namespace: 'acme', status: 'active' }],
    ['no kind', { namespace: 'acme', status: 'active' }],
    ['an unknown status', { kind: 'core.namespace.v1', namespace: 'acme', status: 'paused' }],
    ['no status', { kind: 'core.namespace.v1', namespace: 'acme' }],
    ['a namespace that is not a string', { kind: 'core.namespace.v1', namespace: 5, status: 'active' }],
    ['an invalid namespace', { kind: 'core.namespace.v1', namespace: 'Acme', status: 'active' }],
    ['five segments', { kind: 'core.namespace.v1', namespace: 'a/b/c/d/e', status: 'active' }],
    ['a 64-character segment', { kind: 'core.namespace.v1', namespace: seg(64), status: 'active' }],
  ])('returns null for %s', (_why, body) => {
    expect(parseNamespaceEntry(body)).toBeNull()
  })

  it('the default namespace id is default', () => {
    expect(DEFAULT_NAMESPACE).toBe('default')
  })
})
