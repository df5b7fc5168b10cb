import { describe, expect, it } from 'vitest'
import { isRelayWrite } from './replicas.js'

describe('isRelayWrite: the relay doors whose success the other replicas must hear of', () => {
  it('mailboxes opened and closed, registrations and routes changed; not deposits, acks, receipts or reads', () => {
    const did = 'did:key:z6MkTest'
    const told: [string, string][] = [
      ['POST', `/v1/mailbox/${did}/register`],
      ['DELETE', `/v1/mailbox/${did}`],
      ['POST', '/v1/relay/registrations'],
      ['DELETE', '/v1/relay/registrations'],
      ['POST', '/v1/relay/routes'],
      ['DELETE', '/v1/relay/routes'],
    ]
    const quiet: [string, string][] = [
      ['POST', `/v1/mailbox/${did}`],
      ['POST', `/v1/mailbox/${did}/ack`],
      ['GET', `/v1/mailbox/${did}/receive`],
      ['GET', '/v1/relay/routes'],
      ['GET', '/v1/relay/registrations'],
      ['POST', '/v1/records'],
    ]
    for (const [m, p] of told) expect(isRelayWrite(m, p), `${m} ${p}`).toBe(true)
    for (const [m, p] of quiet) expect(isRelayWrite(m, p), `${m} ${p}`).toBe(false)
  })
})
