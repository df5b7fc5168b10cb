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
