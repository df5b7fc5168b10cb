import type { Generated, Insertable, Kysely, Selectable } from 'kysely'

/** The record store's tables (created by the migrations of migrations.ts). */
export interface RecordsTables {
  spl_records: {
    seq: Generated<number>
    id: string
    /** idKeyOf(id): the indexed lookup key. */
    id_key: number
    thread: string
    actor: string
    clock: number
    act: string
    namespace: string
    record: string
    sig: string | null
    redacted: number
    stored_at: number
    origin: string | null
  }
  spl_meta: { key: string; value: string }
}

export type RecordsDb = Kysely<RecordsTables>
export type StoredRow = Selectable<RecordsTables['spl_records']>
export type InsertRow = Insertable<RecordsTables['spl_records']>
