import { Keypair } from '@spl/identity'
import { describe, expect, it } from 'vitest'
import { canonicalRecord, sha256Hex } from './canonical.js'
import { checkEnvelope } from './ingest.js'
import { rowToEnvelope, storedRowOf } from './rows.js'

// Bodies are data: a `__proto__` key (top level or nested) is a key like any other. The record is
// made by hand from JSON text, as another implementation would send it, not through signRecord.

const key = Keypair.fromSeed(Uint8Array.from({ length: 32 }, (_, i) => 200 - i))

/** The canonical text of a record whose body is `bodyJson`, written by hand (keys in JCS order). */
function handMade(bodyJson: string) {
  const canonical =
    `{"act":"KNOW","actor":"${key.did}","body":${bodyJson},"clock":0,"data_type":"SCALAR",` + `"parents":[],"thread":"th_proto"}`
  const id = sha256Hex(canonical)
  const sig = Buffer.from(key.sign(Buffer.from(canonical, 'utf8'))).toString('base64url')
  // The envelope as it comes off the wire: JSON text, parsed.
  const wire = `{"id":"${id}","record":${canonical},"sig":"${sig}","stored_at":1}`
  return { canonical, id, raw: JSON.parse(wire) as unknown }
}

describe('a __proto__ key in a body survives parsing, canonicalizing and storage', () => {
  for (const [what, body] of [
    ['top level', '{"__proto__":{"admin":true},"text":"hi"}'],
    ['nested', '{"a":{"__proto__":{"x":1},"b":[{"__proto__":null}]},"text":"hi"}'],
    ['a primitive value', '{"__proto__":"just a string"}'],
  ] as const) {
    it(`${what}: the record verifies, hashes to its id and keeps the key`, () => {
      const { canonical, id, raw } = handMade(body)
      const c = checkEnvelope(raw, 'th_proto')
      expect(c.ok ? 'OK' : `${c.code}: ${c.message}`).toBe('OK')
      if (!c.ok) return
      expect(c.id).toBe(id)
      expect(c.canonical).toBe(canonical)
      expect(canonicalRecord(c.record)).toBe(canonical)
      expect(Object.hasOwn(c.record.body, '__proto__') || what === 'nested').toBe(true)
      // Stored and read back: the same text, and the key still an own property.
      const row = { ...storedRowOf(c, { origin: null, now: 5 }), seq: 1 }
      expect(row.record).toBe(canonical)
      const back = rowToEnvelope(row)
      expect(canonicalRecord(back.record)).toBe(canonical)
      expect(Object.getPrototypeOf(back.record.body)).toBe(Object.prototype)
    })
  }
})
