/**
 * Writes test/vectors/records.json: records → canonical string → id → sig for a fixed seed, and
 * envelopes with the verdict the ingest checks must give them (SPEC 2.2, 2.4).
 *
 * The vectors are a contract: regenerate only on purpose, and review the diff by hand.
 *   cd packages/records && npx tsc --build \
 *     && npx tsc --target es2022 --module nodenext --moduleResolution nodenext --types node \
 *          --skipLibCheck --rootDir . --outDir .vectors-gen test/make-vectors.ts \
 *     && node .vectors-gen/test/make-vectors.js; rm -rf .vectors-gen
 * src/vectors.test.ts recomputes every field with independent code (json-canonicalize, noble).
 */
import { writeFileSync } from 'node:fs'
import { Keypair } from '@spl/identity'
import { canonicalRecord, type RecordFields, recordIdOf, signRecord } from '@spl/records'

const SEED = Uint8Array.from({ length: 32 }, (_, i) => i) // 0x00..0x1f
const OTHER_SEED = Uint8Array.from({ length: 32 }, (_, i) => 0x20 + i) // 0x20..0x3f
const STORED_AT = 1_700_000_000_000
// JSON.stringify cannot write -0: it is written as a sentinel, then swapped for a literal -0.
const NEG_ZERO = '__NEGATIVE_ZERO__'

const key = Keypair.fromSeed(SEED)
const other = Keypair.fromSeed(OTHER_SEED)

function rec(fields: Partial<RecordFields> & { body: Record<string, unknown> }): RecordFields {
  return {
    parents: [],
    thread: 'th_vectors',
    actor: key.did,
    act: 'DO',
    clock: 0,
    data_type: 'SCALAR',
    ...fields,
  }
}

const valid: { name: string; note: string; record: RecordFields }[] = []
function add(name: string, note: string, record: RecordFields): RecordFields {
  valid.push({ name, note, record })
  return record
}

const root = add('empty-body-root', 'a root: no parents, empty body, clock 0', rec({ act: 'INTEND', body: {} }))
const text = add(
  'text-body',
  'one parent, a plain text body',
  rec({ parents: [recordIdOf(root)], body: { text: 'hello, world' }, clock: 1 }),
)
add(
  'unicode-strings',
  'non-BMP characters, NFC vs NFD kept apart (no normalization), escapes: only " \\ and C0 controls are escaped; DEL, U+2028/9 and / are not',
  rec({
    act: 'KNOW',
    clock: 2,
    body: {
      text: 'héllo wörld — ☃ 😀 𝄞 👩‍👩‍👧',
      nfc: '\u00e9',
      nfd: 'e\u0301',
      escapes: '"\\/\b\f\n\r\t\u0000\u0001\u001f\u007f\u2028\u2029',
    },
  }),
)
add(
  'unicode-key-order',
  'keys sorted by UTF-16 code units (RFC 8785 3.2.3): U+1F600 (D83D DE00) sorts before U+FB01 and U+FB33',
  rec({
    act: 'LEARN',
    clock: 3,
    body: {
      '\u20ac': 'Euro Sign',
      '\r': 'Carriage Return',
      '\ufb33': 'Hebrew Letter Dalet With Dagesh',
      '1': 'One',
      '\ud83d\ude00': 'Emoji: Grinning Face',
      '\u0080': 'Control',
      '\u00f6': 'Latin Small Letter O With Diaeresis',
      '\ufb01': 'Latin Small Ligature Fi',
      '': 'empty key',
    },
  }),
)
add(
  'numbers',
  'ECMAScript number serialization: 1e21 → 1e+21, -0 → 0, 1e-7 → 1e-7, 1e-6 → 0.000001, large ints',
  rec({
    act: 'MAP',
    clock: 4,
    data_type: 'DISTRIBUTION',
    body: {
      numbers: [
        1e21,
        1e20,
        0.1,
        -0,
        1e-7,
        1e-6,
        0.1 + 0.2,
        9007199254740991,
        -9007199254740991,
        2 ** 64,
        5e-324,
        1.7976931348623157e308,
        333333333.3333333,
        4.5,
        0.002,
        1e30,
        -1.5e-10,
      ],
      zero: 0,
      negative_zero: -0,
      big_int_as_string: '123456789012345678901234567890',
    },
  }),
)
const nested = add(
  'nested',
  'nested objects and arrays, empty containers, literals, body.namespace',
  rec({
    clock: 5,
    body: {
      namespace: 'team',
      z: { b: { c: [1, { z: 1, a: [true, false, null] }, []] }, a: {} },
      list: [[], [[]], {}, 'x', 0],
    },
  }),
)
add('parents-sorted', 'three parents in ascending order; judged_by is not hashed', {
  ...rec({ clock: 6, data_type: 'REFERENCE', body: { ref: 'all three' } }),
  parents: [recordIdOf(root), recordIdOf(text), recordIdOf(nested)].sort(),
  judged_by: recordIdOf(root),
})
add('max-clock', 'clock 2^53-1, the largest allowed', rec({ act: 'CALL', clock: 9007199254740991, data_type: 'VOID', body: { n: 1 } }))
add('judged-by-null', 'judged_by: null hashes like an absent judged_by', {
  ...rec({ act: 'GET', clock: 7, data_type: 'FORMULA', body: { f: 'x+1' } }),
  judged_by: null,
})
add(
  'long-thread',
  'a thread id of 200 characters after th_, using every allowed punctuation',
  rec({ act: 'PUT', thread: `th_${'Aa0_.:-'.repeat(28)}abcd`, body: { k: 'v' } }),
)

const validOut = valid.map(({ name, note, record }) => {
  const s = signRecord(key, record)
  return { name, note, record, canonical: s.canonical, id: s.id, sig: s.sig }
})

// ---- envelopes and the verdict of the ingest checks --------------------------------------------
type Verdict = 'OK' | 'INVALID_RECORD' | 'THREAD_MISMATCH' | 'HASH_MISMATCH' | 'UNVERIFIABLE_ACTOR' | 'SIGNATURE_INVALID'
const envelopes: { name: string; expected_thread: string | null; expect: Verdict; envelope: unknown }[] = []
function env(name: string, expect: Verdict, envelope: unknown, expectedThread: string | null = null): void {
  envelopes.push({ name, expected_thread: expectedThread, expect, envelope })
}

const base = signRecord(key, text)
const good = { id: base.id, record: base.record, sig: base.sig, stored_at: STORED_AT }
const withRecord = (patch: Record<string, unknown>) => ({ ...good, record: { ...base.record, ...patch } })
/** An envelope whose id matches its (edited) record, so only the later checks can fail. */
const rehashed = (patch: Record<string, unknown>) => {
  const record = { ...base.record, ...patch } as RecordFields
  return { ...good, id: recordIdOf(record), record }
}
const flipChar = (s: string, i: number) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1)

env('valid', 'OK', good)
env('valid-for-its-pair', 'OK', good, 'th_vectors')
env('valid-without-stored_at', 'OK', { id: good.id, record: good.record, sig: good.sig })
env('valid-fields-in-other-order', 'OK', {
  sig: good.sig,
  record: {
    data_type: base.record.data_type,
    clock: base.record.clock,
    body: base.record.body,
    act: base.record.act,
    actor: base.record.actor,
    thread: base.record.thread,
    parents: base.record.parents,
  },
  id: good.id,
})
env('judged_by-changed-keeps-id-and-sig', 'OK', withRecord({ judged_by: recordIdOf(root) }))
env('redacted-stub', 'OK', {
  id: good.id,
  record: { ...base.record, body: { redacted: true } },
  stored_at: STORED_AT,
  redacted: true,
})

env('envelope-not-an-object', 'INVALID_RECORD', 'not an envelope')
env('envelope-null', 'INVALID_RECORD', null)
env('id-uppercase-hex', 'INVALID_RECORD', { ...good, id: good.id.toUpperCase() })
env('id-prefixed', 'INVALID_RECORD', { ...good, id: `sha256:${good.id}` })
env('id-missing', 'INVALID_RECORD', { record: good.record, sig: good.sig })
env('record-not-an-object', 'INVALID_RECORD', { ...good, record: [] })
env('stored_at-negative', 'INVALID_RECORD', { ...good, stored_at: -1 })
env('sig-missing', 'INVALID_RECORD', { id: good.id, record: good.record })
env('sig-too-short', 'INVALID_RECORD', { ...good, sig: good.sig.slice(1) })
env('sig-padded', 'INVALID_RECORD', { ...good, sig: `${good.sig}==` })
env('extra-field', 'INVALID_RECORD', withRecord({ extra: 1 }))
env('missing-field-data_type', 'INVALID_RECORD', {
  ...good,
  record: Object.fromEntries(Object.entries(base.record).filter(([k]) => k !== 'data_type')),
})
env('parents-unsorted', 'INVALID_RECORD', withRecord({ parents: [recordIdOf(text), recordIdOf(root)].sort().reverse() }))
env('parents-duplicate', 'INVALID_RECORD', withRecord({ parents: [recordIdOf(root), recordIdOf(root)] }))
env('parent-not-an-id', 'INVALID_RECORD', withRecord({ parents: ['abc'] }))
env('thread-without-prefix', 'INVALID_RECORD', withRecord({ thread: 'vectors' }))
env('thread-empty-name', 'INVALID_RECORD', withRecord({ thread: 'th_' }))
env('thread-with-space', 'INVALID_RECORD', withRecord({ thread: 'th_a b' }))
env('thread-too-long', 'INVALID_RECORD', withRecord({ thread: `th_${'a'.repeat(201)}` }))
env('act-unknown', 'INVALID_RECORD', withRecord({ act: 'DELETE' }))
env('act-lowercase', 'INVALID_RECORD', withRecord({ act: 'do' }))
env('data_type-unknown', 'INVALID_RECORD', withRecord({ data_type: 'BLOB' }))
env('clock-negative', 'INVALID_RECORD', withRecord({ clock: -1 }))
env('clock-2^53', 'INVALID_RECORD', withRecord({ clock: 9007199254740992 }))
env('clock-fraction', 'INVALID_RECORD', withRecord({ clock: 1.5 }))
env('clock-string', 'INVALID_RECORD', withRecord({ clock: '1' }))
env('body-array', 'INVALID_RECORD', withRecord({ body: ['text'] }))
env('body-null', 'INVALID_RECORD', withRecord({ body: null }))
env('body-string', 'INVALID_RECORD', withRecord({ body: 'text' }))
env('body-lone-high-surrogate', 'INVALID_RECORD', withRecord({ body: { text: 'a\ud800b' } }))
env('body-lone-low-surrogate-nested', 'INVALID_RECORD', withRecord({ body: { a: [{ b: '\udc00' }] } }))
env('body-lone-surrogate-in-key', 'INVALID_RECORD', withRecord({ body: { '\ud83d': 1 } }))
env('actor-too-short', 'INVALID_RECORD', withRecord({ actor: 'did:x' }))
env('judged_by-not-an-id', 'INVALID_RECORD', withRecord({ judged_by: 'nope' }))

env('thread-mismatch', 'THREAD_MISMATCH', good, 'th_other')
env('thread-mismatch-before-hash-mismatch', 'THREAD_MISMATCH', withRecord({ body: { text: 'edited' } }), 'th_other')

env('body-edited-after-signing', 'HASH_MISMATCH', withRecord({ body: { text: 'hello, world!' } }))
env('clock-edited-after-signing', 'HASH_MISMATCH', withRecord({ clock: 2 }))
env('parents-edited-after-signing', 'HASH_MISMATCH', withRecord({ parents: [] }))
env('id-of-another-record', 'HASH_MISMATCH', { ...good, id: recordIdOf(root) })
env('hash-mismatch-before-unverifiable-actor', 'HASH_MISMATCH', withRecord({ actor: 'did:web:example.com' }))

env('actor-did-web', 'UNVERIFIABLE_ACTOR', rehashed({ actor: 'did:web:example.com' }))
env('actor-secp256k1-did-key', 'UNVERIFIABLE_ACTOR', rehashed({ actor: 'did:key:zQ3sh4KKsL4FRrwqKevHLLzjrFAG467gJuX83XU2gJQ7YyV7e' }))
env('actor-did-key-bad-base58', 'UNVERIFIABLE_ACTOR', rehashed({ actor: `did:key:z6Mk${'0OIl'.repeat(11)}` }))
env('unverifiable-actor-before-signature', 'UNVERIFIABLE_ACTOR', {
  ...rehashed({ actor: 'did:web:example.com' }),
  sig: 'A'.repeat(86),
})

env('sig-by-another-key', 'SIGNATURE_INVALID', {
  ...good,
  sig: signRecord(other, { ...text, actor: other.did }).sig,
})
env('sig-of-another-record', 'SIGNATURE_INVALID', { ...good, sig: signRecord(key, root).sig })
env('sig-one-char-changed', 'SIGNATURE_INVALID', { ...good, sig: flipChar(good.sig, 10) })
env('sig-all-zero', 'SIGNATURE_INVALID', { ...good, sig: 'A'.repeat(86) })
env('sig-standard-base64-alphabet', 'INVALID_RECORD', {
  ...good,
  sig: Buffer.from(good.sig, 'base64url').toString('base64').replace(/=+$/, ''),
})
env('sig-non-canonical-trailing-bits', 'SIGNATURE_INVALID', {
  ...good,
  // 86 characters carry 516 bits for 512: setting a spare low bit gives the same bytes, a different string.
  sig:
    good.sig.slice(0, 85) +
    'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'[
      'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'.indexOf(good.sig[85]!) ^ 1
    ],
})
env('actor-swapped-sig-kept', 'SIGNATURE_INVALID', rehashed({ actor: other.did }))

const out = {
  description:
    'spl record vectors (SPEC 2.2/2.4). canonical = RFC 8785 of the seven hashed fields; id = hex SHA-256 of its UTF-8 bytes; sig = Ed25519 (seed below) over the same bytes, base64url without padding. envelopes: expect is the first failing check (precheck, then signature) or OK.',
  seed_hex: Buffer.from(SEED).toString('hex'),
  actor: key.did,
  public_key_hex: Buffer.from(key.publicKey).toString('hex'),
  other_seed_hex: Buffer.from(OTHER_SEED).toString('hex'),
  other_actor: other.did,
  records: validOut,
  envelopes,
}
// Sanity: every canonical string here came from the code under test; the test re-derives them.
for (const v of validOut) if (canonicalRecord(v.record) !== v.canonical) throw new Error(v.name)

const json = JSON.stringify(out, (_k, v: unknown) => (Object.is(v, -0) ? NEG_ZERO : v), 2)
const text_ = `${json.replaceAll(`"${NEG_ZERO}"`, '-0')}\n`
writeFileSync('test/vectors/records.json', text_)
console.log(`wrote ${validOut.length} records and ${envelopes.length} envelopes`)
