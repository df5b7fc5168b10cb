import type { SplClient } from '@spl/transport/client'
import { Command, Option, type Usage } from 'clipanion'
import { BaseCommand } from './base.js'

/** A command that makes one admin call and prints its answer: JSON, or a line or a table. */
export interface AdminCommandSpec<T> {
  path: string[]
  usage: Usage
  /** The admin call; `arg` is the positional argument ('' when the command has none). */
  call: (api: SplClient, arg: string) => Promise<T>
  /** The lines for humans. */
  human: (res: T) => string | string[]
  /** What `--json` prints (default: the answer itself). */
  json?: (res: T) => unknown
}

/**
 * Makes the command class of `spec`; with `arg`, the command takes one positional argument of
 * that name (as shown in `--help`) and hands it to the call.
 */
export function adminCommand<T>(spec: AdminCommandSpec<T>, arg?: string) {
  class AdminCommand extends BaseCommand {
    static override paths = [spec.path]
    static override usage = Command.Usage(spec.usage)
    protected argument(): string {
      return ''
    }
    protected async run() {
      const res = await spec.call(this.client(), this.argument())
      return this.render(spec.json ? spec.json(res) : res, () => this.lines(spec.human(res)))
    }
  }
  if (arg === undefined) return AdminCommand
  return class extends AdminCommand {
    arg = Option.String({ name: arg })
    protected override argument(): string {
      return this.arg
    }
  }
}
