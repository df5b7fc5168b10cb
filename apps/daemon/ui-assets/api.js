// The console's only way to the daemon: /ui/api/v1/* (the /v1 admin doors) with the session's
// CSRF token in a header. The session cookie itself is HttpOnly: this script never sees it. The
// token comes once, in the page the login link answers (<meta name="spl-csrf">), and is kept in
// localStorage: that is per origin (port included), unlike cookies, so a page or server on
// another port of this host that gets the cookie still lacks the token.

const KEY = 'spl-console-csrf'
let csrf = ''

/** An error answer of the daemon: its code, message and fix (SPEC 7.6). */
export class ApiError extends Error {
  constructor(status, envelope) {
    super(envelope?.message ?? `HTTP ${status}`)
    this.status = status
    this.code = envelope?.code ?? `HTTP_${status}`
    this.fix = envelope?.fix
  }
}

async function answer(res) {
  const text = await res.text()
  let json = null
  try {
    json = text ? JSON.parse(text) : null
  } catch {
    json = null
  }
  if (!res.ok) throw new ApiError(res.status, json && json.object === 'error' ? json : { message: text.slice(0, 300) })
  return json
}

/** Takes the token of a fresh login (and drops the login link from the address bar), then checks the session; throws ApiError 401/403 without one. */
export async function startSession() {
  const meta = document.querySelector('meta[name="spl-csrf"]')
  if (meta) {
    localStorage.setItem(KEY, meta.getAttribute('content') ?? '')
    meta.remove()
    history.replaceState(null, '', '/ui/#/mesh')
  }
  csrf = localStorage.getItem(KEY) ?? ''
  return answer(await fetch('/ui/api/session', { cache: 'no-store', headers: { 'x-spl-csrf': csrf } }))
}

/** One call to a /v1 admin door through the console's session: `api('POST', '/v1/sync/pairs/x/pause')`. */
export async function api(method, path, body) {
  const headers = { 'x-spl-csrf': csrf }
  if (body !== undefined) headers['content-type'] = 'application/json'
  const res = await fetch(`/ui/api${path}`, {
    method,
    headers,
    cache: 'no-store',
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
  return answer(res)
}

/** Ends the session. */
export async function logout() {
  try {
    await answer(await fetch('/ui/api/logout', { method: 'POST', headers: { 'x-spl-csrf': csrf } }))
  } finally {
    localStorage.removeItem(KEY)
    csrf = ''
  }
}
