import { initHome } from '@spl/daemon/home'
import { Command, Option } from 'clipanion'
import { BaseCommand } from '../base.js'

export class InitCommand extends BaseCommand {
  static override paths = [['init']]
  static override usage = Command.Usage({
    description: 'Create this instance: a keypair, its did:key, the admin token and config.toml',
    details: `
      Creates \`$SYNCROPEL_HOME\` (default \`~/.syncro\`, mode 0700). Run it once on a fresh install.
      A second run changes nothing and prints the existing DID. \`--force\` makes a NEW key: peers that
      paired with the old DID must pair again. Records are kept.
    `,
    examples: [
      ['Initialise the default home', 'spl init'],
      ['Initialise another home with a handle', 'SYNCROPEL_HOME=/tmp/spl-a spl init --handle alice'],
      ['Replace the key', 'spl init --force'],
    ],
  })

  force = Option.Boolean('--force', false, { description: 'Make a new key even if one exists' })
  handle = Option.String('--handle', { description: 'A short name shown to peers' })
  namespace = Option.String('--namespace', { description: 'This instance home namespace (default: default)' })

  protected async run() {
    const r = initHome(this.env.home, {
      force: this.force,
      ...(this.handle ? { handle: this.handle } : {}),
      ...(this.namespace ? { namespace: this.namespace } : {}),
    })
    return this.render({ object: 'init', ...r }, () => {
      if (!r.created) return this.lines([`Already initialised at ${r.home}; nothing changed (use --force for a new key).`, r.did])
      if (r.previousDid) {
        this.err(`warning: new identity replaces ${r.previousDid}; peers that paired with it must re-pair.`)
        this.err(
          'warning: restart a running daemon (spl serve --stop, then spl serve --daemon) to use the new key; at that start it re-signs your namespaces, grants and bindings with it.',
        )
      }
      return this.lines([`Initialised ${r.home}`, r.did])
    })
  }
}
