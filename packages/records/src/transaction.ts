import { DiskFullError, isDiskFull } from '@spl/identity'
import type { Kysely, Transaction } from 'kysely'

/**
 * Runs `fn` in one transaction and commits it; on any failure, rolls back and throws the error
 * that caused it. SQLite ends a transaction by itself on some errors (SQLITE_FULL among them, at
 * a statement or at COMMIT): kysely's own `transaction().execute` then fails in its ROLLBACK with
 * "cannot rollback - no transaction is active", which hides the cause. A full disk is thrown as
 * DISK_FULL (507).
 */
export async function inTransaction<DB, T>(db: Kysely<DB>, fn: (trx: Transaction<DB>) => Promise<T>): Promise<T> {
  let trx: Awaited<ReturnType<ReturnType<Kysely<DB>['startTransaction']>['execute']>>
  try {
    trx = await db.startTransaction().execute()
  } catch (err) {
    throw isDiskFull(err) ? new DiskFullError(err) : err
  }
  try {
    const result = await fn(trx)
    await trx.commit().execute()
    return result
  } catch (err) {
    if (!trx.isCommitted && !trx.isRolledBack) {
      // Releases the connection even when SQLite has already ended the transaction.
      await trx
        .rollback()
        .execute()
        .catch(() => {})
    }
    throw isDiskFull(err) ? new DiskFullError(err) : err
  }
}
