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
    return bodyOf(this.body, text, this.namespace)
  }

  protected async emit(act: string, text: string | undefined): Promise<number> {
    const req: Record<string, unknown> = { act, thread: this.thread, body: this.buildBody(text) }
    if (this.parents) req['parents'] = splitIds(this.parents)
    if (this.dataType) req['data_type'] = this.dataType
    const rec = await this.client().post<EmittedRecord>('/v1/records', req)
    return this.render(rec, rec.id)
  }
}

/** `a, b,c` → ['a', 'b', 'c']. */
function splitIds(list: string): string[] {
  return list
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)
}

/** The body of --body (a JSON object), with the text and namespace put in. */
function bodyOf(json: string | undefined, text: string | undefined, namespace: string | undefined): Record<string, unknown> {
  let body: Record<string, unknown> = {}
  if (json !== undefined) {
    let parsed: unknown
    try {
      parsed = JSON.parse(json)
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
  if (namespace !== undefined) body['namespace'] = namespace
  return body
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

interface BatchOut {
  committed: boolean
  created: number
  duplicates: number
  rejected: number
  results: ({ index: number; id: string; status: string } | { index: number; error: { code: string; message: string; fix?: string } })[]
}

/** Records per batch request (the daemon takes up to 1,000). */
const BATCH = 1000

export class EmitCommand extends BaseCommand {
  static override paths = [['emit']]
  static override usage = Command.Usage({
    description: 'Emit a signed record of any act, or many from an NDJSON file (--batch)',
    details: `
      With --act and --thread, one record: prints its id. With --batch FILE (or - for standard
      input), one record per line as JSON objects with the fields of POST /v1/records (act,
      thread, body, parents, data_type, clock), sent 1,000 at a time; each batch is signed and
      stored in one transaction, and a bad line is reported with its line number and code
      without stopping the others (--atomic: a bad line stores nothing of its batch). Progress
      goes to stderr on a terminal. Exit 1 when any line was rejected.
    `,
    examples: [
      ['A KNOW record with a body', `spl emit --act KNOW --thread th_demo --body '{"text":"x"}'`],
      ['In a namespace', `spl emit --act KNOW --thread th_demo --body '{"namespace":"acme/ops","text":"x"}'`],
      ['Many, from a file', 'spl emit --batch records.ndjson'],
      ['From a pipe, as JSON', `jq -c '.[]' records.json | spl emit --batch - --json`],
    ],
  })
  act = Option.String('--act', { description: 'INTEND DO KNOW LEARN GET PUT CALL MAP' })
  thread = Option.String('--thread', { description: 'Thread id (th_…)' })
  namespace = Option.String('--namespace', { description: 'Namespace of the record (body.namespace)' })
  body = Option.String('--body', { description: 'The body as a JSON object' })
  parents = Option.String('--parents', { description: 'Comma-separated parent record ids' })
  dataType = Option.String('--data-type', { description: 'SCALAR (default), FORMULA, DISTRIBUTION, REFERENCE, MORPHISM, VOID' })
  batch = Option.String('--batch', { description: 'An NDJSON file of records (- for standard input)' })
  atomic = Option.Boolean('--atomic', false, { description: 'With --batch: a bad line stores nothing of its batch' })
  text = Option.String({ required: false, name: 'text' })

  protected async run() {
    if (this.batch !== undefined) return this.#batch(this.batch)
    if (!this.act || !this.thread) {
      throw new SplError('USAGE', 'spl emit needs --act and --thread (or --batch FILE).', {
        fix: 'spl emit --act KNOW --thread th_demo "text", or spl emit --batch records.ndjson',
      })
    }
    const req: Record<string, unknown> = {
      act: this.act.toUpperCase(),
      thread: this.thread,
      body: bodyOf(this.body, this.text, this.namespace),
    }
    if (this.parents) req['parents'] = splitIds(this.parents)
    if (this.dataType) req['data_type'] = this.dataType
    const rec = await this.client().post<EmittedRecord>('/v1/records', req)
    return this.render(rec, rec.id)
  }

  async #batch(file: string): Promise<number> {
    const { createReadStream } = await import('node:fs')
    const { createInterface } = await import('node:readline')
    const input = file === '-' ? process.stdin : createReadStream(file)
    const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY })
    const api = this.client()
    const totals = { lines: 0, created: 0, duplicates: 0, rejected: 0 }
    const errors: { line: number; code: string; message: string }[] = []
    let chunk: unknown[] = []
    let lineNos: number[] = []
    const progress = process.stderr.isTTY === true
    const send = async () => {
      if (chunk.length === 0) return
      const r = await api.post<BatchOut>('/v1/records/batch', { records: chunk, atomic: this.atomic })
      totals.created += r.created
      totals.duplicates += r.duplicates
      totals.rejected += r.results.filter((x) => 'error' in x).length
      for (const x of r.results) if ('error' in x) errors.push({ line: lineNos[x.index]!, code: x.error.code, message: x.error.message })
      chunk = []
      lineNos = []
      if (progress)
        process.stderr.write(
          `\r${totals.lines} line(s): ${totals.created} stored, ${totals.duplicates} duplicate(s), ${totals.rejected} rejected`,
        )
    }
    let n = 0
    for await (const line of lines) {
      n++
      if (line.trim() === '') continue
      totals.lines++
      let value: unknown
      try {
        value = JSON.parse(line)
      } catch {
        totals.rejected++
        errors.push({ line: n, code: 'INVALID_JSON', message: 'the line is not JSON' })
        continue
      }
      chunk.push(value)
      lineNos.push(n)
      if (chunk.length >= BATCH) await send()
    }
    await send()
    if (progress) process.stderr.write('\n')
    const out = { object: 'batch_emit', ...totals, errors }
    return this.render(
      out,
      () =>
        this.lines([
          `${totals.lines} line(s): ${totals.created} stored, ${totals.duplicates} duplicate(s), ${totals.rejected} rejected`,
          ...errors.slice(0, 20).map((e) => `  line ${e.line}: ${e.code}: ${e.message}`),
          ...(errors.length > 20 ? [`  … and ${errors.length - 20} more (--json lists them all)`] : []),
        ]),
      totals.rejected > 0 ? 1 : 0,
    )
  }
}
