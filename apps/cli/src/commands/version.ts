import { Command, Option } from 'clipanion'
import { versionText } from '../version.js'

// A plain clipanion command, not a BaseCommand: `spl version` must start as fast as node itself
// (issue 14), so it loads neither the daemon's config code nor the HTTP client.
export class VersionCommand extends Command {
  static override paths = [['version'], ['--version'], ['-v']]
  static override usage = Command.Usage({
    description: 'Print the spl version',
    examples: [['Print it', 'spl version']],
  })

  json = Option.Boolean('--json', false, { description: 'Print machine-readable JSON' })

  async execute(): Promise<number> {
    this.context.stdout.write(`${versionText(this.json)}\n`)
    return 0
  }
}
