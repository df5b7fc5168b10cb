/** Options every spl error may carry: the HTTP status it maps to and the command that fixes it. */
export interface SplErrorOptions {
  status?: number
  fix?: string
  cause?: unknown
}

/**
 * The base of every error that can cross the wire. `code` is UPPER_SNAKE and stable; the
 * message says what went wrong, `fix` what to do about it.
 */
export class SplError extends Error {
  override readonly name: string = 'SplError'
  readonly status: number
  readonly fix: string | undefined

  constructor(
    readonly code: string,
    message: string,
    options: SplErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.status = options.status ?? 400
    this.fix = options.fix
  }

  /** The house error for anything thrown (see splErrorFrom): one way to the wire envelope. */
  static from(err: unknown, internal?: InternalDescription): SplError {
    return splErrorFrom(err, internal)
  }

  /** The error envelope of SPEC 7.6. */
  toJSON(): { object: 'error'; code: string; message: string; fix?: string } {
    return {
      object: 'error',
      code: this.code,
      message: this.message,
      ...(this.fix === undefined ? {} : { fix: this.fix }),
    }
  }
}

/** A DID that cannot be decoded into an Ed25519 public key. */
export class InvalidDidError extends SplError {
  override readonly name = 'InvalidDidError'
  constructor(
    readonly did: string,
    reason: string,
  ) {
    super('INVALID_DID', `'${did.slice(0, 120)}' is not a valid did:key: ${reason}.`, {
      status: 400,
      fix: 'use the did:key:z6Mk… printed by `spl init` or served at /v1/identity',
    })
  }
}

/** What an unexpected error says on the wire: never its own message, which may hold internals. */
export interface InternalDescription {
  message: string
  fix?: string
}

const DAEMON_INTERNAL: InternalDescription = {
  message: 'the daemon hit an unexpected error; it is logged.',
  fix: 'check the daemon log (spl serve --logs)',
}

/** Something failed that no caller can fix; the original error is the `cause` (for the log). */
export class InternalError extends SplError {
  override readonly name = 'InternalError'
  constructor(cause: unknown, description: InternalDescription = DAEMON_INTERNAL) {
    super('INTERNAL', description.message, {
      status: 500,
      cause,
      ...(description.fix === undefined ? {} : { fix: description.fix }),
    })
  }
}

/** A request body that does not parse as JSON. */
export class InvalidJsonError extends SplError {
  override readonly name = 'InvalidJsonError'
  constructor(cause?: unknown) {
    super('INVALID_JSON', 'the request body is not valid JSON.', {
      status: 400,
      fix: 'send a JSON object with content-type: application/json',
      cause,
    })
  }
}

/** A request body over the 16 MiB limit (the connection is closed after the answer). */
export class PayloadTooLargeError extends SplError {
  override readonly name = 'PayloadTooLargeError'
  constructor() {
    super('PAYLOAD_TOO_LARGE', 'the request body is over 16 MiB.', { status: 413, fix: 'send smaller batches' })
  }
}

/** The error codes (SQLite's and the OS's) that mean the disk, or the quota, is full. */
const DISK_FULL_CODES = new Set(['SQLITE_FULL', 'ENOSPC', 'EDQUOT'])

/** True when `err` (or one of its causes) says the disk is full: SQLITE_FULL, ENOSPC, EDQUOT. */
export function isDiskFull(err: unknown): boolean {
  let e: unknown = err
  for (let depth = 0; depth < 6 && e && typeof e === 'object'; depth++) {
    if (e instanceof SplError && e.code === 'DISK_FULL') return true
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string' && DISK_FULL_CODES.has(code)) return true
    if (e instanceof Error && /database or disk is full|no space left on device/i.test(e.message)) return true
    e = (e as { cause?: unknown }).cause
  }
  return false
}

/** A write failed because the disk holding the home (the database or the log) is full. */
export class DiskFullError extends SplError {
  override readonly name = 'DiskFullError'
  constructor(cause?: unknown) {
    super('DISK_FULL', "the disk that holds this instance's database is full: nothing could be written.", {
      status: 507,
      fix: 'free space on the disk of SYNCROPEL_HOME (df -h "$SYNCROPEL_HOME"); pulls and writes resume by themselves within seconds',
      cause,
    })
  }
}

interface ZodLike {
  name: 'ZodError'
  issues: { path: PropertyKey[]; message: string }[]
}

// Duck-typed so that this package depends on neither zod nor hono.
function isZodError(err: unknown): err is ZodLike {
  return err instanceof Error && err.name === 'ZodError' && Array.isArray((err as { issues?: unknown }).issues)
}

function isHttpException(err: unknown): err is Error & { status: number } {
  return (
    err instanceof Error &&
    typeof (err as { status?: unknown }).status === 'number' &&
    typeof (err as { getResponse?: unknown }).getResponse === 'function'
  )
}

/**
 * Turns anything thrown into the house error: an SplError passes through; a zod error is
 * INVALID_REQUEST naming the first offending field, a JSON SyntaxError INVALID_JSON, a hono
 * HTTPException its status (413: PAYLOAD_TOO_LARGE); anything else INTERNAL, whose message is
 * `internal` and never the error's own.
 */
function splErrorFrom(err: unknown, internal: InternalDescription = DAEMON_INTERNAL): SplError {
  if (err instanceof SplError) return err
  if (isZodError(err)) {
    const issue = err.issues[0]
    const where = issue?.path.length ? `${issue.path.map(String).join('.')}: ` : ''
    return new SplError('INVALID_REQUEST', `${where}${issue?.message ?? 'invalid'}`, { status: 400, cause: err })
  }
  if (err instanceof SyntaxError) return new InvalidJsonError(err)
  if (isDiskFull(err)) return new DiskFullError(err)
  if (isHttpException(err)) {
    if (err.status === 413) return new PayloadTooLargeError()
    return new SplError(`HTTP_${err.status}`, err.message || 'request refused', { status: err.status, cause: err })
  }
  return new InternalError(err, internal)
}
