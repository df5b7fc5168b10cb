import { SplError } from '@spl/identity'
import { createResponseProof, PROOF_HEADER, type RequestProof, verifyRequestProof } from '@spl/transport'
import type { Context } from 'hono'
import type { DaemonContext } from '../context.js'

/** What a peer door answers: status, JSON body, and any extra headers (Retry-After). */
export interface PeerAnswer {
  status: number
  body: unknown
  headers?: Record<string, string>
}

/** Checks the SPL-Proof of a peer door (`aud` may be "*" only on the first contact: the pair request). */
async function peerProof(ctx: DaemonContext, c: Context, firstContact = false): Promise<RequestProof> {
  const url = new URL(c.req.url)
  return verifyRequestProof(c.req.header(PROOF_HEADER), {
    selfDid: ctx.keypair.did,
    method: c.req.method,
    pathAndQuery: url.pathname + url.search,
    replay: ctx.replay,
    allowAnyAudience: firstContact,
  })
}

/** Answers a peer door with this daemon's response proof over the exact body (SPEC 7.4). */
async function signed(ctx: DaemonContext, c: Context, proof: RequestProof, answer: PeerAnswer): Promise<Response> {
  const body = JSON.stringify(answer.body)
  const header = await createResponseProof(ctx.keypair, { callerDid: proof.iss, jti: proof.jti, body })
  return c.body(body, answer.status as 200, { ...answer.headers, 'content-type': 'application/json', [PROOF_HEADER]: header })
}

/**
 * A peer door: the proof first, then `handle`; once the caller is known, every answer is signed,
 * refusals too, so that a forged refusal (a PAIR_REJECTED on the way) cannot end a request.
 */
export function peerDoor(
  ctx: DaemonContext,
  handle: (c: Context, caller: string) => Promise<PeerAnswer>,
  firstContact = false,
  refusalHeaders?: (err: SplError) => Record<string, string> | undefined,
) {
  return async (c: Context) => {
    const proof = await peerProof(ctx, c, firstContact)
    let answer: PeerAnswer
    try {
      answer = await handle(c, proof.iss)
    } catch (err) {
      const e = SplError.from(err)
      // A fault of ours goes to the error handler; a full mailbox (507) is a refusal like any other.
      if (e.status >= 500 && e.status !== 507) throw err
      const headers = refusalHeaders?.(e)
      answer = { status: e.status, body: e.toJSON(), ...(headers ? { headers } : {}) }
    }
    return signed(ctx, c, proof, answer)
  }
}
