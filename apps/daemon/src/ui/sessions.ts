import crypto from 'node:crypto'

/** How long a login link printed by `spl ui` may be used (once). */
export const LOGIN_TTL_MS = 5 * 60_000
/** How long a console session lives after its login, whatever is done with it. */
export const SESSION_TTL_MS = 12 * 3_600_000
/** Sessions and unused login links kept at most; the oldest go first. */
const MAX_SESSIONS = 50
const MAX_LOGINS = 50

/** A console session: the cookie holds `id`, the page sends `csrf` in a header with every call. */
export interface UiSession {
  csrf: string
  createdAt: number
  expiresAt: number
}

const random = () => crypto.randomBytes(32).toString('base64url')
// Only hashes are kept, so a lookup leaks no timing about the secrets themselves.
const digest = (secret: string) => crypto.createHash('sha256').update(secret).digest('base64url')

/** True when `given` equals `expected`, in constant time. */
export function secretMatches(given: string, expected: string): boolean {
  const a = Buffer.from(given)
  const b = Buffer.from(expected)
  return a.length === b.length && crypto.timingSafeEqual(a, b)
}

/**
 * One-time login links and the sessions they become (in memory: a restart logs the console out;
 * `spl ui` prints a new link).
 */
export class UiSessions {
  readonly #logins = new Map<string, number>()
  readonly #sessions = new Map<string, UiSession>()

  constructor(private readonly clock: () => number = Date.now) {}

  /** A fresh one-time login token, good for LOGIN_TTL_MS. */
  issueLogin(): { token: string; expiresAt: number } {
    const now = this.clock()
    this.#prune(now)
    const token = random()
    const expiresAt = now + LOGIN_TTL_MS
    this.#logins.set(digest(token), expiresAt)
    while (this.#logins.size > MAX_LOGINS) this.#logins.delete(this.#logins.keys().next().value!)
    return { token, expiresAt }
  }

  /** Spends a login token: a new session (its cookie value and CSRF token), or null when used, expired or unknown. */
  redeem(token: string): { id: string; session: UiSession } | null {
    const now = this.clock()
    const key = digest(token)
    const until = this.#logins.get(key)
    this.#logins.delete(key)
    if (until === undefined || until <= now) return null
    const id = random()
    const session = { csrf: random(), createdAt: now, expiresAt: now + SESSION_TTL_MS }
    this.#sessions.set(digest(id), session)
    while (this.#sessions.size > MAX_SESSIONS) this.#sessions.delete(this.#sessions.keys().next().value!)
    return { id, session }
  }

  /** The live session of a cookie value, or null. */
  session(id: string | undefined): UiSession | null {
    if (!id) return null
    const key = digest(id)
    const s = this.#sessions.get(key)
    if (!s) return null
    if (s.expiresAt <= this.clock()) {
      this.#sessions.delete(key)
      return null
    }
    return s
  }

  /** Ends the session of a cookie value (logout). */
  end(id: string | undefined): void {
    if (id) this.#sessions.delete(digest(id))
  }

  #prune(now: number): void {
    for (const [k, until] of this.#logins) if (until <= now) this.#logins.delete(k)
    for (const [k, s] of this.#sessions) if (s.expiresAt <= now) this.#sessions.delete(k)
  }
}

const byContext = new WeakMap<object, UiSessions>()

/** The sessions of one daemon (one context), shared by every app built on it. */
export function sessionsOf(ctx: object): UiSessions {
  let s = byContext.get(ctx)
  if (!s) byContext.set(ctx, (s = new UiSessions()))
  return s
}
