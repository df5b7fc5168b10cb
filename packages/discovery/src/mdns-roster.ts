// The mDNS listener's own roster (SPEC 8): bonjour-service never expires what it saw, so the
// source keeps every instance here with the TTL it was announced with. Our announcer sends
// TTL = 2.5 announce intervals, so an entry goes after two missed announcements (the half
// interval absorbs jitter); a goodbye (TTL 0) removes it at once. Pure: time comes from `now`.

/** One instance as one mDNS response described it. */
export interface MdnsSighting {
  /** The service instance's full name (`alice._syncropel._tcp.local`). */
  fqdn: string
  /** TXT `did=`: a claim until the manifest at `url` is checked. */
  did: string
  url: string
  handle?: string | undefined
  namespace?: string | undefined
  /** The TTL the records came with, in seconds (> 0). */
  ttlSeconds: number
}

export interface MdnsRosterEntry extends MdnsSighting {
  firstSeen: number
  lastSeen: number
  /** Gone when the clock reaches this without a new announcement. */
  expiresAt: number
  /** At 80 % of the TTL the listener asks again (RFC 6762 5.2: peers that do not re-announce, avahi). */
  refreshAt: number
  refreshAsked: boolean
}

/** What one sighting did to the roster. */
export type RosterChange = 'new' | 'changed' | 'seen'

/** TTLs outside this range are clamped: a day-long TTL from a stranger does not pin an entry. */
export const MDNS_MIN_TTL_S = 1
export const MDNS_MAX_TTL_S = 4500
/** At most this many instances are kept; the one closest to expiry makes room. */
export const MDNS_MAX_ENTRIES = 256

/** The TTL an announcer with `intervalMs` sends: two missed announcements and half an interval. */
export function announceTtlSeconds(intervalMs: number): number {
  return Math.max(MDNS_MIN_TTL_S, Math.ceil((intervalMs * 2.5) / 1000))
}

const keyOf = (fqdn: string, did: string) => `${fqdn.toLowerCase()} ${did}`

export class MdnsRoster {
  readonly #now: () => number
  readonly #max: number
  readonly #entries = new Map<string, MdnsRosterEntry>()

  constructor(options: { now?: () => number; maxEntries?: number } = {}) {
    this.#now = options.now ?? Date.now
    this.#max = options.maxEntries ?? MDNS_MAX_ENTRIES
  }

  get size(): number {
    return this.#entries.size
  }

  /** Records an announcement or an answer; says whether the peer is new, changed or only seen again. */
  see(s: MdnsSighting): RosterChange {
    const now = this.#now()
    const ttlMs = Math.min(MDNS_MAX_TTL_S, Math.max(MDNS_MIN_TTL_S, s.ttlSeconds)) * 1000
    const key = keyOf(s.fqdn, s.did)
    const known = this.#entries.get(key)
    const timing = { lastSeen: now, expiresAt: now + ttlMs, refreshAt: now + ttlMs * 0.8, refreshAsked: false }
    if (known) {
      const changed = known.url !== s.url || known.handle !== s.handle || known.namespace !== s.namespace
      this.#entries.set(key, { ...s, firstSeen: known.firstSeen, ...timing })
      return changed ? 'changed' : 'seen'
    }
    if (this.#entries.size >= this.#max) {
      let victim: string | undefined
      let soonest = Number.POSITIVE_INFINITY
      for (const [k, e] of this.#entries) {
        if (e.expiresAt < soonest) {
          soonest = e.expiresAt
          victim = k
        }
      }
      if (victim !== undefined) this.#entries.delete(victim)
    }
    this.#entries.set(key, { ...s, firstSeen: now, ...timing })
    return 'new'
  }

  /** A goodbye (TTL 0) for `fqdn`: removes it now (only `did`'s entry when the goodbye names one). */
  goodbye(fqdn: string, did?: string): MdnsRosterEntry[] {
    const gone: MdnsRosterEntry[] = []
    const name = fqdn.toLowerCase()
    for (const [k, e] of this.#entries) {
      if (e.fqdn.toLowerCase() === name && (did === undefined || e.did === did)) {
        this.#entries.delete(k)
        gone.push(e)
      }
    }
    return gone
  }

  /** Removes and returns the entries whose TTL ran out. */
  expire(): MdnsRosterEntry[] {
    const now = this.#now()
    const gone: MdnsRosterEntry[] = []
    for (const [k, e] of this.#entries) {
      if (now >= e.expiresAt) {
        this.#entries.delete(k)
        gone.push(e)
      }
    }
    return gone
  }

  /** True when some entry reached 80 % of its TTL unseen and was not asked about yet (marks them asked). */
  takeRefreshDue(): boolean {
    const now = this.#now()
    let due = false
    for (const e of this.#entries.values()) {
      if (!e.refreshAsked && now >= e.refreshAt) {
        e.refreshAsked = true
        due = true
      }
    }
    return due
  }

  entries(): MdnsRosterEntry[] {
    return [...this.#entries.values()].sort((a, b) => b.lastSeen - a.lastSeen)
  }

  clear(): void {
    this.#entries.clear()
  }
}
