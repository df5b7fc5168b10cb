import { shortDid } from '@spl/transport/identity'
import { Command, Option } from 'clipanion'
import { adminCommand } from '../admin-command.js'
import { BaseCommand } from '../base.js'

interface EnvelopeOut {
  id: string
  record: { actor: string; act: string; clock: number; body: Record<string, unknown>; thread: string }
  sig?: string
  stored_at: number
  redacted?: boolean
  seq: number
}

function compactBody(body: Record<string, unknown>): string {
  if (typeof body['text'] === 'string') return body['text']
  const s = JSON.stringify(body)
  return s.length > 100 ? `${s.slice(0, 97)}...` : s
}

export class ThreadRecordsCommand extends BaseCommand {
  static override paths = [['thread', 'records']]
  static override usage = Command.Usage({
    description: 'Print the records of a thread, in local store order',
    details:
      'One line per record: short id, actor (handle or short DID), act, clock, text or compact body. `--json` prints the envelopes (with `sig`).',
    examples: [
      ['Show a thread', 'spl thread records th_demo'],
      ['Envelopes as JSON', 'spl thread records th_demo --json'],
    ],
  })
  thread = Option.String({ name: 'thread' })

  protected async run() {
    const api = this.client()
    const all: EnvelopeOut[] = []
    let after = '0'
    for (;;) {
      const page = await api.get<{ data: EnvelopeOut[]; next: string | null }>(
        `/v1/threads/${encodeURIComponent(this.thread)}/records?after=${after}&limit=10000`,
      )
      all.push(...page.data)
      if (!page.next) break
      after = page.next
    }
    return this.render(
      all.map(({ seq: _seq, ...env }) => env),
      async () => {
        if (all.length === 0) {
          this.err(`no records in ${this.thread}`)
          return undefined
        }
        // Only the text names the actors, so only it asks who this instance is.
        const me = await api.get<{ did: string; handle: string | null }>('/v1/identity')
        for (const e of all) {
          const who = e.record.actor === me.did && me.handle ? me.handle : shortDid(e.record.actor)
          const text = e.redacted ? '[redacted]' : compactBody(e.record.body)
          this.out(`${e.id.slice(0, 12)}  ${who}  ${e.record.act}  ${e.record.clock}  ${text}`)
        }
        return undefined
      },
    )
  }
}

export const ThreadListCommand = adminCommand({
  path: ['thread', 'list'],
  usage: {
    description: 'List threads with their record counts',
    examples: [['List', 'spl thread list']],
  },
  call: (api) => api.get<{ data: { thread: string; records: number }[] }>('/v1/threads'),
  json: (res) => res.data,
  human: (res) => res.data.map((t) => `${t.thread}  ${t.records} record(s)`),
})
