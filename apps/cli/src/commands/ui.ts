import { spawn } from 'node:child_process'
import { Command, Option } from 'clipanion'
import { BaseCommand } from '../base.js'

interface LoginOut {
  path: string
  expires_at: string
}

/** The command that opens a URL in the desktop's browser, by platform. */
function opener(): { cmd: string; args: string[] } {
  if (process.platform === 'darwin') return { cmd: 'open', args: [] }
  if (process.platform === 'win32') return { cmd: 'cmd', args: ['/c', 'start', '""'] }
  return { cmd: 'xdg-open', args: [] }
}

/** Tries to open `url` in a browser; resolves to false when no opener could be started. */
function openInBrowser(url: string): Promise<boolean> {
  const { cmd, args } = opener()
  return new Promise((resolve) => {
    try {
      const child = spawn(cmd, [...args, url], { stdio: 'ignore', detached: true })
      child.once('error', () => resolve(false))
      child.once('spawn', () => {
        child.unref()
        resolve(true)
      })
    } catch {
      resolve(false)
    }
  })
}

export class UiCommand extends BaseCommand {
  static override paths = [['ui']]
  static override usage = Command.Usage({
    description: "Print (or open) a one-time login link to the daemon's web console",
    details: `
      The console at /ui shows the mesh live and takes the decisions the CLI takes (pairing
      requests, pause, consent). The link carries a login token that works once, within 5
      minutes; opening it gives the browser a session cookie for 12 hours (HttpOnly,
      SameSite=Strict). Run the command again for a new link. The link is a credential: do not
      paste it where others read.
    `,
    examples: [
      ['Print the link', 'spl ui'],
      ['Open it in the browser', 'spl ui --open'],
      ['As JSON', 'spl ui --json'],
    ],
  })
  open = Option.Boolean('--open', false, { description: 'Try to open the link in the default browser' })

  protected async run() {
    const login = await this.client().post<LoginOut>('/v1/ui/login', {})
    const url = `${this.daemonUrl()}${login.path}`
    const opened = this.open ? await openInBrowser(url) : false
    return this.render({ object: 'ui_login', url, expires_at: login.expires_at, opened }, () => {
      this.out(url)
      this.err(`one-time login link to the web console, valid until ${login.expires_at}`)
      if (this.open && !opened) this.err('could not start a browser here: open the link above yourself')
      return undefined
    })
  }
}
