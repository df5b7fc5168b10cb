import { SplError } from '@spl/identity'
import { RECORD_ID_RE, rowToEnvelope, THREAD_RE } from '@spl/records'
import { InvalidRequestError, NotFoundError, readJson } from '@spl/transport'
import type { Hono } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import type { DaemonContext } from '../context.js'
import { batchSchema, emitSchema } from '../records-service.js'

function intParam(v: string | undefined, name: string, dflt: number, max: number): number {
  if (v === undefined || v === '') return dflt
  if (!/^\d{1,16}$/.test(v) || Number(v) > max) throw new InvalidRequestError(`query.${name}: must be an integer from 0 to ${max}`)
  return Number(v)
}

/** A batch is at most 8 MiB of JSON. */
const batchLimit = bodyLimit({
  maxSize: 8 * 1024 * 1024,
  onError: () => {
    throw new SplError('BATCH_TOO_LARGE', 'a batch is at most 8 MiB of JSON.', {
      status: 413,
      fix: 'send fewer records per batch (spl emit --batch splits by itself)',
    })
  },
})

/** Local records: emit, read one, list threads, read a thread (all admin). */
export function recordRoutes(app: Hono, ctx: DaemonContext): void {
  app.post('/v1/records', async (c) => {
    const input = await readJson(c, emitSchema)
    const { created, row } = await ctx.records.emit(input)
    const env = rowToEnvelope(row)
    return c.json({ object: 'record', id: env.id, ...env.record, sig: env.sig, stored_at: env.stored_at }, created ? 201 : 200)
  })

  // Up to 1,000 records in one transaction, answered per record (issue 16).
  app.post('/v1/records/batch', batchLimit, async (c) => {
    const { records, atomic } = await readJson(c, batchSchema)
    return c.json(await ctx.records.emitBatch(records, atomic))
  })

  app.get('/v1/records/:id', async (c) => {
    const id = c.req.param('id')
    if (!RECORD_ID_RE.test(id)) throw new InvalidRequestError('a record id is 64 lowercase hex characters')
    const row = await ctx.store.getById(id)
    if (!row) throw new NotFoundError(`record ${id}`)
    return c.json({ object: 'envelope', ...rowToEnvelope(row), seq: row.seq })
  })

  app.get('/v1/threads', async (c) => {
    const threads = await ctx.store.listThreads()
    return c.json({
      object: 'list',
      data: threads.map((t) => ({ object: 'thread', thread: t.thread, records: t.records })),
    })
  })

  app.get('/v1/threads/:thread/records', async (c) => {
    const thread = c.req.param('thread')
    if (!THREAD_RE.test(thread)) {
      throw new SplError('INVALID_REQUEST', `'${thread.slice(0, 80)}' is not a thread id.`, {
        status: 400,
        fix: 'thread ids look like th_demo',
      })
    }
    const after = intParam(c.req.query('after'), 'after', 0, Number.MAX_SAFE_INTEGER)
    const limit = intParam(c.req.query('limit'), 'limit', 1000, 10_000) || 1000
    const rows = await ctx.store.listAfter(thread, after, limit + 1)
    const more = rows.length > limit
    if (more) rows.length = limit
    const last = rows[rows.length - 1]
    return c.json({
      object: 'list',
      data: rows.map((r) => ({ ...rowToEnvelope(r), seq: r.seq })),
      next: more && last ? String(last.seq) : null,
    })
  })
}
