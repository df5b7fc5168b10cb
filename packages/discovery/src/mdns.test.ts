import { afterEach, describe, expect, it, vi } from 'vitest'
import { Discovery } from './discovery.js'
import { isMdnsSource, mdnsSource } from './mdns.js'
import { announcementRecords, buildAnnouncement, instanceName, MDNS_SERVICE_TYPE, parseTxt, readResponse } from './mdns-records.js'
import type { MdnsErrorListener, MdnsPacket, MdnsRecord, MdnsRemote, MdnsSocket } from './mdns-socket.js'
import type { DiscoveryLogger } from './source.js'

const DID_A = 'did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp'
const DID_B = 'did:key:z6MkjchhfUsD6mmvni8mCdXHw216Xrm9bQe2mBH1P5RDjVJG'
const DID_C = 'did:key:z6MknGc3ocHs3zdPiJbnaaqDi58NGb4pk1Sp9WxWufuXSdxf'

/** A LAN of fake sockets: what one sends, every socket (the sender too: multicast loopback) receives. */
class FakeLan {
  readonly sockets: FakeSocket[] = []
  readonly sent: { from: string; kind: 'query' | 'response'; packet: MdnsPacket; to?: MdnsRemote | undefined }[] = []
  failSends: Error | undefined

  socket(address: string): (options: unknown, onError: MdnsErrorListener) => FakeSocket {
    return (_options, onError) => {
      const s = new FakeSocket(this, address, onError)
      this.sockets.push(s)
      return s
    }
  }

  deliver(from: FakeSocket, kind: 'query' | 'response', packet: MdnsPacket, to?: MdnsRemote): void {
    if (from.closed) return
    this.sent.push({ from: from.address, kind, packet, to })
    // Through the wire format's plain data, as multicast-dns hands it over.
    const copy = JSON.parse(JSON.stringify(packet)) as MdnsPacket
    for (const r of [...(copy.answers ?? []), ...(copy.additionals ?? [])]) {
      if (r.type === 'TXT' && Array.isArray(r.data)) r.data = (r.data as { data: number[] }[]).map((b) => Buffer.from(b.data))
    }
    for (const s of this.sockets) {
      if (s.closed || (to && to.address !== s.address)) continue
      for (const l of s.listeners[kind]) l(copy, { address: from.address, port: 5353 })
    }
  }

  responsesFrom(address: string): MdnsPacket[] {
    return this.sent.filter((s) => s.from === address && s.kind === 'response').map((s) => s.packet)
  }
}

class FakeSocket implements MdnsSocket {
  closed = false
  readonly listeners: Record<'query' | 'response', ((p: MdnsPacket, r: MdnsRemote) => void)[]> = { query: [], response: [] }
  constructor(
    readonly lan: FakeLan,
    readonly address: string,
    readonly onError: MdnsErrorListener,
  ) {}
  query(packet: MdnsPacket, cb: (err?: Error | null) => void): void {
    if (this.lan.failSends) {
      cb(this.lan.failSends)
      return
    }
    this.lan.deliver(this, 'query', { ...packet, type: 'query' })
    cb(null)
  }
  respond(packet: MdnsPacket, to: MdnsRemote | undefined, cb: (err?: Error | null) => void): void {
    if (this.lan.failSends) {
      cb(this.lan.failSends)
      return
    }
    this.lan.deliver(this, 'response', { ...packet, type: 'response' }, to)
    cb(null)
  }
  onPacket(kind: 'query' | 'response', listener: (p: MdnsPacket, r: MdnsRemote) => void): void {
    this.listeners[kind].push(listener)
  }
  async close(): Promise<void> {
    this.closed = true
  }
}

function logger() {
  const lines: { level: string; msg: string; obj: object }[] = []
  const log: DiscoveryLogger = {
    info: (obj, msg = '') => void lines.push({ level: 'info', msg, obj }),
    warn: (obj, msg = '') => void lines.push({ level: 'warn', msg, obj }),
    debug: (obj, msg = '') => void lines.push({ level: 'debug', msg, obj }),
  }
  return { log, lines }
}

const listening = { port: 9100, url: 'http://127.0.0.1:9100' }
const stops: (() => Promise<void>)[] = []

afterEach(async () => {
  for (const s of stops.splice(0)) await s()
  vi.useRealTimers()
})

function source(lan: FakeLan, address: string, init: Partial<Parameters<typeof mdnsSource>[1]> & { did: string }) {
  const { log, lines } = logger()
  const src = mdnsSource(
    { logger: log, openSocket: lan.socket(address) },
    { namespace: 'default', listen: true, broadcast: false, intervalMs: 1000, ...init },
  )
  stops.push(() => src.stop())
  return { src, lines }
}

describe('announcement', () => {
  it('carries the TXT keys of SPEC 8, the SRV port and this machine as host', () => {
    const a = buildAnnouncement({ did: DID_A, handle: 'alice', namespace: 'acme' }, listening, () => ['10.0.0.2'])
    expect(a.instance).toBe('alice')
    expect(a.fqdn).toBe(`alice.${MDNS_SERVICE_TYPE}`)
    expect(a.port).toBe(9100)
    expect(a.host).toMatch(/^spl-[0-9a-f]{12}\.local$/)
    expect(a.addresses).toEqual(['10.0.0.2'])
    expect(a.txt).toEqual([`did=${DID_A}`, 'ns=acme', 'handle=alice', 'v=1', 'path=/'])
    const { answers } = announcementRecords(a, 75)
    expect(answers.map((r) => [r.name, r.type, r.ttl])).toEqual([
      [MDNS_SERVICE_TYPE, 'PTR', 75],
      [a.fqdn, 'SRV', 75],
      [a.fqdn, 'TXT', 75],
      [a.host, 'A', 75],
    ])
  })

  it('names an instance without a handle by its short DID, as one DNS label', () => {
    expect(instanceName(DID_A)).toBe('z6MkiTBz…ooWp')
    expect(instanceName(DID_A, 'a.b.c')).toBe('a-b-c')
    expect(Buffer.byteLength(instanceName(DID_A, 'é'.repeat(40)))).toBeLessThanOrEqual(63)
  })

  it('with advertise_url announces that URL (TXT url=) and its host and port in SRV', () => {
    const byName = buildAnnouncement({ did: DID_A, namespace: 'default', advertiseUrl: 'https://spl.example.com/' }, listening, () => [
      '10.0.0.2',
    ])
    expect(byName.host).toBe('spl.example.com')
    expect(byName.port).toBe(443)
    expect(byName.addresses).toEqual([])
    expect(byName.txt).toContain('url=https://spl.example.com')
    const byIp = buildAnnouncement({ did: DID_A, namespace: 'default', advertiseUrl: 'http://203.0.113.7:19100' }, listening, () => [
      '10.0.0.2',
    ])
    expect(byIp.port).toBe(19100)
    expect(byIp.addresses).toEqual(['203.0.113.7'])
    expect(byIp.txt).toContain('url=http://203.0.113.7:19100')
  })
})

describe('reading responses', () => {
  const from = { address: '10.0.0.2', port: 5353 }
  const records = (did: string, ttl = 75) =>
    announcementRecords(
      buildAnnouncement({ did, handle: 'alice', namespace: 'default' }, listening, () => []),
      ttl,
    )

  it('builds the URL from the sender and the SRV port', () => {
    const { sightings } = readResponse(records(DID_A), from)
    expect(sightings).toEqual([
      {
        fqdn: `alice.${MDNS_SERVICE_TYPE}`,
        did: DID_A,
        url: 'http://10.0.0.2:9100',
        handle: 'alice',
        namespace: 'default',
        ttlSeconds: 75,
      },
    ])
  })

  it('reads a goodbye (TTL 0) with the DID of its TXT record', () => {
    const { sightings, goodbyes } = readResponse(records(DID_A, 0), from)
    expect(sightings).toEqual([])
    expect(goodbyes).toEqual([{ fqdn: `alice.${MDNS_SERVICE_TYPE}`, did: DID_A }])
  })

  it('ignores instances without a did:key, of another version, or half described', () => {
    const r = records(DID_A)
    const withTxt = (txt: string[]): MdnsPacket => ({
      answers: r.answers.map((x) => (x.type === 'TXT' ? { ...x, data: txt.map((t) => Buffer.from(t)) } : x)),
    })
    expect(readResponse(withTxt(['ns=default', 'v=1']), from).sightings).toEqual([])
    expect(readResponse(withTxt(['did=did:web:example.com', 'v=1']), from).sightings).toEqual([])
    expect(readResponse(withTxt([`did=${DID_A}`, 'v=2']), from).sightings).toEqual([])
    expect(readResponse(withTxt([`did=${DID_A}`, `did=${DID_B}`]), from).sightings.map((s) => s.did)).toEqual([DID_A])
    expect(readResponse({ answers: r.answers.filter((x) => x.type !== 'SRV') }, from).sightings).toEqual([])
    expect(readResponse(withTxt([`did=${DID_A}`, 'url=javascript:alert(1)']), from).sightings[0]!.url).toBe('http://10.0.0.2:9100')
    // advertise_url on the other side: TXT url= wins over the sender's address; path= is kept without it.
    expect(readResponse(withTxt([`did=${DID_A}`, 'url=https://spl.example.com/base/']), from).sightings[0]!.url).toBe(
      'https://spl.example.com/base',
    )
    expect(readResponse(withTxt([`did=${DID_A}`, 'path=/spl/']), from).sightings[0]!.url).toBe('http://10.0.0.2:9100/spl')
    expect(readResponse(withTxt([`did=${DID_A}`, `handle=${'h'.repeat(5000)}`]), from).sightings[0]!.handle).toBeUndefined()
  })

  it('parses TXT strings as RFC 6763 says: key=value, case-blind keys, the first wins', () => {
    const txt = parseTxt([Buffer.from('DID=x'), Buffer.from('did=y'), Buffer.from('flag'), Buffer.from('=z'), Buffer.from('path=/a=b')])
    expect([...txt]).toEqual([
      ['did', 'x'],
      ['path', '/a=b'],
    ])
  })
})

describe('mdnsSource over a fake LAN', () => {
  it('a listener finds a broadcaster after one query, verified by Discovery only against the manifest', async () => {
    const lan = new FakeLan()
    const a = source(lan, '10.0.0.1', { did: DID_A, handle: 'alice', broadcast: true })
    const b = source(lan, '10.0.0.2', { did: DID_B })
    await a.src.start(listening)
    await b.src.start({ port: 9200, url: 'http://127.0.0.1:9200' })
    const peers = await b.src.find({ timeoutMs: 5000 })
    expect(peers).toEqual([
      expect.objectContaining({ did: DID_A, url: 'http://10.0.0.1:9100', handle: 'alice', namespace: 'default', source: 'mdns' }),
    ])
    // The listener does not list itself even though its own packets loop back.
    expect((await a.src.find({ timeoutMs: 0 })).map((p) => p.did)).toEqual([])
    expect(isMdnsSource(b.src)).toBe(true)
  })

  it('answers a PTR query with SRV, TXT and A as additionals, and nothing for other services', async () => {
    const lan = new FakeLan()
    const a = source(lan, '10.0.0.1', { did: DID_A, broadcast: true })
    await a.src.start(listening)
    const asker = lan.socket('10.0.0.9')({}, () => {})
    const before = lan.responsesFrom('10.0.0.1').length
    asker.query({ questions: [{ name: '_other._tcp.local', type: 'PTR' }] }, () => {})
    expect(lan.responsesFrom('10.0.0.1')).toHaveLength(before)
    asker.query({ questions: [{ name: MDNS_SERVICE_TYPE, type: 'PTR' }] }, () => {})
    const answer = lan.responsesFrom('10.0.0.1').at(-1)!
    expect(answer.answers!.map((r: MdnsRecord) => r.type)).toEqual(['PTR'])
    expect(answer.additionals!.map((r: MdnsRecord) => r.type)).toEqual(expect.arrayContaining(['SRV', 'TXT']))
    expect(parseTxt(answer.additionals!.find((r) => r.type === 'TXT')!.data).get('did')).toBe(DID_A)
  })

  it('answers a legacy unicast querier (not from port 5353) directly, with its question and id', async () => {
    const lan = new FakeLan()
    const a = source(lan, '10.0.0.1', { did: DID_A, handle: 'alice', broadcast: true })
    await a.src.start(listening)
    const sock = lan.sockets.find((s) => s.address === '10.0.0.1')!
    const question = { name: `alice.${MDNS_SERVICE_TYPE}`, type: 'SRV' }
    for (const l of sock.listeners.query) l({ id: 4242, type: 'query', questions: [question] }, { address: '10.0.0.9', port: 40000 })
    const sent = lan.sent.at(-1)!
    expect(sent.to).toEqual({ address: '10.0.0.9', port: 40000 })
    expect(sent.packet).toMatchObject({ id: 4242, questions: [question] })
    expect(sent.packet.answers!.map((r) => r.type)).toEqual(['SRV'])
  })

  it('re-announces when it sees a new peer', async () => {
    vi.useFakeTimers()
    const lan = new FakeLan()
    const a = source(lan, '10.0.0.1', { did: DID_A, broadcast: true, intervalMs: 60_000 })
    await a.src.start(listening)
    const announcedByA = () =>
      lan.responsesFrom('10.0.0.1').filter((p) => p.answers?.some((r) => r.type === 'TXT' && (r.ttl ?? 0) > 0)).length
    await vi.advanceTimersByTimeAsync(5000)
    expect(announcedByA()).toBe(2) // at start and a second later (RFC 6762 8.3); the next is due at 60 s
    const b = source(lan, '10.0.0.2', { did: DID_B, broadcast: true, intervalMs: 60_000 })
    await b.src.start({ port: 9200, url: 'http://127.0.0.1:9200' })
    await vi.advanceTimersByTimeAsync(10)
    expect(announcedByA()).toBe(3)
    // B was new once: its later announcements do not make A announce again.
    await vi.advanceTimersByTimeAsync(5000)
    expect(announcedByA()).toBe(3)
  })

  it('says goodbye on stop: listeners drop it at once', async () => {
    const lan = new FakeLan()
    const a = source(lan, '10.0.0.1', { did: DID_A, broadcast: true })
    const b = source(lan, '10.0.0.2', { did: DID_B })
    const gone: string[] = []
    b.src.on('gone', (did) => gone.push(did))
    await a.src.start(listening)
    await b.src.start({ port: 9200, url: 'http://127.0.0.1:9200' })
    expect(b.src.roster().map((p) => p.did)).toEqual([DID_A])
    await a.src.stop()
    const goodbye = lan.responsesFrom('10.0.0.1').at(-1)!
    expect(goodbye.answers!.length).toBeGreaterThan(0)
    expect(goodbye.answers!.every((r) => r.ttl === 0)).toBe(true)
    expect(b.src.roster()).toEqual([])
    expect(gone).toEqual([DID_A])
  })

  it('a killed broadcaster expires after two missed announcements', async () => {
    vi.useFakeTimers()
    const lan = new FakeLan()
    const a = source(lan, '10.0.0.1', { did: DID_A, broadcast: true, intervalMs: 10_000 })
    const b = source(lan, '10.0.0.2', { did: DID_B, intervalMs: 10_000 })
    await a.src.start(listening)
    await b.src.start({ port: 9200, url: 'http://127.0.0.1:9200' })
    await vi.advanceTimersByTimeAsync(30_000) // A announced at 0, 1, 10, 20 and 30 s
    expect(b.src.roster().map((p) => p.did)).toEqual([DID_A])
    // Killed: its socket goes silent (sends nothing, not even a goodbye).
    for (const s of lan.sockets.filter((s) => s.address === '10.0.0.1')) s.closed = true
    await vi.advanceTimersByTimeAsync(22_000) // the announcements of 40 and 50 s are missing
    expect(b.src.roster().map((p) => p.did)).toEqual([DID_A])
    await vi.advanceTimersByTimeAsync(3000) // 2.5 intervals after the last one
    expect(b.src.roster()).toEqual([])
  })

  it('an announcer whose peer said goodbye forgets it at once; a stranger cannot say goodbye for another DID', async () => {
    const lan = new FakeLan()
    const a = source(lan, '10.0.0.1', { did: DID_A, handle: 'alice', broadcast: true })
    const b = source(lan, '10.0.0.2', { did: DID_B })
    await a.src.start(listening)
    await b.src.start({ port: 9200, url: '' })
    await b.src.find({ timeoutMs: 2000 })
    const mallory = lan.socket('10.0.0.66')({}, () => {})
    const forged = announcementRecords(
      buildAnnouncement({ did: DID_C, handle: 'alice', namespace: 'default' }, listening, () => []),
      0,
    )
    mallory.respond(forged, undefined, () => {})
    expect(b.src.roster().map((p) => p.did)).toEqual([DID_A])
  })

  it('a forged announcement (another DID in TXT, the attacker URL) is listed but never verified', async () => {
    const lan = new FakeLan()
    const b = source(lan, '10.0.0.2', { did: DID_B })
    const verified: string[] = []
    const discovery = new Discovery({
      sources: [b.src],
      logger: logger().log,
      // Only the real A answers at 10.0.0.1 with a manifest signed by DID_A.
      verify: async (url, did) => {
        if (url === 'http://10.0.0.1:9100' && did === DID_A) {
          verified.push(url)
          return { did, expired: false } as never
        }
        throw Object.assign(new Error('the manifest is signed by someone else'), { code: 'MANIFEST_DID_MISMATCH' })
      },
    })
    await b.src.start({ port: 9200, url: '' })
    const mallory = lan.socket('10.0.0.66')({}, () => {})
    mallory.respond(
      announcementRecords(
        buildAnnouncement({ did: DID_A, handle: 'alice', namespace: 'default' }, listening, () => []),
        75,
      ),
      undefined,
      () => {},
    )
    const result = await discovery.discover({ timeoutMs: 500 }, ['mdns'])
    expect(result.peers).toEqual([expect.objectContaining({ did: DID_A, url: 'http://10.0.0.66:9100', verified: false })])
    expect(verified).toEqual([])
  })

  it('a socket that cannot bind is logged with the cause and never thrown; find says why', async () => {
    const { log, lines } = logger()
    const src = mdnsSource(
      {
        logger: log,
        openSocket: (_o, onError) => {
          const s = new FakeSocket(new FakeLan(), '10.0.0.1', onError)
          onError(Object.assign(new Error('bind EADDRINUSE 0.0.0.0:5353'), { code: 'EADDRINUSE' }), true)
          return s
        },
      },
      { did: DID_A, namespace: 'default', listen: true, broadcast: true },
    )
    stops.push(() => src.stop())
    await src.start(listening)
    expect(lines.some((l) => l.level === 'warn' && l.msg.includes('EADDRINUSE'))).toBe(true)
    await expect(src.find({ timeoutMs: 100 })).rejects.toMatchObject({
      code: 'MDNS_UNAVAILABLE',
      message: expect.stringContaining('EADDRINUSE'),
    })
    expect(src.status().error).toContain('EADDRINUSE')
    await src.stop()
  })

  it('a socket that throws while opening is logged, not fatal', async () => {
    const { log, lines } = logger()
    const src = mdnsSource(
      {
        logger: log,
        openSocket: () => {
          throw new Error('no multicast here')
        },
      },
      { did: DID_A, namespace: 'default', listen: true, broadcast: false },
    )
    await src.start(listening)
    await src.stop()
    expect(lines.find((l) => l.level === 'warn')?.msg).toContain('no multicast here')
  })

  it('send errors are logged with their cause: the first as a warning, repeats at debug', async () => {
    const lan = new FakeLan()
    lan.failSends = Object.assign(new Error('send ENETUNREACH 224.0.0.251:5353'), { code: 'ENETUNREACH' })
    const a = source(lan, '10.0.0.1', { did: DID_A, broadcast: true })
    await a.src.start(listening)
    await a.src.find({ timeoutMs: 0 })
    const warns = a.lines.filter((l) => l.level === 'warn')
    expect(warns).toHaveLength(1)
    expect(warns[0]!.msg).toMatch(/ENETUNREACH.*multicast route/)
    expect(a.lines.some((l) => l.level === 'debug' && l.msg.includes('ENETUNREACH'))).toBe(true)
  })

  it('two announcers without listeners announce once more for each other, not back and forth', async () => {
    vi.useFakeTimers()
    const lan = new FakeLan()
    const a = source(lan, '10.0.0.1', { did: DID_A, broadcast: true, listen: false, intervalMs: 60_000 })
    const b = source(lan, '10.0.0.2', { did: DID_B, broadcast: true, listen: false, intervalMs: 60_000 })
    await a.src.start(listening)
    await vi.advanceTimersByTimeAsync(5000)
    await b.src.start(listening)
    await vi.advanceTimersByTimeAsync(5000)
    const count = (addr: string) => lan.responsesFrom(addr).length
    const [ca, cb] = [count('10.0.0.1'), count('10.0.0.2')]
    expect(ca).toBe(3) // at start, a second later, and once for B
    await vi.advanceTimersByTimeAsync(20_000)
    expect([count('10.0.0.1'), count('10.0.0.2')]).toEqual([ca, cb])
  })

  it('with the listener off, find says so and the roster stays empty', async () => {
    const lan = new FakeLan()
    const a = source(lan, '10.0.0.1', { did: DID_A, broadcast: true, listen: false })
    const b = source(lan, '10.0.0.2', { did: DID_B, broadcast: true })
    await b.src.start(listening)
    await a.src.start(listening)
    await expect(a.src.find({ timeoutMs: 10 })).rejects.toMatchObject({ code: 'DISCOVERY_METHOD_OFF' })
    expect(a.src.roster()).toEqual([])
  })
})
