import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'

/**
 * This process's name among the replicas of one database: the host, the pid and a random tail,
 * so a restarted replica is a new holder (it takes leases as any other would) and two processes
 * on one host never share a name.
 */
export function newReplicaId(): string {
  return `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`
}
