// Links, held requests, invites, the blocklist, revoked token ids and used nonces, in the
// daemon's SQLite through kysely. Every change that makes or ends a link is one transaction.
import { migrateWith } from '@spl/records'
import type { Kysely, Migration, Transaction } from 'kysely'
import type { Link, LinkError } from './link.js'
import type { NamespaceMap } from './wire.js'

interface LinkRow {
  link_id: string
  peer_did: string
  peer_url: string
  role: string
  state: string
  threads: string
  local_namespace: string | null
  peer_namespace: string | null
  issued_jti: string
  issued_exp: number
  held_token: string | null
  held_jti: string | null
  held_exp: number | null
  nonce: string | null
  created_at: number
  updated_at: number
  renewal_error: string | null
  revoked_by: string | null
}

interface RequestRow {
  link_id: string
  initiator_did: string
  initiator_url: string
  nonce: string
  threads: string
  namespace_map: string
  token_for_responder: string
  answer_token: string | null
  created_at: number
  expires_at: number
  state: string
  decided_at: number | null
}

interface InviteRow {
  code_hash: string
  threads: string
  namespace_map: string
  created_at: number
  expires_at: number
  used_at: number | null
  used_by: string | null
}

interface Tables {
  spl_federation_links: LinkRow
  spl_federation_requests: RequestRow
  spl_federation_invites: InviteRow
  spl_federation_blocklist: { did: string; blocked_at: number }
  spl_federation_revocations: { jti: string; exp: number; revoked_at: number }
  spl_federation_nonces: { nonce: string; until_ms: number }
}

const migrations: Record<string, Migration> = {
  '0001_federation': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('spl_federation_links')
        .ifNotExists()
        .addColumn('link_id', 'text', (c) => c.primaryKey())
        .addColumn('peer_did', 'text', (c) => c.notNull().unique())
        .addColumn('peer_url', 'text', (c) => c.notNull())
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('threads', 'text', (c) => c.notNull())
        .addColumn('local_namespace', 'text')
        .addColumn('peer_namespace', 'text')
        .addColumn('issued_jti', 'text', (c) => c.notNull())
        .addColumn('issued_exp', 'integer', (c) => c.notNull())
        .addColumn('held_token', 'text')
        .addColumn('held_jti', 'text')
        .addColumn('held_exp', 'integer')
        .addColumn('nonce', 'text')
        .addColumn('created_at', 'integer', (c) => c.notNull())
        .addColumn('updated_at', 'integer', (c) => c.notNull())
        .addColumn('renewal_error', 'text')
        .addColumn('revoked_by', 'text')
        .execute()
      await db.schema
        .createTable('spl_federation_requests')
        .ifNotExists()
        .addColumn('link_id', 'text', (c) => c.primaryKey())
        .addColumn('initiator_did', 'text', (c) => c.notNull())
        .addColumn('initiator_url', 'text', (c) => c.notNull())
        .addColumn('nonce', 'text', (c) => c.notNull())
        .addColumn('threads', 'text', (c) => c.notNull())
        .addColumn('namespace_map', 'text', (c) => c.notNull())
        .addColumn('token_for_responder', 'text', (c) => c.notNull())
        .addColumn('answer_token', 'text')
        .addColumn('created_at', 'integer', (c) => c.notNull())
        .addColumn('expires_at', 'integer', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('decided_at', 'integer')
        .execute()
      await db.schema
        .createTable('spl_federation_invites')
        .ifNotExists()
        .addColumn('code_hash', 'text', (c) => c.primaryKey())
        .addColumn('threads', 'text', (c) => c.notNull())
        .addColumn('namespace_map', 'text', (c) => c.notNull())
        .addColumn('created_at', 'integer', (c) => c.notNull())
        .addColumn('expires_at', 'integer', (c) => c.notNull())
        .addColumn('used_at', 'integer')
        .addColumn('used_by', 'text')
        .execute()
      await db.schema
        .createTable('spl_federation_blocklist')
        .ifNotExists()
        .addColumn('did', 'text', (c) => c.primaryKey())
        .addColumn('blocked_at', 'integer', (c) => c.notNull())
        .execute()
      await db.schema
        .createTable('spl_federation_revocations')
        .ifNotExists()
        .addColumn('jti', 'text', (c) => c.primaryKey())
        .addColumn('exp', 'integer', (c) => c.notNull())
        .addColumn('revoked_at', 'integer', (c) => c.notNull())
        .execute()
      await db.schema
        .createTable('spl_federation_nonces')
        .ifNotExists()
        .addColumn('nonce', 'text', (c) => c.primaryKey())
        .addColumn('until_ms', 'integer', (c) => c.notNull())
        .execute()
    },
  },
}

/** A held pairing request (SPEC 9.1 step 3). */
export interface HeldRequest {
  link_id: string
  initiator_did: string
  initiator_url: string
  nonce: string
  threads: string[]
  namespace_map: NamespaceMap
  token_for_responder: string
  /** The token issued to the initiator once approved, for its next poll. */
  answer_token: string | null
  created_at: number
  expires_at: number
  state: 'pending' | 'approved' | 'rejected'
  decided_at: number | null
}

export interface Invite {
  threads: string[]
  namespace_map: NamespaceMap
  created_at: number
  expires_at: number
  used_at: number | null
  used_by: string | null
}

const toLink = (r: LinkRow): Link => ({
  ...r,
  role: r.role as Link['role'],
  state: r.state as Link['state'],
  threads: JSON.parse(r.threads) as string[],
  renewal_error: r.renewal_error ? (JSON.parse(r.renewal_error) as LinkError) : null,
  revoked_by: r.revoked_by as Link['revoked_by'],
})
const fromLink = (l: Link): LinkRow => ({
  ...l,
  threads: JSON.stringify(l.threads),
  renewal_error: l.renewal_error ? JSON.stringify(l.renewal_error) : null,
})
const toRequest = (r: RequestRow): HeldRequest => ({
  ...r,
  threads: JSON.parse(r.threads) as string[],
  namespace_map: JSON.parse(r.namespace_map) as NamespaceMap,
  state: r.state as HeldRequest['state'],
})

type Db = Kysely<Tables> | Transaction<Tables>

/** The federation tables; methods take an optional transaction so that callers can group them. */
export class FederationStore {
  private constructor(readonly db: Kysely<Tables>) {}

  static async open<DB>(db: Kysely<DB>): Promise<FederationStore> {
    await migrateWith(db as unknown as Kysely<unknown>, 'federation', { getMigrations: async () => migrations })
    return new FederationStore(db as unknown as Kysely<Tables>)
  }

  /** Runs `fn` in one transaction. */
  transaction<T>(fn: (trx: Transaction<Tables>) => Promise<T>): Promise<T> {
    return this.db.transaction().execute(fn)
  }

  async links(db: Db = this.db): Promise<Link[]> {
    return (await db.selectFrom('spl_federation_links').selectAll().orderBy('created_at').execute()).map(toLink)
  }

  async link(linkId: string, db: Db = this.db): Promise<Link | undefined> {
    const r = await db.selectFrom('spl_federation_links').selectAll().where('link_id', '=', linkId).executeTakeFirst()
    return r ? toLink(r) : undefined
  }

  async putLink(link: Link, db: Db = this.db): Promise<void> {
    const row = fromLink(link)
    await db
      .insertInto('spl_federation_links')
      .values(row)
      .onConflict((oc) => oc.column('link_id').doUpdateSet(row))
      .execute()
  }

  /**
   * Takes the renewal of a link's held token: true when the row is still as `seenUpdatedAt` left
   * it (it moves on, so of several daemons on one database — replicas — one renews; the others
   * see the row changed and read it again).
   */
  async claimRenewal(linkId: string, seenUpdatedAt: number, now: number, db: Db = this.db): Promise<boolean> {
    const r = await db
      .updateTable('spl_federation_links')
      .set({ updated_at: Math.max(now, seenUpdatedAt + 1) })
      .where('link_id', '=', linkId)
      .where('updated_at', '=', seenUpdatedAt)
      .executeTakeFirst()
    return Number(r.numUpdatedRows) === 1
  }

  async deleteLink(linkId: string, db: Db = this.db): Promise<void> {
    await db.deleteFrom('spl_federation_links').where('link_id', '=', linkId).execute()
  }

  async request(linkId: string, db: Db = this.db): Promise<HeldRequest | undefined> {
    const r = await db.selectFrom('spl_federation_requests').selectAll().where('link_id', '=', linkId).executeTakeFirst()
    return r ? toRequest(r) : undefined
  }

  async pendingRequests(now: number, db: Db = this.db): Promise<HeldRequest[]> {
    const rows = await db
      .selectFrom('spl_federation_requests')
      .selectAll()
      .where('state', '=', 'pending')
      .where('expires_at', '>', now)
      .orderBy('created_at')
      .execute()
    return rows.map(toRequest)
  }

  async putRequest(r: HeldRequest, db: Db = this.db): Promise<void> {
    const row: RequestRow = { ...r, threads: JSON.stringify(r.threads), namespace_map: JSON.stringify(r.namespace_map) }
    await db
      .insertInto('spl_federation_requests')
      .values(row)
      .onConflict((oc) => oc.column('link_id').doUpdateSet(row))
      .execute()
  }

  async deleteRequestsOf(did: string, db: Db = this.db): Promise<void> {
    await db.deleteFrom('spl_federation_requests').where('initiator_did', '=', did).where('state', '=', 'pending').execute()
  }

  async addInvite(codeHash: string, invite: Invite, db: Db = this.db): Promise<void> {
    await db
      .insertInto('spl_federation_invites')
      .values({
        code_hash: codeHash,
        ...invite,
        threads: JSON.stringify(invite.threads),
        namespace_map: JSON.stringify(invite.namespace_map),
      })
      .execute()
  }

  async invite(codeHash: string, db: Db = this.db): Promise<Invite | undefined> {
    const r = await db.selectFrom('spl_federation_invites').selectAll().where('code_hash', '=', codeHash).executeTakeFirst()
    if (!r) return undefined
    const { code_hash: _h, ...rest } = r
    return { ...rest, threads: JSON.parse(r.threads) as string[], namespace_map: JSON.parse(r.namespace_map) as NamespaceMap }
  }

  /** Marks an unused, unexpired invite used by `did`; false when it was not (one statement: used once). */
  async useInvite(codeHash: string, did: string, now: number, db: Db = this.db): Promise<boolean> {
    const r = await db
      .updateTable('spl_federation_invites')
      .set({ used_at: now, used_by: did })
      .where('code_hash', '=', codeHash)
      .where('used_at', 'is', null)
      .where('expires_at', '>', now)
      .executeTakeFirst()
    return Number(r.numUpdatedRows) === 1
  }

  async block(did: string, now: number, db: Db = this.db): Promise<void> {
    await db
      .insertInto('spl_federation_blocklist')
      .values({ did, blocked_at: now })
      .onConflict((oc) => oc.column('did').doNothing())
      .execute()
  }

  async unblock(did: string, db: Db = this.db): Promise<boolean> {
    const r = await db.deleteFrom('spl_federation_blocklist').where('did', '=', did).executeTakeFirst()
    return Number(r.numDeletedRows) > 0
  }

  async blocked(db: Db = this.db): Promise<{ did: string; blocked_at: number }[]> {
    return db.selectFrom('spl_federation_blocklist').selectAll().orderBy('blocked_at').execute()
  }

  async isBlocked(did: string, db: Db = this.db): Promise<boolean> {
    return (await db.selectFrom('spl_federation_blocklist').select('did').where('did', '=', did).executeTakeFirst()) !== undefined
  }

  async revoke(jti: string, exp: number, now: number, db: Db = this.db): Promise<void> {
    await db
      .insertInto('spl_federation_revocations')
      .values({ jti, exp, revoked_at: now })
      .onConflict((oc) => oc.column('jti').doNothing())
      .execute()
  }

  /** Every revoked token id with its expiry and when it was revoked (a backup's copy; expired ones included). */
  async revocations(db: Db = this.db): Promise<{ jti: string; exp: number; revoked_at: number }[]> {
    return db.selectFrom('spl_federation_revocations').selectAll().orderBy('revoked_at').execute()
  }

  /** Revoked token ids that could still be presented (expired ones need no list). */
  async revokedJtis(now: number, db: Db = this.db): Promise<string[]> {
    await db.deleteFrom('spl_federation_revocations').where('exp', '<=', now).execute()
    return (await db.selectFrom('spl_federation_revocations').select('jti').execute()).map((r) => r.jti)
  }

  /** Records a handshake nonce; false when it was seen before (until it may be forgotten). */
  async claimNonce(nonce: string, untilMs: number, now: number, db: Db = this.db): Promise<boolean> {
    await db.deleteFrom('spl_federation_nonces').where('until_ms', '<=', now).execute()
    const r = await db
      .insertInto('spl_federation_nonces')
      .values({ nonce, until_ms: untilMs })
      .onConflict((oc) => oc.column('nonce').doNothing())
      .executeTakeFirst()
    return Number(r.numInsertedOrUpdatedRows ?? 0n) > 0
  }
}
