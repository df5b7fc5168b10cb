import crypto from 'node:crypto'
import { isDidKey, type Keypair, openSealed, SplError, sealTo, verifySignature } from '@spl/identity'
import { THREAD_RE } from '@spl/records'
import { z } from 'zod'

/**
 * One deposit (SPEC 10): records of one thread that a sender would have served a receiver, signed
 * by the sender, then sealed to the receiver. The relay sees only the sealed box.
 *
 * The sealed plaintext is `<signature>.<payload>`: the payload is the UTF-8 JSON below, the
 * signature the sender's Ed25519 signature (base64url, 86 characters) over
 * `"spl-deposit-v1\n" ‖ payload`. Inside the box, so the relay cannot see who vouches for what;
 * checked by the receiver before any record is looked at.
 */

/** The largest sealed box a relay takes (SPEC 10: 1 MiB per deposit). */
export const MAX_DEPOSIT_BYTES = 1024 * 1024
/** What a sender puts in one deposit before sealing: the box is ~4/3 of it, well under the limit. */
export const DEPOSIT_PLAINTEXT_BUDGET = 640 * 1024

const DOMAIN = 'spl-deposit-v1\n'
const DEPOSIT_ID_RE = /^dep_[0-9a-f]{32}$/

const payloadSchema = z
  .object({
    v: z.literal(1),
    id: z.string().regex(DEPOSIT_ID_RE),
    iss: z.string().max(200),
    aud: z.string().max(200),
    thread: z.string().regex(THREAD_RE),
    iat: z.number().int().nonnegative(),
    exp: z.number().int().nonnegative(),
    records: z.array(z.unknown()).max(10_000),
  })
  .strict()

/** A deposit once opened and its sender's signature checked: the records are still unchecked envelopes. */
export interface OpenedDeposit {
  id: string
  sender: string
  thread: string
  iat: number
  exp: number
  records: unknown[]
}

/** Why a deposit was refused by its receiver (counted by code; nothing of it is stored). */
export class DepositRefusedError extends SplError {
  override readonly name = 'DepositRefusedError'
  constructor(
    code: 'DEPOSIT_UNSEALABLE' | 'DEPOSIT_FORGED' | 'DEPOSIT_MISADDRESSED' | 'DEPOSIT_EXPIRED' | 'DEPOSIT_REPLAYED' | 'DEPOSIT_UNSOLICITED',
    message: string,
  ) {
    super(code, message, {
      status: 400,
      fix: 'nothing to do here: the relay or the sender sent a deposit that cannot be used; it was dropped',
    })
  }
}

/** A new deposit id. */
export function newDepositId(): string {
  return `dep_${crypto.randomBytes(16).toString('hex')}`
}

/** Signs and seals records of `thread` for `receiver`. `records` are envelope JSON texts as the feed serves them. */
export async function sealDeposit(
  keypair: Keypair,
  receiver: string,
  deposit: { thread: string; records: readonly string[]; ttlMs: number; now?: number; id?: string },
): Promise<{ id: string; sealed: string }> {
  const now = deposit.now ?? Date.now()
  const id = deposit.id ?? newDepositId()
  const payload =
    `{"v":1,"id":"${id}","iss":${JSON.stringify(keypair.did)},"aud":${JSON.stringify(receiver)},` +
    `"thread":${JSON.stringify(deposit.thread)},"iat":${now},"exp":${now + deposit.ttlMs},"records":[${deposit.records.join(',')}]}`
  const sig = Buffer.from(keypair.sign(Buffer.from(DOMAIN + payload, 'utf8'))).toString('base64url')
  return { id, sealed: await sealTo(receiver, Buffer.from(`${sig}.${payload}`, 'utf8')) }
}

/**
 * Opens a deposit sealed to `keypair` and checks who signed it, for whom, and until when.
 * Throws DepositRefusedError with the reason; the relay's word is taken for nothing.
 */
export async function openDeposit(keypair: Keypair, sealed: string, now = Date.now()): Promise<OpenedDeposit> {
  let plain: string
  try {
    plain = Buffer.from(await openSealed(keypair, sealed)).toString('utf8')
  } catch (err) {
    throw new DepositRefusedError('DEPOSIT_UNSEALABLE', err instanceof Error ? err.message : String(err))
  }
  const dot = plain.indexOf('.')
  const sig = dot === 86 ? Buffer.from(plain.slice(0, dot), 'base64url') : null
  const text = plain.slice(dot + 1)
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch {
    throw new DepositRefusedError('DEPOSIT_FORGED', 'the opened deposit is not JSON')
  }
  const parsed = payloadSchema.safeParse(raw)
  if (!parsed.success)
    throw new DepositRefusedError('DEPOSIT_FORGED', `the opened deposit is malformed (${parsed.error.issues[0]?.path.join('.')})`)
  const p = parsed.data
  if (!isDidKey(p.iss)) throw new DepositRefusedError('DEPOSIT_FORGED', 'the deposit names no did:key as its sender')
  if (sig === null || sig.length !== 64 || !verifySignature(p.iss, Buffer.from(DOMAIN + text, 'utf8'), sig)) {
    throw new DepositRefusedError('DEPOSIT_FORGED', `the deposit is not signed by ${p.iss}`)
  }
  if (p.aud !== keypair.did) throw new DepositRefusedError('DEPOSIT_MISADDRESSED', `the deposit is for ${p.aud}, not this instance`)
  if (p.exp <= now) throw new DepositRefusedError('DEPOSIT_EXPIRED', `the deposit expired at ${new Date(p.exp).toISOString()}`)
  return { id: p.id, sender: p.iss, thread: p.thread, iat: p.iat, exp: p.exp, records: p.records }
}
