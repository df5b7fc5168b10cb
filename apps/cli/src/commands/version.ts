import { VERSION } from '@spl/daemon/home'
import { Command } from 'clipanion'
import { BaseCommand } from '../base.js'

export class VersionCommand extends BaseCommand {
  static override paths = [['version'], ['--version'], ['-v']]
  static override usage = Command.Usage({
    description: 'Print the spl version',
    examples: [['Print it', 'spl version']],
  })

  protected async run() {
    return this.render({ object: 'version', version: VERSION, node: process.version }, `spl ${VERSION}`)
  }
}
