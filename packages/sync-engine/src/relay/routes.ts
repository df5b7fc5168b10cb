import { inTransaction, migrateWith } from '@spl/records'
import type { Kysely, Migration } from 'kysely'

/**
 * Where a sender deposits for a receiver (SPEC 10): the relays the receiver names in its signed
 * manifest (learned while it was online), and relays the operator set (`spl config relay set
 * <url> [--for-peer DID]`; without a peer, for every receiver).
 */

interface RouteTables {
  spl_relay_routes: {
    receiver: string
    relay_url: string
    relay_did: string
    origin: string
    updated_at: number
  }
}

const migrations: Record<string, Migration> = {
  '0001_routes': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('spl_relay_routes')
        .ifNotExists()
        .addColumn('receiver', 'text', (c) => c.notNull())
        .addColumn('relay_url', 'text', (c) => c.notNull())
        .addColumn('relay_did', 'text', (c) => c.notNull())
        .addColumn('origin', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('spl_relay_routes_pk', ['receiver', 'relay_url', 'origin'])
        .execute()
    },
  },
}

/** A relay: where it answers and who it is (its answers are signed by that DID). */
export interface RelayRef {
  url: string
  did: string
}

/** One route as `spl config relay list` shows it. */
export interface RelayRoute extends RelayRef {
  /** The receiver DID, or "*" for every receiver. */
  receiver: string
  origin: 'config' | 'manifest'
  updated_at: number
}

/** Any receiver (a route set without `--for-peer`). */
export const ANY_RECEIVER = '*'

export class RelayRoutes {
  #routes: RelayRoute[] = []
  /** Receivers whose manifest named no relay, and when that was seen (not kept: looked at again after a restart). */
  readonly #looked = new Map<string, number>()

  private constructor(private readonly db: Kysely<RouteTables>) {}

  static async open<DB>(db: Kysely<DB>): Promise<RelayRoutes> {
    await migrateWith(db as unknown as Kysely<unknown>, 'relay_routes', { getMigrations: async () => migrations })
    const r = new RelayRoutes(db as unknown as Kysely<RouteTables>)
    await r.#load()
    return r
  }

  /** Reads the routes again (another daemon on the same database, a replica, changed them). */
  reload(): Promise<void> {
    return this.#load()
  }

  async #load(): Promise<void> {
    const rows = await this.db.selectFrom('spl_relay_routes').selectAll().orderBy('updated_at').execute()
    this.#routes = rows.map((r) => ({
      receiver: r.receiver,
      url: r.relay_url,
      did: r.relay_did,
      origin: r.origin === 'manifest' ? 'manifest' : 'config',
      updated_at: r.updated_at,
    }))
  }

  list(): RelayRoute[] {
    return this.#routes.map((r) => ({ ...r }))
  }

  /** The relays to deposit for `receiver` at, in order: set for it, named by it, set for everyone. */
  routesFor(receiver: string): RelayRef[] {
    const pick = (f: (r: RelayRoute) => boolean) => this.#routes.filter(f).map((r) => ({ url: r.url, did: r.did }))
    const all = [
      ...pick((r) => r.receiver === receiver && r.origin === 'config'),
      ...pick((r) => r.receiver === receiver && r.origin === 'manifest'),
      ...pick((r) => r.receiver === ANY_RECEIVER),
    ]
    const seen = new Set<string>()
    return all.filter((r) => !seen.has(r.url) && seen.add(r.url))
  }

  /** When the receiver's own list was last learned (null: never). */
  learnedAt(receiver: string): number | null {
    const r = this.#routes.filter((x) => x.receiver === receiver && x.origin === 'manifest')
    return r.length === 0 ? null : Math.max(...r.map((x) => x.updated_at))
  }

  /** Sets an operator's route (idempotent). */
  async set(relay: RelayRef, receiver: string, now: number): Promise<void> {
    await this.db
      .insertInto('spl_relay_routes')
      .values({ receiver, relay_url: relay.url, relay_did: relay.did, origin: 'config', updated_at: now })
      .onConflict((oc) => oc.columns(['receiver', 'relay_url', 'origin']).doUpdateSet({ relay_did: relay.did, updated_at: now }))
      .execute()
    await this.#load()
  }

  /** Removes an operator's route; true when there was one. */
  async unset(url: string, receiver: string): Promise<boolean> {
    const r = await this.db
      .deleteFrom('spl_relay_routes')
      .where('receiver', '=', receiver)
      .where('relay_url', '=', url)
      .where('origin', '=', 'config')
      .executeTakeFirst()
    await this.#load()
    return Number(r.numDeletedRows) > 0
  }

  /**
   * What the receiver's manifest named (an empty list clears it). A row with the time of the
   * last look is kept even then, so that the look is not repeated at once.
   */
  async learned(receiver: string, relays: readonly RelayRef[], now: number): Promise<void> {
    await inTransaction(this.db, async (trx) => {
      await trx.deleteFrom('spl_relay_routes').where('receiver', '=', receiver).where('origin', '=', 'manifest').execute()
      for (const r of relays.slice(0, 8)) {
        await trx
          .insertInto('spl_relay_routes')
          .values({ receiver, relay_url: r.url, relay_did: r.did, origin: 'manifest', updated_at: now })
          .onConflict((oc) => oc.doNothing())
          .execute()
      }
    })
    await this.#load()
    if (relays.length === 0) this.#looked.set(receiver, now)
    else this.#looked.delete(receiver)
  }

  /** When the receiver was last looked at, relays found or not (null: never in this run). */
  lookedAt(receiver: string): number | null {
    return this.learnedAt(receiver) ?? this.#looked.get(receiver) ?? null
  }
}
