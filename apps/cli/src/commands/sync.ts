import { readAdminToken } from '@spl/daemon/home'
import { RemoteError } from '@spl/transport/client'
import { SplError } from '@spl/transport/identity'
import { Command, Option, UsageError } from 'clipanion'
import { BaseCommand } from '../base.js'

interface Progress {
  object: string
  pages: number
  received: number
  stored: number
  duplicates: number
  rejected: number
  cursor: string | null
  code?: string
  message?: string
  fix?: string
}

export class SyncCommand extends BaseCommand {
  static override paths = [['sync']]
  static override usage = Command.Usage({
    description: 'Pull a thread from a peer once, now, and show progress',
    details:
      'PEER is a URL, a DID of a paired peer, or a handle from the static peers in config. When a pair already pulls that thread, it is kicked instead.',
    examples: [
      ['Catch up from a URL', 'spl sync th_demo from http://localhost:9200'],
      ['From a paired peer by DID', 'spl sync th_demo from did:key:z6Mk…'],
    ],
  })
  thread = Option.String({ name: 'THREAD' })
  from = Option.String({ name: 'from' })
  peer = Option.String({ name: 'PEER' })

  protected async run() {
    if (this.from !== 'from') throw new UsageError('usage: spl sync <THREAD> from <PEER>')
    const url = `${this.daemonUrl()}/v1/sync/once`
    const token = readAdminToken(this.env.home)
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ peer: this.peer, thread: this.thread }),
    }).catch((err) => {
      throw new SplError('DAEMON_UNREACHABLE', `no spl daemon answers at ${this.daemonUrl()}.`, {
        fix: 'spl serve --daemon',
        cause: err,
      })
    })
    if (!res.ok || !res.body) {
      const env = (await res.json().catch(() => ({}))) as { code?: string; message?: string; fix?: string }
      throw new RemoteError(env.code ?? `HTTP_${res.status}`, env.message ?? 'sync failed', env.fix ? { fix: env.fix } : {})
    }
    const tty = this.interactive
    const started = Date.now()
    let last: Progress | undefined
    let buf = ''
    const decoder = new TextDecoder()
    for await (const chunk of res.body) {
      buf += decoder.decode(chunk as Uint8Array, { stream: true })
      let nl = buf.indexOf('\n')
      while (nl >= 0) {
        const line = buf.slice(0, nl)
        buf = buf.slice(nl + 1)
        nl = buf.indexOf('\n')
        if (!line) continue
        const msg = JSON.parse(line) as Progress
        if (msg.object === 'error') {
          if (tty) process.stderr.write('\n')
          throw new RemoteError(msg.code ?? 'SYNC_FAILED', msg.message ?? '', msg.fix ? { fix: msg.fix } : {})
        }
        last = msg
        if (tty) {
          const rate = Math.round(msg.received / Math.max(0.001, (Date.now() - started) / 1000))
          const spin = '⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏'[msg.pages % 10]
          process.stderr.write(`\r${spin} pulled ${msg.received} record(s) in ${msg.pages} page(s), ${msg.stored} new, ${rate} rec/s   `)
        }
      }
    }
    if (tty) process.stderr.write('\n')
    if (!last)
      throw new SplError('SYNC_FAILED', 'the daemon closed the stream without a result.', {
        fix: 'spl serve --logs',
      })
    return this.render(
      last,
      `pulled ${last.received} record(s): ${last.stored} new, ${last.duplicates} duplicate(s), ${last.rejected} rejected; cursor ${last.cursor ?? '(start)'}`,
    )
  }
}
