import { ancestorsOf, assertNamespaceId, DEFAULT_NAMESPACE, NAMESPACE_REGISTRY_THREAD, type NamespaceStatus } from '@spl/consent'
import { SplError } from '@spl/identity'
import { NotFoundError, readJson } from '@spl/transport'
import type { Hono } from 'hono'
import { z } from 'zod'
import type { DaemonContext } from '../context.js'

const createSchema = z.object({ namespace: z.string(), description: z.string().max(1000).optional() }).strict()

function view(ctx: DaemonContext, ns: string) {
  const e = ctx.registry.namespace(ns)
  return e ? { object: 'namespace', namespace: e.namespace, status: e.status, description: e.description } : null
}

/** The namespace registry (SPEC 6.1): LEARN records on th_namespace_registry. */
export function namespaceRoutes(app: Hono, ctx: DaemonContext): void {
  async function setStatus(ns: string, status: NamespaceStatus, description?: string) {
    assertNamespaceId(ns)
    if (ns === DEFAULT_NAMESPACE) {
      throw new SplError('NAMESPACE_IMMUTABLE', "'default' always exists and cannot be changed.", {
        status: 409,
      })
    }
    const current = ctx.registry.namespace(ns)
    if (status !== 'active' && !current) throw new NotFoundError(`namespace '${ns}'`, 'spl namespace list')
    if (status === 'active' && current?.status === 'active' && (description === undefined || description === current.description)) {
      return { created: false }
    }
    await ctx.records.emit({
      act: 'LEARN',
      thread: NAMESPACE_REGISTRY_THREAD,
      body: {
        kind: 'core.namespace.v1',
        namespace: ns,
        status,
        description: description ?? current?.description ?? '',
      },
      parents: [],
      data_type: 'SCALAR',
    })
    return { created: true }
  }

  app.get('/v1/namespaces', (c) => c.json({ object: 'list', data: ctx.registry.namespaces().map((e) => view(ctx, e.namespace)) }))

  app.post('/v1/namespaces', async (c) => {
    const { namespace, description } = await readJson(c, createSchema)
    const { created } = await setStatus(namespace, 'active', description)
    // Records rejected for want of it (NAMESPACE_REJECTED) are taken in now, without a reset (issue 13).
    if (created) {
      void ctx.engine.retryRejected().catch((err) => ctx.logger.warn({ err }, 'retrying rejected records failed'))
    }
    return c.json({ ...view(ctx, namespace), created }, created ? 201 : 200)
  })

  app.get('/v1/namespaces/:ns', (c) => {
    const ns = c.req.param('ns')
    assertNamespaceId(ns)
    const chain = ancestorsOf(ns).map((a) => {
      const e = ctx.registry.namespace(a)
      return { namespace: a, status: e?.status ?? 'unregistered', active: e?.status === 'active' }
    })
    const entry = view(ctx, ns)
    return c.json({
      object: 'namespace',
      namespace: ns,
      status: entry?.status ?? 'unregistered',
      description: entry?.description ?? '',
      usable: chain.every((a) => a.active),
      chain,
    })
  })

  app.post('/v1/namespaces/:ns/archive', async (c) => {
    const ns = c.req.param('ns')
    await setStatus(ns, 'archived')
    return c.json(view(ctx, ns))
  })

  app.delete('/v1/namespaces/:ns', async (c) => {
    const ns = c.req.param('ns')
    await setStatus(ns, 'deleted')
    return c.json(view(ctx, ns))
  })
}
