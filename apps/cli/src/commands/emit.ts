import { SplError } from '@spl/transport/identity'
import { Command, Option } from 'clipanion'
import { BaseCommand } from '../base.js'

interface EmittedRecord {
  id: string
  thread: string
  clock: number
}

abstract class EmitBase extends BaseCommand {
  thread = Option.String('--thread', { required: true, description: 'Thread id (th_…)' })
  namespace = Option.String('--namespace', { description: 'Namespace of the record (body.namespace)' })
  body = Option.String('--body', { description: 'The body as a JSON object' })
  parents = Option.String('--parents', { description: 'Comma-separated parent record ids' })
  dataType = Option.String('--data-type', {
    description: 'SCALAR (default), FORMULA, DISTRIBUTION, REFERENCE, MORPHISM, VOID',
  })

  protected buildBody(text: string | undefined): Record<string, unknown> {
    let body: Record<string, unknown> = {}
    if (this.body !== undefined) {
      let parsed: unknown
      try {
        parsed = JSON.parse(this.body)
      } catch {
        throw new SplError('INVALID_JSON', '--body is not valid JSON.', {
          fix: `quote it: --body '{"text":"hi"}'`,
        })
      }
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
        throw new SplError('INVALID_REQUEST', '--body must be a JSON object.', {
          fix: `e.g. --body '{"text":"hi"}'`,
        })
      }
      body = parsed as Record<string, unknown>
    }
    if (text !== undefined) body['text'] = text
    if (this.namespace !== undefined) body['namespace'] = this.namespace
    return body
  }

  protected async emit(act: string, text: string | undefined): Promise<number> {
    const req: Record<string, unknown> = { act, thread: this.thread, body: this.buildBody(text) }
    if (this.parents)
      req['parents'] = this.parents
        .split(',')
        .map((p) => p.trim())
        .filter(Boolean)
    if (this.dataType) req['data_type'] = this.dataType
    const rec = await this.client().post<EmittedRecord>('/v1/records', req)
    return this.render(rec, rec.id)
  }
}

function actCommand(act: 'INTEND' | 'DO' | 'KNOW' | 'LEARN') {
  const name = act.toLowerCase()
  return class extends EmitBase {
    static override paths = [[name]]
    static override usage = Command.Usage({
      description: `Emit a signed ${act} record; prints its id`,
      details: 'The text goes to `body.text`. The daemon picks the clock, signs with this instance key and stores the record.',
      examples: [
        [`Emit in a thread`, `spl ${name} --thread th_demo "hello from A"`],
        [`In a registered namespace`, `spl ${name} --thread th_demo --namespace acme/ops "deploy done"`],
        [`With a JSON body`, `spl ${name} --thread th_demo --body '{"priority":2}' "ship it"`],
      ],
    })
    text = Option.String({ required: false, name: 'text' })
    protected async run() {
      return this.emit(act, this.text)
    }
  }
}

export const IntendCommand = actCommand('INTEND')
export const DoCommand = actCommand('DO')
export const KnowCommand = actCommand('KNOW')
export const LearnCommand = actCommand('LEARN')

export class EmitCommand extends EmitBase {
  static override paths = [['emit']]
  static override usage = Command.Usage({
    description: 'Emit a signed record of any act; prints its id',
    examples: [
      ['A KNOW record with a body', `spl emit --act KNOW --thread th_demo --body '{"text":"x"}'`],
      ['In a namespace', `spl emit --act KNOW --thread th_demo --body '{"namespace":"acme/ops","text":"x"}'`],
    ],
  })
  act = Option.String('--act', { required: true, description: 'INTEND DO KNOW LEARN GET PUT CALL MAP' })
  text = Option.String({ required: false, name: 'text' })
  protected async run() {
    return this.emit(this.act.toUpperCase(), this.text)
  }
}
