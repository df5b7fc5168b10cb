import { appendFileSync, chmodSync, copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { ok, spl, TestDaemon } from './test-daemon.js'

/**
 * A second `spl serve` of the same identity on the same PostgreSQL (docs/postgres.md,
 * "Replicas"): a new home holding what a replica needs of `of`'s — config.toml (the DID, the key
 * path, `[storage] url`), the key and the admin token (one token for every replica, so a client
 * behind a load balancer needs one) — and nothing else (no spl.db, logs or run files). With
 * `replicaId` the home's `[storage] replica_id` is set.
 */
export async function startReplica(of: TestDaemon, options: { replicaId?: string } = {}): Promise<TestDaemon> {
  const home = mkdtempSync(path.join(os.tmpdir(), 'spl-replica-'))
  chmodSync(home, 0o700)
  for (const dir of ['logs', 'run']) mkdirSync(path.join(home, dir), { recursive: true, mode: 0o700 })
  cpSync(path.join(of.home, 'keys'), path.join(home, 'keys'), { recursive: true })
  copyFileSync(path.join(of.home, 'admin.token'), path.join(home, 'admin.token'))
  let config = readFileSync(path.join(of.home, 'config.toml'), 'utf8')
  if (!/^\[storage\]$/m.test(config) || !/^url = "postgres/m.test(config)) {
    throw new Error(`${of.home}/config.toml has no [storage] url: start the first replica with { database }`)
  }
  if (options.replicaId) config = config.replace(/^\[storage\]$/m, `[storage]\nreplica_id = ${JSON.stringify(options.replicaId)}`)
  writeFileSync(path.join(home, 'config.toml'), config, { mode: 0o600 })
  return TestDaemon.start({ home })
}

/**
 * A home for replicas of one instance on PostgreSQL: `spl init`, then `[storage]` with the
 * database and the lease time. Start the first replica on it, the others with `startReplica`.
 */
export async function replicaHome(database: string, leaseTtl = '15s'): Promise<string> {
  const home = mkdtempSync(path.join(os.tmpdir(), 'spl-replica-'))
  ok(await spl(home, ['init']), 'spl init')
  appendFileSync(
    path.join(home, 'config.toml'),
    `\n[storage]\nurl = ${JSON.stringify(database)}\nlease_ttl = ${JSON.stringify(leaseTtl)}\n`,
  )
  return home
}
