import { readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { Keypair } from '@spl/identity'
import { canonicalRecord, sha256Hex, verifyRecordSignature } from '@spl/records'
import { createRequestProof, PROOF_HEADER } from '@spl/transport'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ok, type PairView, TestDaemon } from '../../../test-utils/test-daemon.js'

/**
 * Issue 4, consent across namespaces, end to end with real daemons:
 *   A — home namespace `default`, the source;
 *   B — `spl init --namespace partner-team`, bound on A to partner-team, pulls a thread of A;
 *   C — `spl init --namespace acme/ops`, at first NOT bound on A.
 */

interface EnvelopeView {
  id: string
  record: { actor: string; act: string; thread: string; clock: number; parents: string[]; data_type: string; body: Record<string, unknown> }
  sig?: string
  stored_at: number
  redacted?: boolean
  seq: number
}

interface GrantView {
  grant_id: string
  record_id: string
  source_namespace: string
  target_namespace: string
  hash_levels: string[]
  status: string
}

interface Subscriber {
  peer_did: string
  thread_id: string
  served: number
  redacted: number
  hidden: number
}

const SHARED = 'th_shared'
const OPS = 'th_ops'
const POLL = { timeout: 20_000, interval: 100 }

/** The instance key of a daemon home (keys/primary.key is a JWK whose `d` is the seed). */
function keyOf(d: TestDaemon): Keypair {
  const jwk = JSON.parse(readFileSync(path.join(d.home, 'keys', 'primary.key'), 'utf8')) as { d: string }
  const kp = Keypair.fromSeed(Buffer.from(jwk.d, 'base64url'))
  if (kp.did !== d.did) throw new Error(`key file of ${d.home} does not hold ${d.did}`)
  return kp
}

/** GET /v1/sync/changes on `source` as `key` (a signed SPL-Proof); the raw answer text. */
async function changes(
  source: TestDaemon,
  key: Keypair,
  params: Record<string, string>,
): Promise<{ status: number; text: string; json: { records?: EnvelopeView[]; next_cursor?: string; code?: string; message?: string } }> {
  const url = new URL('/v1/sync/changes', source.url)
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v)
  const { token } = await createRequestProof(key, { method: 'GET', pathAndQuery: url.pathname + url.search, aud: source.did })
  const res = await fetch(url, { headers: { [PROOF_HEADER]: token } })
  const text = await res.text()
  return { status: res.status, text, json: JSON.parse(text) }
}

async function records(d: TestDaemon, thread: string): Promise<EnvelopeView[]> {
  return (await d.api.get<{ data: EnvelopeView[] }>(`/v1/threads/${thread}/records?limit=10000`)).data
}

const pairOf = (d: TestDaemon, id: string) => d.api.get<PairView>(`/v1/sync/pairs/${id}`)

/** Waits until the pair has completed `n` more pulls than `after`; returns the pair. */
async function morePulls(d: TestDaemon, id: string, after: PairView, n = 2): Promise<PairView> {
  await expect.poll(async () => (await pairOf(d, id)).totals.pulls, POLL).toBeGreaterThanOrEqual(after.totals.pulls + n)
  return pairOf(d, id)
}

async function subscriber(d: TestDaemon, did: string, thread: string): Promise<Subscriber | undefined> {
  const h = await d.api.get<{ subscribers: Subscriber[] }>('/v1/sync/health')
  return h.subscribers.find((s) => s.peer_did === did && s.thread_id === thread)
}

describe('consent across namespaces (issue 4), real daemons', () => {
  const live: Record<'a' | 'b' | 'c', TestDaemon | undefined> = { a: undefined, b: undefined, c: undefined }
  const need = (k: 'a' | 'b' | 'c'): TestDaemon => {
    const d = live[k]
    if (!d) throw new Error(`daemon ${k} did not start`)
    return d
  }
  let pairB = '' // B pulls SHARED from A
  let hidden1 = '' // records on A that B must never see before a grant
  let hidden2 = ''
  let stub = '' // emitted under the grant without L0
  const grants: string[] = [] // made on A, in order
  const SECRET1 = 'no-grant secret alpha 7f3a'
  const SECRET2 = 'no-grant secret beta 91c2'
  const STUB_TEXT = 'stub-only secret gamma 55e1'

  beforeAll(async () => {
    const started = await Promise.allSettled([
      TestDaemon.start({ init: ['--handle', 'alice'] }),
      TestDaemon.start({ init: ['--namespace', 'partner-team'] }),
      TestDaemon.start({ init: ['--namespace', 'acme/ops'] }),
    ])
    ;[live.a, live.b, live.c] = started.map((s) => (s.status === 'fulfilled' ? s.value : undefined))
    const failed = started.find((s) => s.status === 'rejected')
    if (failed) throw (failed as PromiseRejectedResult).reason
  })

  afterAll(async () => {
    await Promise.allSettled(Object.values(live).map((d) => d?.[Symbol.asyncDispose]()))
  })

  it('spl init --namespace sets the home namespace B and C pull as', async () => {
    const b = need('b')
    const c = need('c')
    expect((await b.api.get<{ namespace: string }>('/v1/identity')).namespace).toBe('partner-team')
    expect((await c.api.get<{ namespace: string }>('/v1/identity')).namespace).toBe('acme/ops')
  })

  it('no grant: B (bound to partner-team) pairs and runs, but receives nothing; the wire reveals neither bodies nor ids', async () => {
    const a = need('a')
    const b = need('b')
    hidden1 = await a.emit(SHARED, SECRET1)
    hidden2 = await a.emit(SHARED, SECRET2)
    expect(await a.threadRecordIds(SHARED)).toEqual([hidden1, hidden2])

    ok(await a.spl('consent', 'bind', b.did, '--namespace', 'partner-team'), 'spl consent bind B')
    // Poll mode: a long poll that meets only hidden records keeps waiting (nothing to answer), so
    // a poll pair is what shows each pull and its cursor promptly.
    const add = ok(
      await b.spl('fleet', 'sync', 'add', '--peer-url', a.url, '--mode', 'poll', '--interval', '300', '--json', a.did, SHARED),
      'spl fleet sync add',
    )
    pairB = (JSON.parse(add.stdout) as PairView).pair_id

    await expect.poll(async () => (await pairOf(b, pairB)).state, POLL).toBe('running')
    const p = await morePulls(b, pairB, await pairOf(b, pairB), 1)
    expect(p.state).toBe('running')
    expect(p.last_error).toBeNull()
    expect(p.totals.records_received).toBe(0)
    expect(p.cursor).not.toBeNull() // the cursor moved past the hidden records
    expect(await b.threadRecordIds(SHARED)).toEqual([])

    // What B is sent, byte for byte: nothing of the hidden records, not even their ids.
    const wire = await changes(a, keyOf(b), { thread: SHARED, target_namespace: 'partner-team' })
    expect(wire.status).toBe(200)
    expect(wire.json.records).toEqual([])
    for (const secret of [SECRET1, SECRET2, hidden1, hidden2]) expect(wire.text).not.toContain(secret)

    // A caller in default (a stranger under "open") does get them: the records exist and are served.
    const stranger = await changes(a, Keypair.generate(), { thread: SHARED })
    expect(stranger.json.records?.map((r) => r.id)).toEqual([hidden1, hidden2])
  })

  it('a grant without L0 reaches back: the records passed while hidden, and new ones, reach B as stubs (id kept, body {"redacted": true}, no sig); no cursor reset', async () => {
    const a = need('a')
    const b = need('b')
    const before = await pairOf(b, pairB)
    const g = JSON.parse(
      ok(await a.spl('consent', 'grant', '--to-namespace', 'partner-team', '--json'), 'spl consent grant').stdout,
    ) as GrantView
    expect(g.hash_levels).toEqual(['L1', 'L2', 'L3'])
    expect(g.status).toBe('active')
    grants.push(g.grant_id)

    // The grant reaches back (issue 13, docs/consent.md): what B's cursor passed while hidden
    // arrives as stubs, with no command on B and no cursor reset.
    await expect.poll(() => b.threadRecordIds(SHARED), POLL).toEqual([hidden1, hidden2])
    expect((await pairOf(b, pairB)).totals.cursor_resets).toBe(before.totals.cursor_resets)

    stub = await a.emit(SHARED, STUB_TEXT)
    await expect.poll(() => b.threadRecordIds(SHARED), POLL).toContain(stub)
    const all = await records(b, SHARED)
    expect(all.map((r) => [r.id, r.redacted])).toEqual([
      [hidden1, true],
      [hidden2, true],
      [stub, true],
    ])
    const env = all.find((r) => r.id === stub)
    expect(env?.id).toBe(stub)
    expect(env?.record.body).toEqual({ redacted: true })
    expect(env).not.toHaveProperty('sig')
    expect(env?.redacted).toBe(true)
    const original = (await records(a, SHARED)).find((r) => r.id === stub)!
    const { body: _b1, ...kept } = original.record
    const { body: _b2, ...got } = env!.record
    expect(got).toEqual(kept) // id, thread, actor, act, clock, parents, data_type travel as they are
    const pair = await pairOf(b, pairB)
    expect(pair.totals.cursor_resets).toBe(0)
    expect(pair.totals.rejected).toEqual({})

    const shown = ok(await b.spl('thread', 'records', SHARED), 'spl thread records')
    expect(shown.stdout).toContain(stub.slice(0, 12))
    expect(shown.stdout).toContain('[redacted]')
    expect(shown.stdout).not.toContain(STUB_TEXT)

    // On the wire the stub carries neither the body nor the signature.
    const wire = await changes(a, keyOf(b), { thread: SHARED, target_namespace: 'partner-team' })
    expect(wire.json.records?.map((r) => [r.id, r.redacted, r.record.body])).toEqual([
      [hidden1, true, { redacted: true }],
      [hidden2, true, { redacted: true }],
      [stub, true, { redacted: true }],
    ])
    expect(wire.text).not.toContain(STUB_TEXT)
    expect(wire.text).not.toContain(SECRET1)
    expect(wire.text).not.toContain('"sig"')
  })

  it('a stub B holds still passes B’s own consent filter when B serves it', async () => {
    const b = need('b')
    expect((await records(b, SHARED)).map((r) => [r.id, r.redacted])).toEqual([
      [hidden1, true],
      [hidden2, true],
      [stub, true],
    ])
    // The stub is stored on B in `default`; a caller B bound to another namespace has no grant
    // from default on B, so B must hide it, exactly as it would hide a full default record.
    const k = Keypair.generate()
    ok(await b.spl('consent', 'bind', k.did, '--namespace', 'other-team'), 'spl consent bind on B')
    const wire = await changes(b, k, { thread: SHARED, target_namespace: 'other-team' })
    expect(wire.status).toBe(200)
    expect(wire.text).not.toContain(stub)
    expect(wire.json.records).toEqual([])
  })

  it('a newer grant with L0: the full records replace the stubs by themselves, no reset', async () => {
    const a = need('a')
    const b = need('b')
    const before = await pairOf(b, pairB)
    const g = JSON.parse(
      ok(
        await a.spl('consent', 'grant', '--to-namespace', 'partner-team', '--hash-levels', 'L0,L1,L2,L3', '--json'),
        'spl consent grant L0',
      ).stdout,
    ) as GrantView
    expect(g.hash_levels).toEqual(['L0', 'L1', 'L2', 'L3'])
    grants.push(g.grant_id)

    // No reset: the grant reaches back and the stubs are replaced (issue 13).
    await expect
      .poll(async () => (await records(b, SHARED)).filter((r) => !r.redacted).map((r) => r.id), POLL)
      .toEqual(expect.arrayContaining([hidden1, hidden2, stub]))
    const got = await records(b, SHARED)
    expect(got).toHaveLength(3) // the stub was replaced, not duplicated
    const texts: Record<string, string> = { [hidden1]: SECRET1, [hidden2]: SECRET2, [stub]: STUB_TEXT }
    for (const env of got) {
      expect(env.redacted).toBeFalsy()
      expect(env.record.body).toEqual({ text: texts[env.id] })
      expect(typeof env.sig).toBe('string')
      const canonical = canonicalRecord(env.record as Parameters<typeof canonicalRecord>[0])
      expect(sha256Hex(canonical)).toBe(env.id)
      expect(verifyRecordSignature(a.did, canonical, env.sig!)).toBe(true)
    }
    const shown = ok(await b.spl('thread', 'records', SHARED), 'spl thread records').stdout
    expect(shown).not.toContain('[redacted]')
    expect(shown).toContain(STUB_TEXT)
    const pair = await pairOf(b, pairB)
    expect(pair.totals.rejected).toEqual({})
    expect(pair.totals.cursor_resets).toBe(before.totals.cursor_resets)
  })

  it('revoking both grants: new records stop reaching B, the cursor is not reset, delivered records stay', async () => {
    const a = need('a')
    const b = need('b')
    await expect.poll(async () => (await pairOf(b, pairB)).cursor, POLL).not.toBeNull()
    const before = await morePulls(b, pairB, await pairOf(b, pairB), 1)
    // No reset was needed above (issue 13); revoking adds none either.
    const resetsBefore = (await pairOf(b, pairB)).totals.cursor_resets
    expect(resetsBefore).toBe(0)
    for (const id of grants) {
      const r = ok(await a.spl('consent', 'revoke', id, '--json'), `spl consent revoke ${id}`)
      expect((JSON.parse(r.stdout) as GrantView).status).toBe('revoked')
    }
    const listed = JSON.parse(ok(await a.spl('consent', 'list', '--json'), 'spl consent list').stdout) as { grants: GrantView[] }
    expect(listed.grants).toEqual([])

    const afterRevoke = await morePulls(b, pairB, before)
    expect(afterRevoke.cursor).toBe(before.cursor)

    const late = await a.emit(SHARED, 'after revocation delta 0b7d')
    // The cursor moves past the hidden record (that is how B learns there was something)...
    await expect.poll(async () => (await pairOf(b, pairB)).cursor, POLL).not.toBe(before.cursor)
    await morePulls(b, pairB, await pairOf(b, pairB), 1)
    // ...but the record itself never arrives, and what B already holds stays.
    expect((await b.threadRecordIds(SHARED)).sort()).toEqual([hidden1, hidden2, stub].sort())
    const wire = await changes(a, keyOf(b), { thread: SHARED, target_namespace: 'partner-team' })
    expect(wire.json.records).toEqual([])
    expect(wire.text).not.toContain(late)
    expect((await pairOf(b, pairB)).totals.cursor_resets).toBe(resetsBefore)
  })

  it("A's /v1/sync/health counts what B was served, sent as stubs and hidden", async () => {
    const a = need('a')
    const b = need('b')
    const s = await subscriber(a, b.did, SHARED)
    expect(s).toBeDefined()
    expect(s!.served).toBeGreaterThanOrEqual(3)
    expect(s!.redacted).toBeGreaterThanOrEqual(1)
    expect(s!.hidden).toBeGreaterThanOrEqual(3)
  })

  it('a record in acme/ops is never served to an unbound caller claiming acme/ops, and is served once bound', async () => {
    const a = need('a')
    const c = need('c')
    ok(await a.spl('namespace', 'create', 'acme'), 'spl namespace create acme (A)')
    ok(await a.spl('namespace', 'create', 'acme/ops'), 'spl namespace create acme/ops (A)')
    const opsText = 'ops-only secret epsilon 3d9c'
    const ops = ok(await a.spl('intend', '--thread', OPS, '--namespace', 'acme/ops', opsText), 'spl intend acme/ops').stdout.trim()
    expect(ops).toMatch(/^[0-9a-f]{64}$/)
    // C keeps the same registry so its ingest accepts acme/ops records.
    for (const namespace of ['acme', 'acme/ops']) await c.api.post('/v1/namespaces', { namespace })

    // A stranger claiming acme/ops is refused, with the command that would allow it.
    const stranger = Keypair.generate()
    const denied = await changes(a, stranger, { thread: OPS, target_namespace: 'acme/ops' })
    expect(denied.status).toBe(403)
    expect(denied.json.code).toBe('NAMESPACE_CLAIM_DENIED')
    expect(denied.json.message).toContain(`spl consent bind ${stranger.did} --namespace acme/ops`)
    expect(denied.text).not.toContain(ops)
    expect(denied.text).not.toContain(opsText)
    // Reading as default, the same stranger gets nothing of acme/ops.
    const asDefault = await changes(a, stranger, { thread: OPS })
    expect(asDefault.status).toBe(200)
    expect(asDefault.json.records).toEqual([])
    expect(asDefault.text).not.toContain(ops)

    // C (home namespace acme/ops, not bound on A) pairs: the pair fails with the same refusal.
    const add = ok(await c.spl('fleet', 'sync', 'add', '--peer-url', a.url, '--json', a.did, OPS), 'spl fleet sync add (C)')
    const pairC = (JSON.parse(add.stdout) as PairView).pair_id
    await expect.poll(async () => (await pairOf(c, pairC)).state, POLL).toBe('failing')
    const failing = await pairOf(c, pairC)
    expect(failing.last_error?.code).toBe('HTTP_4XX')
    expect(failing.last_error?.message).toContain('NAMESPACE_CLAIM_DENIED')
    expect(failing.last_error?.message).toContain(`spl consent bind ${c.did} --namespace acme/ops`)
    expect(await c.threadRecordIds(OPS)).toEqual([])

    ok(await a.spl('consent', 'bind', c.did, '--namespace', 'acme/ops'), 'spl consent bind C')
    ok(await c.spl('fleet', 'sync', 'kick', pairC), 'spl fleet sync kick (C)')
    await expect.poll(() => c.threadRecordIds(OPS), POLL).toEqual([ops])
    const [env] = await records(c, OPS)
    expect(env?.record.body).toEqual({ text: opsText, namespace: 'acme/ops' })
    expect(env?.redacted).toBeFalsy()
    expect(typeof env?.sig).toBe('string')
    expect((await pairOf(c, pairC)).state).toBe('running')

    // A caller bound to acme/ops claiming something else is still refused.
    const other = await changes(a, keyOf(c), { thread: OPS, target_namespace: 'acme' })
    expect(other.status).toBe(403)
    expect(other.json.code).toBe('NAMESPACE_CLAIM_DENIED')
  })

  it('hidden records are counted for a caller even when its long poll ends empty', async () => {
    const a = need('a')
    const x = Keypair.generate()
    // A default caller: the acme/ops record in OPS is hidden from it.
    const first = await changes(a, x, { thread: OPS })
    expect(first.json.records).toEqual([])
    expect((await subscriber(a, x.did, OPS))?.hidden).toBe(1)
    const poll = await changes(a, x, { thread: OPS, feed: 'longpoll', timeout: '500' })
    expect(poll.json.records).toEqual([])
    expect((await subscriber(a, x.did, OPS))?.hidden).toBe(2)
  })

  it('th_consent is served to no peer (THREAD_PRIVATE); a grant made on another instance grants nothing on A', async () => {
    const a = need('a')
    const b = need('b')
    const forged = JSON.parse(
      ok(
        await b.spl('consent', 'grant', '--to-namespace', 'partner-team', '--hash-levels', 'L0,L1,L2,L3', '--json'),
        'spl consent grant on B',
      ).stdout,
    ) as GrantView
    // B's consent thread (its grants and bindings) is B's own configuration: A cannot pull it.
    const added = JSON.parse(
      ok(
        await a.spl('fleet', 'sync', 'add', '--peer-url', b.url, b.did, 'th_consent', '--json'),
        'spl fleet sync add th_consent (A from B)',
      ).stdout,
    ) as { pair_id: string }
    const consentPair = added.pair_id
    await expect.poll(async () => (await pairOf(a, consentPair)).last_error?.message ?? '', POLL).toContain('THREAD_PRIVATE')
    expect((await pairOf(a, consentPair)).state).toBe('failing')
    expect(await a.threadRecordIds('th_consent')).not.toContain(forged.record_id)
    // Paused, not removed: the pair keeps B known to A (serve_policy = "paired" below).
    ok(await a.spl('fleet', 'sync', 'pause', consentPair), 'spl fleet sync pause')

    const listed = JSON.parse(ok(await a.spl('consent', 'list', '--all', '--json'), 'spl consent list --all').stdout) as {
      grants: GrantView[]
      bindings: { did: string; namespace: string }[]
    }
    expect(listed.grants.map((g) => g.grant_id)).not.toContain(forged.grant_id)
    expect(listed.grants.map((g) => g.grant_id).sort()).toEqual([...grants].sort())
    // B's own binding record (made on B for another key, now also on A) binds nothing on A either.
    expect(listed.bindings.map((x) => `${x.did}=${x.namespace}`).sort()).toEqual(
      [`${b.did}=partner-team`, `${need('c').did}=acme/ops`].sort(),
    )

    // partner-team callers still get nothing of A's default records.
    const wire = await changes(a, keyOf(b), { thread: SHARED, target_namespace: 'partner-team' })
    expect(wire.status).toBe(200)
    expect(wire.json.records).toEqual([])
    expect(wire.text).not.toContain(SECRET1)
  })

  it('serve_policy = "paired": a stranger gets 403 PEER_NOT_PAIRED; bound and paired callers are still served', async () => {
    const a = need('a')
    const config = path.join(a.home, 'config.toml')
    const toml = readFileSync(config, 'utf8')
    expect(toml).toContain('serve_policy = "open"')
    writeFileSync(config, toml.replace('serve_policy = "open"', 'serve_policy = "paired"'))
    await a.stop()
    try {
      live.a = await a.restart()
    } catch (err) {
      live.a = a // disposed (and its home removed) in afterAll
      throw err
    }
    const a2 = need('a')

    const stranger = Keypair.generate()
    const tries: Record<string, string>[] = [{ thread: SHARED }, { thread: SHARED, target_namespace: 'default' }]
    for (const params of tries) {
      const r = await changes(a2, stranger, params)
      expect(r.status).toBe(403)
      expect(r.json.code).toBe('PEER_NOT_PAIRED')
      expect(r.text).not.toContain(hidden1)
    }
    // C is bound (to acme/ops): served.
    const c = need('c')
    const asC = await changes(a2, keyOf(c), { thread: OPS, target_namespace: 'acme/ops' })
    expect(asC.status).toBe(200)
    expect(asC.json.records).toHaveLength(1)
    // B, once unbound, is still known because A holds a pair towards it: it may read default only.
    const b = need('b')
    ok(await a2.spl('consent', 'unbind', b.did), 'spl consent unbind B')
    const asB = await changes(a2, keyOf(b), { thread: SHARED })
    expect(asB.status).toBe(200)
    expect(asB.json.records?.map((r) => r.id)).toContain(hidden1)
    const claim = await changes(a2, keyOf(b), { thread: SHARED, target_namespace: 'partner-team' })
    expect(claim.status).toBe(403)
    expect(claim.json.code).toBe('NAMESPACE_CLAIM_DENIED')
  })
})
