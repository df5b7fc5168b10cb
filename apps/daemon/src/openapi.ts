type Op = [method: string, path: string, summary: string, auth: 'open' | 'admin' | 'proof' | 'session']

const OPS: Op[] = [
  ['get', '/health', 'Liveness: status, DID, version, uptime', 'open'],
  ['get', '/v1/identity', 'This instance: DID, namespace, handle', 'open'],
  ['get', '/openapi.json', 'This document', 'open'],
  ['get', '/.well-known/syncropel', 'The signed federation manifest (SPEC 8)', 'open'],
  ['get', '/.well-known/did.json', 'The did:web document of identity.web_domain (404 when unset)', 'open'],
  ['post', '/v1/records', 'Emit a record signed by this instance', 'admin'],
  ['get', '/v1/records/{id}', 'One record envelope', 'admin'],
  ['get', '/v1/threads', 'Threads with record counts', 'admin'],
  ['get', '/v1/threads/{thread}/records', 'Records of a thread in store order (?after=&limit=)', 'admin'],
  ['get', '/v1/namespaces', 'The namespace registry', 'admin'],
  ['post', '/v1/namespaces', 'Register (activate) a namespace', 'admin'],
  ['get', '/v1/namespaces/{ns}', 'A namespace and its ancestor chain (ns URL-encoded)', 'admin'],
  ['post', '/v1/namespaces/{ns}/archive', 'Archive a namespace', 'admin'],
  ['delete', '/v1/namespaces/{ns}', 'Delete a namespace', 'admin'],
  ['get', '/v1/sync/changes', 'Change feed for peers (?thread=&since=&limit=&feed=&timeout=&target_namespace=)', 'proof'],
  ['post', '/v1/sync/pairs', 'Create a pair {peer_did, peer_url, thread_id, mode?, poll_interval_ms?}', 'admin'],
  ['get', '/v1/sync/pairs', 'List pairs (?all=true includes stopped)', 'admin'],
  ['get', '/v1/sync/pairs/{id}', 'One pair', 'admin'],
  ['delete', '/v1/sync/pairs/{id}', 'Stop and remove a pair', 'admin'],
  ['post', '/v1/sync/pairs/{id}/pause', 'Pause a pair', 'admin'],
  ['post', '/v1/sync/pairs/{id}/resume', 'Resume a pair', 'admin'],
  ['post', '/v1/sync/pairs/{id}/kick', 'Pull now, clearing backoff', 'admin'],
  ['post', '/v1/sync/pairs/{id}/reset', 'Move the cursor back to the start', 'admin'],
  ['get', '/v1/sync/pairs/{id}/stats', 'Per-pair figures', 'admin'],
  ['get', '/v1/sync/pairs/{id}/rejections', 'Recently rejected records', 'admin'],
  ['get', '/v1/sync/health', 'Mesh health at a glance', 'admin'],
  ['post', '/v1/sync/once', 'One catch-up pull {peer, thread}; streams JSON lines', 'admin'],
  ['get', '/v1/consent/grants', 'Consent grants', 'admin'],
  ['post', '/v1/consent/grants', 'Grant cross-namespace consent', 'admin'],
  ['delete', '/v1/consent/grants/{id}', 'Revoke a grant', 'admin'],
  ['get', '/v1/consent/bindings', 'Caller DID → namespace bindings', 'admin'],
  ['post', '/v1/consent/bindings', 'Bind a caller DID to a namespace', 'admin'],
  ['delete', '/v1/consent/bindings/{did}', 'Remove a binding', 'admin'],
  ['get', '/v1/doctor', 'Server-side health checks', 'admin'],
  ['get', '/v1/discovery/peers', 'Discovered peers merged by DID (?method=&domain=&namespace=&directory=&did=&timeout_ms=)', 'admin'],
  ['get', '/v1/discovery/mdns', 'The mDNS roster: peers heard on the LAN, verified or not', 'admin'],
  ['post', '/v1/discovery/flush', 'Forget cached resolutions and manifest verdicts', 'admin'],
  [
    'post',
    '/v1/federation/pair',
    'Pairing handshake {initiator_did, initiator_url, nonce, threads, namespace_map, invite?, token_for_responder} (SPEC 9.1)',
    'proof',
  ],
  ['post', '/v1/federation/pair/{id}/poll', 'The initiator asks about its held request {nonce}', 'proof'],
  ['post', '/v1/federation/links/{id}/revoked', 'The peer tells this instance it revoked the link', 'proof'],
  ['post', '/v1/federation/links/{id}/renew', 'The peer asks for a fresh token (light re-handshake)', 'proof'],
  [
    'post',
    '/v1/federation/links',
    'Pair with a peer {peer_url, threads?, namespace_map?, invite?}: manifest, handshake, tokens, pairs',
    'admin',
  ],
  ['get', '/v1/federation/links', 'Peer links', 'admin'],
  ['get', '/v1/federation/links/{ref}', 'One link by id, peer DID or URL (token ids only)', 'admin'],
  ['post', '/v1/federation/links/{id}/poll', 'Ask the peer once about a held request', 'admin'],
  ['post', '/v1/federation/links/{ref}/pause', 'Pause a link and its pairs', 'admin'],
  ['post', '/v1/federation/links/{ref}/resume', 'Resume a link and its pairs', 'admin'],
  ['post', '/v1/federation/links/{ref}/refresh', 'Renew the token the peer issued to this instance now', 'admin'],
  ['post', '/v1/federation/links/{ref}/revoke', 'Revoke a link: token id revoked, pairs stopped, peer told', 'admin'],
  ['post', '/v1/federation/invites', 'A single-use invite code {threads?, namespace_map?, expires?}', 'admin'],
  ['get', '/v1/federation/requests', 'Held pairing requests', 'admin'],
  ['post', '/v1/federation/requests/{id}/approve', 'Approve a held request', 'admin'],
  ['post', '/v1/federation/requests/{id}/reject', 'Reject a held request', 'admin'],
  ['get', '/v1/federation/blocklist', 'Blocked DIDs', 'admin'],
  ['post', '/v1/federation/blocklist', 'Block a DID {did}: its requests are refused at once', 'admin'],
  ['delete', '/v1/federation/blocklist/{did}', 'Unblock a DID', 'admin'],
  ['get', '/metrics', 'Prometheus metrics', 'admin'],
  // The relay (SPEC 10): mailbox doors proof-checked, by the receiver's DID except for a deposit.
  ['post', '/v1/mailbox/{did}/register', 'Open the mailbox of the proof\'s DID at this relay', 'proof'],
  ['delete', '/v1/mailbox/{did}', 'Close the mailbox of the proof\'s DID; what waits is dropped', 'proof'],
  ['post', '/v1/mailbox/{did}', 'Deposit {sealed: <JWE sealed to did>}; 202, 507 full, 429 over the day, 413 over 1 MiB', 'proof'],
  ['get', '/v1/mailbox/{did}/receive', 'Deposits waiting for the proof\'s DID (?limit=&max_bytes=)', 'proof'],
  ['post', '/v1/mailbox/{did}/ack', 'Drop collected deposits {ids}', 'proof'],
  ['get', '/v1/relay', 'The relay at a glance: mailboxes, registrations, deposits made', 'admin'],
  ['get', '/v1/relay/mailboxes', 'On a relay: every mailbox and what waits in it', 'admin'],
  ['get', '/v1/relay/registrations', 'The relays this instance collects from', 'admin'],
  ['post', '/v1/relay/registrations', 'Register at a relay {url} (spl relay register)', 'admin'],
  ['delete', '/v1/relay/registrations', 'Unregister from a relay (?url=)', 'admin'],
  ['get', '/v1/relay/routes', 'Where this instance deposits for receivers that are away', 'admin'],
  ['post', '/v1/relay/routes', 'Deposit at a relay {url, for_peer?} (spl config relay set)', 'admin'],
  ['delete', '/v1/relay/routes', 'Remove a route (?url=&for_peer=)', 'admin'],
  // The web console (docs/console.md): the page is open; its data calls go through /ui/api/v1/* with the session.
  ['post', '/v1/ui/login', 'A one-time console login link {path, expires_at} (spl ui)', 'admin'],
  ['get', '/v1/sync/mesh', 'The Federation table in one answer: pairs pulled, peers served, links', 'admin'],
  ['get', '/v1/sync/pairs/{id}/history', 'One pair over the last hour: stored per minute, latency buckets', 'admin'],
  ['get', '/ui', 'Redirects to /ui/', 'open'],
  ['get', '/ui/', 'The web console page (its data needs a session)', 'open'],
  ['get', '/ui/assets/{file}', "The console's scripts and styles", 'open'],
  ['get', '/ui/login', 'Spends a login link (?token=): sets the session cookie, redirects to /ui/', 'open'],
  ['get', '/ui/api/session', "The session's CSRF token and expiry (same origin only)", 'session'],
  ['post', '/ui/api/logout', 'Ends the session', 'session'],
  // The did:sync directory ([directory] enabled = true): open doors, every write signed by its DID (SPEC 8).
  ['post', '/directory/register', 'Register {registration: <JWS typ spl-directory+jwt>}; 201 new, 200 replaced', 'open'],
  ['post', '/directory/import', 'Import {entries: [<registration JWS>…]} from another directory', 'open'],
  ['get', '/directory/namespaces/{ns}', 'Entries registered in a namespace (ns URL-encoded; ?after=&limit=)', 'open'],
  ['get', '/directory/resolve/{did}', 'The entry of a DID (or of did:sync:<handle>)', 'open'],
  ['get', '/directory/handle/{handle}', 'The entry that claims a handle', 'open'],
  ['get', '/directory/export', 'Every entry as its signed registration (?after=&limit=)', 'open'],
  ['delete', '/directory/{did}', 'Delete an entry (Authorization: Bearer <JWS typ spl-directory-delete+jwt by the DID>)', 'open'],
]

/** A compact OpenAPI 3.1 description of every door; the error envelope is shared. */
export function openApiDocument(version: string) {
  const paths: Record<string, Record<string, unknown>> = {}
  for (const [method, path, summary, auth] of OPS) {
    paths[path] ??= {}
    paths[path][method] = {
      summary,
      security: auth === 'open' ? [] : auth === 'admin' ? [{ admin: [] }] : auth === 'session' ? [{ uiSession: [] }] : [{ splProof: [] }],
      responses: {
        default: {
          description: 'error',
          content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
        },
      },
    }
  }
  return {
    openapi: '3.1.0',
    info: { title: 'spl daemon', version, description: 'See docs/http-api.md for bodies and examples.' },
    paths,
    components: {
      securitySchemes: {
        admin: {
          type: 'http',
          scheme: 'bearer',
          description: 'admin.token, or any loopback caller when api.trust_loopback',
        },
        uiSession: {
          type: 'apiKey',
          in: 'cookie',
          name: 'spl_ui_<12 hex>',
          description: 'The console session of `spl ui`, valid from the console page only, with its CSRF token in X-SPL-CSRF',
        },
        splProof: {
          type: 'apiKey',
          in: 'header',
          name: 'SPL-Proof',
          description: 'EdDSA JWS by the caller (SPEC 7.4)',
        },
      },
      schemas: {
        Error: {
          type: 'object',
          required: ['object', 'code', 'message'],
          properties: {
            object: { const: 'error' },
            code: { type: 'string' },
            message: { type: 'string' },
            fix: { type: 'string' },
          },
        },
      },
    },
  }
}
