import { Command, Option } from 'clipanion'
import { adminCommand } from '../admin-command.js'
import { BaseCommand } from '../base.js'

// `spl relay …` (SPEC 10): the relays this instance collects from, and, on a relay, its
// mailboxes. `spl config relay …`: where this instance deposits for receivers that are away.

interface RegistrationOut {
  url: string
  relay_did: string
  registered_at: number
  last_poll_at: number | null
  last_ok_at: number | null
  last_error: string | null
}

interface MailboxOut {
  receiver: string
  registered_at: number
  waiting: number
  bytes: number
  oldest_at: number | null
}

interface RouteOut {
  receiver: string
  url: string
  did: string
  origin: 'config' | 'manifest'
  updated_at: number
}

const ago = (at: number | null) => (at === null ? 'never' : `${Math.max(0, Math.round((Date.now() - at) / 1000))} s ago`)

export const RelayRegisterCommand = adminCommand<{ url: string; relay_did: string; created: boolean }>(
  {
    path: ['relay', 'register'],
    usage: {
      description: 'Collect deposits from a relay while peers cannot reach this instance',
      details: `
        Reads the relay's signed manifest (its DID), registers this instance's DID there with a
        signed request, names the relay in this instance's manifest (so that senders learn it),
        and polls it from now on ([relay] poll_interval, 30 s by default). Every record collected
        is opened (sealed to this instance), its sender's signature checked, and ingested as a
        pull of the pair for that sender and thread would: verified, stored once, counted.
        The relay must run with spl serve --relay (or [relay] enabled = true).
      `,
      examples: [
        ['Register at a relay', 'spl relay register http://relay.example:9300'],
        ['As JSON', 'spl relay register http://relay.example:9300 --json'],
      ],
    },
    call: (api, url) => api.post('/v1/relay/registrations', { url }),
    human: (r) =>
      `${r.created ? 'registered at' : 'already registered at'} ${r.url} (relay ${r.relay_did}); deposits are collected from it`,
  },
  'url',
)

export const RelayUnregisterCommand = adminCommand<{ url: string; relay_error: string | null }>(
  {
    path: ['relay', 'unregister'],
    usage: {
      description: "Stop collecting from a relay and close this instance's mailbox there",
      details: `
        Asks the relay (signed) to close the mailbox, drops the relay from this instance's
        manifest and stops polling it. When the relay cannot be reached the registration is
        still removed here; what waited in the mailbox expires there ([relay] ttl).
      `,
      examples: [['Unregister', 'spl relay unregister http://relay.example:9300']],
    },
    call: (api, url) => api.delete(`/v1/relay/registrations?url=${encodeURIComponent(url)}`),
    human: (r) => [`unregistered from ${r.url}`, ...(r.relay_error ? [`warning: the relay did not hear it: ${r.relay_error}`] : [])],
  },
  'url',
)

export const RelayListCommand = adminCommand<{ data: RegistrationOut[] }>({
  path: ['relay', 'list'],
  usage: {
    description: 'The relays this instance collects deposits from',
    examples: [
      ['List', 'spl relay list'],
      ['As JSON', 'spl relay list --json'],
    ],
  },
  call: (api) => api.get('/v1/relay/registrations'),
  human: (r) =>
    r.data.length === 0
      ? ['no relay registered. Fix: spl relay register <url> (a daemon started with spl serve --relay)']
      : r.data.map((x) => `${x.url}  ${x.relay_did}  last ok ${ago(x.last_ok_at)}${x.last_error ? `  last error: ${x.last_error}` : ''}`),
  json: (r) => r.data,
})

export const RelayMailboxesCommand = adminCommand<{ data: MailboxOut[] }>({
  path: ['relay', 'mailboxes'],
  usage: {
    description: 'On a relay: every mailbox and what waits in it',
    details: `
      One line per registered receiver: its DID, how many deposits wait, their size and the
      oldest one's age. The relay holds sealed boxes only: no record, id or body is readable here.
    `,
    examples: [
      ['List mailboxes', 'spl relay mailboxes'],
      ['As JSON', 'spl relay mailboxes --json'],
    ],
  },
  call: (api) => api.get('/v1/relay/mailboxes'),
  human: (r) =>
    r.data.length === 0
      ? ['no mailbox yet: receivers open one with spl relay register <this relay URL>']
      : r.data.map((m) => `${m.receiver}  ${m.waiting} waiting  ${m.bytes} bytes  oldest ${ago(m.oldest_at)}`),
  json: (r) => r.data,
})

const routeLine = (r: { url: string; receiver: string }) => `${r.receiver === '*' ? 'every peer' : r.receiver}`

export class ConfigRelaySetCommand extends BaseCommand {
  static override paths = [['config', 'relay', 'set']]
  static override usage = Command.Usage({
    description: 'Deposit at this relay for peers that are away',
    details: `
      Receivers name the relays they collect from in their manifests, and a sender learns them
      while the receiver pulls. This sets one by hand: for one receiver (--for-peer DID) or,
      without it, for every receiver. A record a receiver has not pulled within
      [relay] deposit_after (60 s by default) is then sealed to it and deposited there.
    `,
    examples: [
      ['For every peer', 'spl config relay set http://relay.example:9300'],
      ['For one peer', 'spl config relay set http://relay.example:9300 --for-peer did:key:z6Mk…'],
    ],
  })
  url = Option.String({ name: 'url' })
  forPeer = Option.String('--for-peer', { description: 'Only for this receiver DID (default: every peer)' })

  protected async run() {
    const r = await this.client().post<{ url: string; relay_did: string; receiver: string }>('/v1/relay/routes', {
      url: this.url,
      ...(this.forPeer ? { for_peer: this.forPeer } : {}),
    })
    return this.render(r, () => this.lines([`deposits for ${routeLine(r)} go to ${r.url} (relay ${r.relay_did})`]))
  }
}

export class ConfigRelayUnsetCommand extends BaseCommand {
  static override paths = [['config', 'relay', 'unset']]
  static override usage = Command.Usage({
    description: 'Stop depositing at a relay set with spl config relay set',
    examples: [
      ['Unset', 'spl config relay unset http://relay.example:9300'],
      ['For one peer', 'spl config relay unset http://relay.example:9300 --for-peer did:key:z6Mk…'],
    ],
  })
  url = Option.String({ name: 'url' })
  forPeer = Option.String('--for-peer', { description: 'The receiver DID it was set for (default: every peer)' })

  protected async run() {
    const q = new URLSearchParams({ url: this.url, ...(this.forPeer ? { for_peer: this.forPeer } : {}) })
    const r = await this.client().delete<{ url: string; receiver: string }>(`/v1/relay/routes?${q}`)
    return this.render(r, () => this.lines([`no longer deposits at ${r.url} for ${routeLine(r)}`]))
  }
}

export const ConfigRelayListCommand = adminCommand<{ data: RouteOut[] }>({
  path: ['config', 'relay', 'list'],
  usage: {
    description: 'Where this instance deposits for receivers that are away',
    details: `
      Routes set by hand (origin config) and relays receivers named in their manifests
      (origin manifest). A receiver DID of * means every peer.
    `,
    examples: [['List', 'spl config relay list --json']],
  },
  call: (api) => api.get('/v1/relay/routes'),
  human: (r) =>
    r.data.length === 0
      ? ['no relay route: receivers name theirs in their manifests, or set one: spl config relay set <url>']
      : r.data.map((x) => `${x.receiver}  ${x.url}  ${x.did}  (${x.origin})`),
  json: (r) => r.data,
})
