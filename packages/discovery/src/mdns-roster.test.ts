import { describe, expect, it } from 'vitest'
import { announceTtlSeconds, MDNS_MAX_TTL_S, MdnsRoster, type MdnsSighting } from './mdns-roster.js'

const DID_A = 'did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp'
const DID_B = 'did:key:z6MkjchhfUsD6mmvni8mCdXHw216Xrm9bQe2mBH1P5RDjVJG'
const INTERVAL = 30_000

function clock(start = 1_000_000) {
  const c = { t: start, now: () => c.t, advance: (ms: number) => void (c.t += ms) }
  return c
}

const sighting = (over: Partial<MdnsSighting> = {}): MdnsSighting => ({
  fqdn: 'alice._syncropel._tcp.local',
  did: DID_A,
  url: 'http://10.0.0.2:9100',
  handle: 'alice',
  namespace: 'default',
  ttlSeconds: announceTtlSeconds(INTERVAL),
  ...over,
})

describe('MdnsRoster', () => {
  it('our TTL is two announce intervals and a half', () => {
    expect(announceTtlSeconds(30_000)).toBe(75)
    expect(announceTtlSeconds(1000)).toBe(3)
    expect(announceTtlSeconds(100)).toBe(1)
  })

  it('keeps an entry through one missed announcement and the second, drops it after two', () => {
    const c = clock()
    const roster = new MdnsRoster({ now: c.now })
    expect(roster.see(sighting())).toBe('new')
    c.advance(INTERVAL) // first announcement missed
    expect(roster.expire()).toEqual([])
    c.advance(INTERVAL) // second one missed: still within the half-interval grace
    expect(roster.expire()).toEqual([])
    expect(roster.entries().map((e) => e.did)).toEqual([DID_A])
    c.advance(INTERVAL / 2)
    const gone = roster.expire()
    expect(gone.map((e) => e.did)).toEqual([DID_A])
    expect(roster.entries()).toEqual([])
  })

  it('each announcement restarts the clock', () => {
    const c = clock()
    const roster = new MdnsRoster({ now: c.now })
    roster.see(sighting())
    for (let i = 0; i < 5; i++) {
      c.advance(INTERVAL)
      expect(roster.see(sighting())).toBe('seen')
      expect(roster.expire()).toEqual([])
    }
    c.advance(2.5 * INTERVAL - 1)
    expect(roster.expire()).toEqual([])
    c.advance(1)
    expect(roster.expire()).toHaveLength(1)
  })

  it('a goodbye removes at once; one naming a DID removes only that DID under the name', () => {
    const c = clock()
    const roster = new MdnsRoster({ now: c.now })
    roster.see(sighting())
    roster.see(sighting({ did: DID_B, url: 'http://10.0.0.3:9100' }))
    roster.see(sighting({ fqdn: 'bob._syncropel._tcp.local', did: DID_B }))
    expect(roster.size).toBe(3)
    expect(roster.goodbye('ALICE._syncropel._tcp.local', DID_B).map((e) => e.url)).toEqual(['http://10.0.0.3:9100'])
    expect(roster.size).toBe(2)
    expect(roster.goodbye('alice._syncropel._tcp.local').map((e) => e.did)).toEqual([DID_A])
    expect(roster.entries().map((e) => e.fqdn)).toEqual(['bob._syncropel._tcp.local'])
    expect(roster.goodbye('nobody._syncropel._tcp.local')).toEqual([])
  })

  it('says when a known peer moved or renamed', () => {
    const roster = new MdnsRoster({ now: clock().now })
    expect(roster.see(sighting())).toBe('new')
    expect(roster.see(sighting())).toBe('seen')
    expect(roster.see(sighting({ url: 'http://10.0.0.9:9100' }))).toBe('changed')
    expect(roster.see(sighting({ url: 'http://10.0.0.9:9100', handle: 'al' }))).toBe('changed')
    expect(roster.entries()).toHaveLength(1)
  })

  it('clamps TTLs: a huge one does not pin an entry, zero is not read as forever', () => {
    const c = clock()
    const roster = new MdnsRoster({ now: c.now })
    roster.see(sighting({ ttlSeconds: 2 ** 31 }))
    roster.see(sighting({ fqdn: 'bob._syncropel._tcp.local', did: DID_B, ttlSeconds: 0 }))
    c.advance(1000)
    expect(roster.expire().map((e) => e.did)).toEqual([DID_B])
    c.advance(MDNS_MAX_TTL_S * 1000)
    expect(roster.expire().map((e) => e.did)).toEqual([DID_A])
  })

  it('asks again at 80 % of the TTL, once per sighting (peers that do not re-announce)', () => {
    const c = clock()
    const roster = new MdnsRoster({ now: c.now })
    roster.see(sighting({ ttlSeconds: 120 })) // avahi's SRV TTL
    c.advance(95_000)
    expect(roster.takeRefreshDue()).toBe(false)
    c.advance(1000)
    expect(roster.takeRefreshDue()).toBe(true)
    expect(roster.takeRefreshDue()).toBe(false)
    roster.see(sighting({ ttlSeconds: 120 })) // the answer to that query
    c.advance(96_000)
    expect(roster.takeRefreshDue()).toBe(true)
  })

  it('makes room by dropping the entry closest to expiry', () => {
    const c = clock()
    const roster = new MdnsRoster({ now: c.now, maxEntries: 2 })
    roster.see(sighting({ fqdn: 'a._syncropel._tcp.local', ttlSeconds: 10 }))
    roster.see(sighting({ fqdn: 'b._syncropel._tcp.local', ttlSeconds: 100 }))
    roster.see(sighting({ fqdn: 'c._syncropel._tcp.local', ttlSeconds: 50 }))
    expect(
      roster
        .entries()
        .map((e) => e.fqdn)
        .sort(),
    ).toEqual(['b._syncropel._tcp.local', 'c._syncropel._tcp.local'])
  })
})
