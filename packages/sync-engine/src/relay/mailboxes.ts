import crypto from 'node:crypto'
import { looksSealed, SplError } from '@spl/identity'
import { inTransaction, migrateWith } from '@spl/records'
import type { Kysely, Migration } from 'kysely'
import { MAX_DEPOSIT_BYTES } from './deposit.js'

/**
 * The relay side of SPEC 10: a mailbox per registered receiver DID. What it stores of a deposit
 * is the sealed box and who, to whom, how big and when — never a record in clear (the box is
 * sealed to the receiver). Quotas are checked and usage counted in the transaction that stores.
 */

interface MailboxTables {
  spl_relay_receivers: { did: string; registered_at: number }
  spl_relay_deposits: {
    id: string
    receiver: string
    sender: string
    size: number
    deposited_at: number
    expires_at: number
    sealed: string
  }
  spl_relay_usage: { sender: string; day: number; bytes: number }
}

const migrations: Record<string, Migration> = {
  '0001_mailboxes': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('spl_relay_receivers')
        .ifNotExists()
        .addColumn('did', 'text', (c) => c.primaryKey())
        .addColumn('registered_at', 'integer', (c) => c.notNull())
        .execute()
      await db.schema
        .createTable('spl_relay_deposits')
        .ifNotExists()
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('receiver', 'text', (c) => c.notNull())
        .addColumn('sender', 'text', (c) => c.notNull())
        .addColumn('size', 'integer', (c) => c.notNull())
        .addColumn('deposited_at', 'integer', (c) => c.notNull())
        .addColumn('expires_at', 'integer', (c) => c.notNull())
        .addColumn('sealed', 'text', (c) => c.notNull())
        .execute()
      await db.schema
        .createIndex('spl_relay_deposits_receiver')
        .ifNotExists()
        .on('spl_relay_deposits')
        .columns(['receiver', 'deposited_at'])
        .execute()
      await db.schema.createIndex('spl_relay_deposits_expiry').ifNotExists().on('spl_relay_deposits').column('expires_at').execute()
      await db.schema
        .createTable('spl_relay_usage')
        .ifNotExists()
        .addColumn('sender', 'text', (c) => c.notNull())
        .addColumn('day', 'integer', (c) => c.notNull())
        .addColumn('bytes', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('spl_relay_usage_pk', ['sender', 'day'])
        .execute()
    },
  },
}

export interface MailboxLimits {
  /** Deposits waiting per receiver (507 beyond). */
  maxWaiting: number
  /** Bytes of sealed boxes one sender may deposit per UTC day (429 beyond). */
  senderBytesPerDay: number
  /** The largest sealed box (413 beyond). */
  maxDepositBytes: number
  /** How long an undelivered deposit is kept. */
  ttlMs: number
}

export const DEFAULT_MAILBOX_LIMITS: MailboxLimits = {
  maxWaiting: 10_000,
  senderBytesPerDay: 256 * 1024 * 1024,
  maxDepositBytes: MAX_DEPOSIT_BYTES,
  ttlMs: 7 * 24 * 3600 * 1000,
}

/** A mailbox door's refusal: status and code per SPEC 10, with a fix for the sender or receiver. */
export class MailboxError extends SplError {
  override readonly name = 'MailboxError'
  constructor(
    code:
      | 'RECEIVER_NOT_REGISTERED'
      | 'MAILBOX_FULL'
      | 'SENDER_QUOTA_EXCEEDED'
      | 'DEPOSIT_TOO_LARGE'
      | 'DEPOSIT_MALFORMED'
      | 'RELAY_DISABLED'
      | 'NOT_YOUR_MAILBOX',
    message: string,
    options: { status: number; fix: string; retryAfterS?: number },
  ) {
    super(code, message, { status: options.status, fix: options.fix })
    this.retryAfterS = options.retryAfterS
  }
  readonly retryAfterS: number | undefined
}

/** A deposit as served to its receiver. */
export interface WaitingDeposit {
  id: string
  sender: string
  size: number
  deposited_at: number
  expires_at: number
  sealed: string
}

/** One mailbox, as `spl relay mailboxes` lists it. */
export interface MailboxView {
  receiver: string
  registered_at: number
  waiting: number
  bytes: number
  oldest_at: number | null
}

/** Counters since start (for /metrics and spl status). */
export interface MailboxCounters {
  deposits: number
  deposit_bytes: number
  deliveries: number
  expired: number
  refused: Record<string, number>
}

const DAY_MS = 24 * 3600 * 1000

export class Mailboxes {
  readonly counters: MailboxCounters = { deposits: 0, deposit_bytes: 0, deliveries: 0, expired: 0, refused: {} }
  readonly #receivers = new Set<string>()
  /** Deposits held per receiver (kept in step with the table: a deposit is not a COUNT over 10,000 rows). */
  readonly #waiting = new Map<string, number>()

  private constructor(
    private readonly db: Kysely<MailboxTables>,
    readonly limits: MailboxLimits,
    private readonly now: () => number,
  ) {}

  /** Migrates the relay's tables, loads the receivers and sweeps what expired while down. */
  static async open<DB>(db: Kysely<DB>, limits: Partial<MailboxLimits> = {}, now: () => number = Date.now): Promise<Mailboxes> {
    await migrateWith(db as unknown as Kysely<unknown>, 'relay_mailboxes', { getMigrations: async () => migrations })
    const m = new Mailboxes(db as unknown as Kysely<MailboxTables>, { ...DEFAULT_MAILBOX_LIMITS, ...limits }, now)
    await m.sweep()
    await m.reload()
    return m
  }

  /** Counts a refusal by code (also one made at the door, such as an oversized body). */
  countRefusal(code: string): void {
    this.counters.refused[code] = (this.counters.refused[code] ?? 0) + 1
  }

  #refuse(err: MailboxError): never {
    this.countRefusal(err.code)
    throw err
  }

  async #recount(): Promise<void> {
    const rows = await this.db
      .selectFrom('spl_relay_deposits')
      .select((eb) => ['receiver', eb.fn.countAll<number>().as('n')])
      .groupBy('receiver')
      .execute()
    this.#waiting.clear()
    for (const r of rows) this.#waiting.set(r.receiver, Number(r.n))
  }

  #adjust(receiver: string, by: number): void {
    const n = Math.max(0, (this.#waiting.get(receiver) ?? 0) + by)
    if (n === 0) this.#waiting.delete(receiver)
    else this.#waiting.set(receiver, n)
  }

  /** Reads receivers and waiting counts again (a replica on the same database registered or took deposits). */
  async reload(): Promise<void> {
    const dids = (await this.db.selectFrom('spl_relay_receivers').select('did').execute()).map((r) => r.did)
    this.#receivers.clear()
    for (const did of dids) this.#receivers.add(did)
    await this.#recount()
  }

  isRegistered(did: string): boolean {
    return this.#receivers.has(did)
  }

  /** Opens a mailbox for `did` (idempotent). */
  async register(did: string): Promise<{ created: boolean; registered_at: number }> {
    const now = this.now()
    const r = await this.db
      .insertInto('spl_relay_receivers')
      .values({ did, registered_at: now })
      .onConflict((oc) => oc.column('did').doNothing())
      .executeTakeFirst()
    this.#receivers.add(did)
    const created = Number(r.numInsertedOrUpdatedRows ?? 0n) > 0
    const row = await this.db.selectFrom('spl_relay_receivers').select('registered_at').where('did', '=', did).executeTakeFirstOrThrow()
    return { created, registered_at: row.registered_at }
  }

  /** Closes `did`'s mailbox; what waited in it is dropped. */
  async unregister(did: string): Promise<{ removed: boolean; dropped: number }> {
    return inTransaction(this.db, async (trx) => {
      const d = await trx.deleteFrom('spl_relay_deposits').where('receiver', '=', did).executeTakeFirst()
      const r = await trx.deleteFrom('spl_relay_receivers').where('did', '=', did).executeTakeFirst()
      this.#receivers.delete(did)
      this.#waiting.delete(did)
      return { removed: Number(r.numDeletedRows) > 0, dropped: Number(d.numDeletedRows) }
    })
  }

  #notRegistered(did: string): MailboxError {
    return new MailboxError('RECEIVER_NOT_REGISTERED', `${did.slice(0, 100)} has no mailbox at this relay.`, {
      status: 404,
      fix: 'the receiver registers first: spl relay register <this relay URL> (on the receiver)',
    })
  }

  /** Stores a sealed box from `sender` for `receiver`, within the quotas; returns its id and how many wait. */
  async deposit(sender: string, receiver: string, sealed: unknown): Promise<{ id: string; waiting: number; expires_at: number }> {
    const l = this.limits
    if (typeof sealed === 'string' && Buffer.byteLength(sealed, 'utf8') > l.maxDepositBytes) {
      this.#refuse(
        new MailboxError('DEPOSIT_TOO_LARGE', `a deposit is at most ${l.maxDepositBytes} bytes.`, {
          status: 413,
          fix: 'split the records over several deposits',
        }),
      )
    }
    if (!looksSealed(sealed)) {
      this.#refuse(
        new MailboxError('DEPOSIT_MALFORMED', 'body.sealed is not a sealed box (compact JWE, ECDH-ES, A256GCM, X25519).', {
          status: 400,
          fix: 'seal the deposit to the receiver (sealDeposit in @spl/sync-engine)',
        }),
      )
    }
    if (!this.#receivers.has(receiver)) this.#refuse(this.#notRegistered(receiver))
    const size = Buffer.byteLength(sealed, 'utf8')
    const now = this.now()
    const day = Math.floor(now / DAY_MS)
    const waiting = this.#waiting.get(receiver) ?? 0
    if (waiting >= l.maxWaiting) {
      this.#refuse(
        new MailboxError('MAILBOX_FULL', `${l.maxWaiting} deposits already wait for ${receiver.slice(0, 100)}.`, {
          status: 507,
          fix: 'wait until the receiver collects its mail, or pull from the receiver directly when it is online',
        }),
      )
    }
    // Reserved before the transaction, so that concurrent deposits cannot pass the limit together.
    this.#adjust(receiver, 1)
    let result: MailboxError | { id: string; waiting: number; expires_at: number }
    try {
      result = await inTransaction(this.db, async (trx) => {
        const used = await trx
          .selectFrom('spl_relay_usage')
          .select('bytes')
          .where('sender', '=', sender)
          .where('day', '=', day)
          .executeTakeFirst()
        if ((used?.bytes ?? 0) + size > l.senderBytesPerDay) {
          const retryAfterS = Math.max(1, Math.ceil(((day + 1) * DAY_MS - now) / 1000))
          return new MailboxError(
            'SENDER_QUOTA_EXCEEDED',
            `this sender deposited ${used?.bytes ?? 0} of its ${l.senderBytesPerDay} bytes for today.`,
            { status: 429, fix: `retry after ${retryAfterS} s (the next UTC day)`, retryAfterS },
          )
        }
        const id = `mbx_${crypto.randomBytes(12).toString('hex')}`
        const expiresAt = now + l.ttlMs
        await trx
          .insertInto('spl_relay_deposits')
          .values({ id, receiver, sender, size, deposited_at: now, expires_at: expiresAt, sealed })
          .execute()
        await trx
          .insertInto('spl_relay_usage')
          .values({ sender, day, bytes: size })
          .onConflict((oc) => oc.columns(['sender', 'day']).doUpdateSet((eb) => ({ bytes: eb('spl_relay_usage.bytes', '+', size) })))
          .execute()
        return { id, waiting: waiting + 1, expires_at: expiresAt }
      })
    } catch (err) {
      this.#adjust(receiver, -1)
      throw err
    }
    if (result instanceof MailboxError) this.#adjust(receiver, -1)
    if (result instanceof MailboxError) this.#refuse(result)
    this.counters.deposits++
    this.counters.deposit_bytes += size
    return result
  }

  /** The oldest deposits waiting for `did`: at most `limit`, and no more than `maxBytes` of them after the first. */
  async receive(did: string, limit: number, maxBytes = 8 * 1024 * 1024): Promise<{ deposits: WaitingDeposit[]; has_more: boolean }> {
    if (!this.#receivers.has(did)) this.#refuse(this.#notRegistered(did))
    const rows = await this.db
      .selectFrom('spl_relay_deposits')
      .select(['id', 'sender', 'size', 'deposited_at', 'expires_at', 'sealed'])
      .where('receiver', '=', did)
      .where('expires_at', '>', this.now())
      .orderBy('deposited_at')
      .orderBy('id')
      .limit(limit + 1)
      .execute()
    let has_more = rows.length > limit
    if (has_more) rows.length = limit
    let bytes = 0
    for (let i = 0; i < rows.length; i++) {
      bytes += rows[i]!.size
      if (i > 0 && bytes > maxBytes) {
        rows.length = i
        has_more = true
        break
      }
    }
    return { deposits: rows, has_more }
  }

  /** Drops deposits `did` collected; returns how many were removed (an unknown id is ignored). */
  async ack(did: string, ids: readonly string[]): Promise<number> {
    if (!this.#receivers.has(did)) this.#refuse(this.#notRegistered(did))
    if (ids.length === 0) return 0
    const r = await this.db.deleteFrom('spl_relay_deposits').where('receiver', '=', did).where('id', 'in', ids).executeTakeFirst()
    const n = Number(r.numDeletedRows)
    this.#adjust(did, -n)
    this.counters.deliveries += n
    return n
  }

  /** Deletes deposits past their time and usage of days gone; returns how many deposits expired. */
  async sweep(): Promise<number> {
    const now = this.now()
    const r = await this.db.deleteFrom('spl_relay_deposits').where('expires_at', '<=', now).executeTakeFirst()
    await this.db
      .deleteFrom('spl_relay_usage')
      .where('day', '<', Math.floor(now / DAY_MS) - 1)
      .execute()
    const n = Number(r.numDeletedRows)
    this.counters.expired += n
    if (n > 0) await this.#recount()
    return n
  }

  /** Every mailbox with what waits in it. */
  async list(): Promise<MailboxView[]> {
    const now = this.now()
    const receivers = await this.db.selectFrom('spl_relay_receivers').selectAll().orderBy('registered_at').execute()
    const depth = await this.db
      .selectFrom('spl_relay_deposits')
      .select((eb) => [
        'receiver',
        eb.fn.countAll<number>().as('n'),
        eb.fn.sum<number>('size').as('bytes'),
        eb.fn.min<number>('deposited_at').as('oldest'),
      ])
      .where('expires_at', '>', now)
      .groupBy('receiver')
      .execute()
    const by = new Map(depth.map((d) => [d.receiver, d]))
    return receivers.map((r) => {
      const d = by.get(r.did)
      return {
        receiver: r.did,
        registered_at: r.registered_at,
        waiting: Number(d?.n ?? 0),
        bytes: Number(d?.bytes ?? 0),
        oldest_at: d?.oldest === undefined || d.oldest === null ? null : Number(d.oldest),
      }
    })
  }

  /** Deposits waiting in all mailboxes (a gauge). */
  async depth(): Promise<number> {
    const r = await this.db
      .selectFrom('spl_relay_deposits')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('expires_at', '>', this.now())
      .executeTakeFirstOrThrow()
    return Number(r.n)
  }
}
