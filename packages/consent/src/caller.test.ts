import { Keypair, SplError } from '@spl/identity'
import { describe, expect, it } from 'vitest'
import { type CallerFacts, NamespaceClaimDeniedError, PeerNotPairedError, resolveCallerNamespace, SERVE_POLICIES } from './caller.js'

const DID = Keypair.generate().did

function facts(claimed: string | undefined, boundNamespace: string | null, known = boundNamespace !== null): CallerFacts {
  return { did: DID, claimed, boundNamespace, known }
}

/** The error `fn` throws (fails the test when it returns). */
function thrown(fn: () => unknown): unknown {
  try {
    fn()
  } catch (err) {
    return err
  }
  throw new Error('expected a throw, got a return')
}

describe('resolveCallerNamespace (SPEC 6.4)', () => {
  it('knows the two serve policies', () => {
    expect([...SERVE_POLICIES]).toEqual(['open', 'paired'])
  })

  it.each([
    ['no claim', undefined, null],
    ['an explicit default claim', 'default', null],
    ['a caller bound elsewhere claiming default', 'default', 'partner-team'],
    ['a caller bound elsewhere stating nothing', undefined, 'acme/ops'],
  ])('open: default is always accepted (%s)', (_name, claimed, bound) => {
    expect(resolveCallerNamespace(facts(claimed, bound, false), 'open')).toBe('default')
  })

  it('open: a non-default claim is accepted when the caller is bound to exactly it', () => {
    expect(resolveCallerNamespace(facts('partner-team', 'partner-team'), 'open')).toBe('partner-team')
    expect(resolveCallerNamespace(facts('acme/ops', 'acme/ops'), 'open')).toBe('acme/ops')
  })

  it('open: an unbound caller claiming a namespace is denied, and the message names the bind command', () => {
    const err = thrown(() => resolveCallerNamespace(facts('acme/ops', null), 'open'))
    expect(err).toBeInstanceOf(NamespaceClaimDeniedError)
    expect(err).toBeInstanceOf(SplError)
    const e = err as NamespaceClaimDeniedError
    expect(e.code).toBe('NAMESPACE_CLAIM_DENIED')
    expect(e.status).toBe(403)
    expect(e.message).toContain(`spl consent bind ${DID} --namespace acme/ops`)
    expect(e.fix).toBe(`spl consent bind ${DID} --namespace acme/ops`)
    expect(e.toJSON()).toMatchObject({ object: 'error', code: 'NAMESPACE_CLAIM_DENIED' })
    expect(e.callerDid).toBe(DID)
    expect(e.claimed).toBe('acme/ops')
    expect(e.bound).toBeNull()
  })

  it.each([
    ['another namespace', 'partner-team', 'acme/ops'],
    ['the parent of its binding', 'acme', 'acme/ops'],
    ['a child of its binding', 'acme/ops', 'acme'],
  ])('open: a bound caller claiming %s is denied', (_name, claimed, bound) => {
    const err = thrown(() => resolveCallerNamespace(facts(claimed, bound), 'open'))
    expect(err).toBeInstanceOf(NamespaceClaimDeniedError)
    const e = err as NamespaceClaimDeniedError
    expect(e.code).toBe('NAMESPACE_CLAIM_DENIED')
    expect(e.status).toBe(403)
    expect(e.message).toContain(`'${bound}'`)
    expect(e.message).toContain(`'${claimed}'`)
  })

  it('paired: an unknown caller is refused with PEER_NOT_PAIRED, whatever it claims', () => {
    for (const claimed of [undefined, 'default', 'acme/ops']) {
      const err = thrown(() => resolveCallerNamespace({ did: DID, claimed, boundNamespace: null, known: false }, 'paired'))
      expect(err).toBeInstanceOf(PeerNotPairedError)
      const e = err as PeerNotPairedError
      expect(e.code).toBe('PEER_NOT_PAIRED')
      expect(e.status).toBe(403)
      expect(e.message).toContain(DID)
    }
  })

  it('paired: a known caller is served as under open', () => {
    expect(resolveCallerNamespace({ did: DID, claimed: undefined, boundNamespace: null, known: true }, 'paired')).toBe('default')
    expect(resolveCallerNamespace({ did: DID, claimed: 'partner-team', boundNamespace: 'partner-team', known: true }, 'paired')).toBe(
      'partner-team',
    )
    const err = thrown(() => resolveCallerNamespace({ did: DID, claimed: 'acme/ops', boundNamespace: null, known: true }, 'paired'))
    expect((err as SplError).code).toBe('NAMESPACE_CLAIM_DENIED')
  })

  it('open: an unknown stranger may read default', () => {
    expect(resolveCallerNamespace({ did: DID, claimed: 'default', boundNamespace: null, known: false }, 'open')).toBe('default')
  })
})
