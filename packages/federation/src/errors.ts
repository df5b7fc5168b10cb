import { SplError } from '@spl/identity'
import { PeerRefusedError, PullError } from '@spl/transport'

class FederationError extends SplError {
  override readonly name = 'FederationError'
}

/** A refusal of this side, with its code, status and fix. */
export const refuse = (code: string, status: number, message: string, fix?: string): SplError =>
  new FederationError(code, message, { status, ...(fix ? { fix } : {}) })

/** A peer's refusal (or a network failure towards it) as a house error carrying the peer's code and fix. */
export function peerError(err: unknown, what: string): SplError {
  if (err instanceof PeerRefusedError) {
    return new SplError(err.remoteCode ?? err.pullCode, `${what}: the peer answered ${err.httpStatus}: ${err.message}`, {
      status: err.httpStatus && err.httpStatus < 500 ? err.httpStatus : 502,
      ...(err.peerFix ? { fix: err.peerFix } : {}),
    })
  }
  if (err instanceof PullError)
    return new SplError(err.pullCode, `${what}: ${err.message}`, { status: 502, ...(err.fix ? { fix: err.fix } : {}) })
  return SplError.from(err)
}
