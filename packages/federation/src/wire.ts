// The bodies of the pairing handshake and of link management between peers (SPEC 9.1). Both
// ends parse with these schemas.
import { isDidKey } from '@spl/identity'
import { THREAD_RE } from '@spl/records'
import { z } from 'zod'

export const PAIR_PATH = '/v1/federation/pair'
export const pollPath = (linkId: string) => `/v1/federation/pair/${linkId}/poll`
export const peerRevokePath = (linkId: string) => `/v1/federation/links/${linkId}/revoked`
export const renewPath = (linkId: string) => `/v1/federation/links/${linkId}/renew`

const NS_RE = /^[a-z0-9][a-z0-9_-]*(\/[a-z0-9][a-z0-9_-]*)*$/
const namespaceId = z.string().max(256).regex(NS_RE, 'a namespace id (SPEC 6.1)')
const did = z.string().max(200).refine(isDidKey, 'must be a did:key (did:key:z6Mk…)')
const jwt = z
  .string()
  .max(8192)
  .regex(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/, 'a compact JWS')
export const nonceSchema = z.string().regex(/^[A-Za-z0-9_-]{22,64}$/, '16 to 48 random bytes, base64url')

/** `--map local:peer`, from the sender's side: `local` is the sender's namespace. */
export const namespaceMapSchema = z
  .array(z.object({ local: namespaceId, peer: namespaceId }).strict())
  .max(1, 'one mapping per link: a DID is bound to one namespace (SPEC 6.4)')
export type NamespaceMap = z.output<typeof namespaceMapSchema>

/** `POST /v1/federation/pair` (SPEC 9.1 step 2). */
export const pairRequestSchema = z
  .object({
    initiator_did: did,
    initiator_url: z.url({ protocol: /^https?$/ }).max(2000),
    nonce: nonceSchema,
    threads: z.array(z.string().regex(THREAD_RE, 'a thread id (th_…)')).max(100),
    namespace_map: namespaceMapSchema.default([]),
    invite: z.string().max(100).optional(),
    token_for_responder: jwt,
  })
  .strict()
export type PairRequest = z.output<typeof pairRequestSchema>

/** `POST /v1/federation/pair/{id}/poll`. */
export const pollRequestSchema = z.object({ nonce: nonceSchema }).strict()

/** `POST /v1/federation/links/{id}/renew`: nothing but the proof. */
export const renewRequestSchema = z.object({}).strict()

/** `POST /v1/federation/links/{id}/revoked`: the peer tells us it revoked the link. */
export const peerRevokeSchema = z.object({ reason: z.string().max(500).optional() }).strict()

/** An accepted handshake (200). */
export const pairAcceptedSchema = z.looseObject({
  object: z.literal('federation_pair'),
  pair_id: z.string(),
  state: z.literal('active'),
  token_for_initiator: jwt,
  responder_manifest: z.unknown(),
})
export type PairAccepted = z.output<typeof pairAcceptedSchema>

/** A held handshake (202). */
export const pairPendingSchema = z.looseObject({
  object: z.literal('federation_pair'),
  pair_id: z.string(),
  state: z.literal('pending'),
  expires_at: z.string().optional(),
})

export const renewAnswerSchema = z.looseObject({ object: z.literal('federation_token'), token: jwt })
