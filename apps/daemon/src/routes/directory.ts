import {
  DIRECTORY_IMPORT_MAX,
  DIRECTORY_PAGE_MAX,
  EntryNotFoundError,
  handleOf,
  MAX_REGISTRATION_BYTES,
  RegistrationError,
} from '@spl/discovery'
import { InvalidJsonError, SplError } from '@spl/identity'
import { parseWith, searchParamsObject } from '@spl/transport'
import type { Context, Hono } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import { HTTPException } from 'hono/http-exception'
import { z } from 'zod'
import type { DaemonContext } from '../context.js'

// The did:sync directory (SPEC 8) when `[directory] enabled = true`: open doors, like the
// manifest. Nobody needs the admin token: a registration, an import and a delete are each
// signed by the DID they are about, and the lookups only read what those DIDs signed.

/** The directory is off on this daemon. */
class DirectoryDisabledError extends SplError {
  override readonly name = 'DirectoryDisabledError'
  constructor() {
    super('DIRECTORY_DISABLED', 'this daemon does not serve a did:sync directory.', {
      status: 404,
      fix: 'set [directory] enabled = true in its config.toml and restart it, or ask another directory',
    })
  }
}

const pageQuery = z
  .object({
    after: z.string().min(1).max(2000).optional(),
    limit: z.coerce.number().int().min(1).max(DIRECTORY_PAGE_MAX).optional(),
  })
  .strict()

const importBody = z.object({ entries: z.array(z.unknown()).max(DIRECTORY_IMPORT_MAX) }).strict()

/** The body as JSON: `application/json` only (415 otherwise), INVALID_JSON when it does not parse. */
async function jsonBody(c: Context): Promise<unknown> {
  const type = c.req.header('content-type')
  if (type === undefined || !/^application\/json\s*(;|$)/i.test(type.trim())) {
    throw new SplError(
      'UNSUPPORTED_MEDIA_TYPE',
      `this door takes application/json, not ${type?.slice(0, 100) ?? 'a body without a content type'}.`,
      {
        status: 415,
        fix: 'send the body as JSON with `Content-Type: application/json`',
      },
    )
  }
  let text: string
  try {
    text = await c.req.text()
  } catch (err) {
    if (err instanceof HTTPException) throw err // the size limit
    throw new InvalidJsonError(err)
  }
  try {
    return JSON.parse(text) as unknown
  } catch (err) {
    throw new InvalidJsonError(err)
  }
}

function pageOf(c: Context) {
  return parseWith(pageQuery, searchParamsObject(new URL(c.req.url).searchParams), 'the query')
}

/** `/directory/*` doors; each answers DIRECTORY_DISABLED when `[directory] enabled` is off. */
export function directoryRoutes(app: Hono, ctx: DaemonContext): void {
  const store = () => {
    if (!ctx.directory) throw new DirectoryDisabledError()
    return ctx.directory
  }

  // A registration is at most 8 KiB; its JSON wrapper gets a little room, and nothing more is read.
  const registerLimit = bodyLimit({
    maxSize: MAX_REGISTRATION_BYTES + 1024,
    onError: () => {
      throw new RegistrationError('REGISTRATION_TOO_LARGE', `the registration is over ${MAX_REGISTRATION_BYTES} bytes`)
    },
  })

  app.post('/directory/register', registerLimit, async (c) => {
    const directory = store()
    const body = await jsonBody(c)
    const jwt =
      body !== null && typeof body === 'object' && !Array.isArray(body) ? (body as { registration?: unknown }).registration : undefined
    if (jwt === undefined) throw new RegistrationError('REGISTRATION_INVALID', 'the body has no "registration" (the signed JWT)')
    const r = await directory.register(jwt)
    return c.json({ object: 'directory_registration', replaced: r.replaced, entry: r.entry }, r.replaced || r.unchanged ? 200 : 201)
  })

  app.post('/directory/import', async (c) => {
    const directory = store()
    const { entries } = parseWith(importBody, await jsonBody(c), 'body')
    return c.json(await directory.import(entries))
  })

  app.get('/directory/namespaces/:ns', async (c) => {
    const directory = store()
    const ns = c.req.param('ns')
    const page = await directory.byNamespace(ns, pageOf(c))
    return c.json({ object: 'list', namespace: ns, entries: page.entries, ...(page.next ? { next: page.next } : {}) })
  })

  app.get('/directory/resolve/:did', async (c) => {
    const directory = store()
    const did = c.req.param('did')
    // `did:sync:<handle>` is the handle's name: resolved through the entry that claims it.
    const handle = did.startsWith('did:sync:') ? handleOf(did) : undefined
    const entry = handle !== undefined ? await directory.byHandle(handle) : await directory.resolve(did)
    if (!entry) throw new EntryNotFoundError(did)
    return c.json(entry)
  })

  app.get('/directory/handle/:handle', async (c) => {
    const directory = store()
    const raw = c.req.param('handle')
    const handle = handleOf(raw)
    if (handle === undefined) {
      throw new SplError('HANDLE_INVALID', `'${raw.slice(0, 100)}' is not a handle`, {
        status: 400,
        fix: 'a handle is 1 to 63 lowercase letters, digits or inner hyphens (e.g. alice)',
      })
    }
    const entry = await directory.byHandle(handle)
    if (!entry) throw new EntryNotFoundError(`the handle ${handle}`)
    return c.json(entry)
  })

  app.get('/directory/export', async (c) => {
    const directory = store()
    const page = await directory.list(pageOf(c))
    return c.json({
      object: 'directory_export',
      exported_at: new Date().toISOString(),
      entries: page.entries.map((e) => e.jwt),
      ...(page.next ? { next: page.next } : {}),
    })
  })

  app.delete('/directory/:did', async (c) => {
    const directory = store()
    const did = c.req.param('did')
    await directory.remove(did, c.req.header('authorization'))
    return c.json({ object: 'directory_deletion', did, deleted: true })
  })
}
