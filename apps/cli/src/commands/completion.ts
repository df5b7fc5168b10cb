import { Command } from 'clipanion'
import { BaseCommand } from '../base.js'

export class CompletionCommand extends BaseCommand {
  static override paths = [['completion']]
  protected async run() {
    return 0
  }
}
export class CompleteCommand extends BaseCommand {
  static override paths = [['__complete']]
  static override usage = Command.Usage({ description: 'internal' })
  protected async run() {
    return 0
  }
}
