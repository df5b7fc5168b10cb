import { afterAll } from 'vitest'
import { PG_SKIP, type PgCluster, startPgCluster } from './pg-cluster.js'

/** The dialects a store suite runs on: SQLite always, PostgreSQL where it is installed. */
export type TestDialect = 'sqlite' | 'postgres'
export const TEST_DIALECTS: readonly TestDialect[] = ['sqlite', 'postgres']

/** Whether the suite of `d` is skipped here (PostgreSQL missing: the title says so). */
export function skipDialect(d: TestDialect): boolean {
  return d === 'postgres' && PG_SKIP !== null
}

/** The title of a dialect's suite, with the reason when it is skipped. */
export function dialectTitle(d: TestDialect): string {
  return skipDialect(d) ? `on ${d} (skipped: ${PG_SKIP})` : `on ${d}`
}

/**
 * One PostgreSQL cluster for a test file, started by the first test that asks for a database
 * and removed after the file; each call of `database()` makes a fresh database in it.
 */
export function sharedPgCluster(): { database(): Promise<string>; cluster(): Promise<PgCluster> } {
  let cluster: Promise<PgCluster> | undefined
  afterAll(async () => {
    if (cluster) (await cluster).remove()
  })
  const get = () => {
    cluster ??= startPgCluster()
    return cluster
  }
  return { cluster: get, database: async () => (await get()).createDatabase() }
}
