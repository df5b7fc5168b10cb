// The console: a hash router over the pages; each page draws into <main> and returns how to stop
// its timers. No build step: the browser loads these ES modules as they are.
import { logout, startSession } from './api.js'
import { cmd, errorBox, fill, h, onSessionLost, say } from './dom.js'
import { consent } from './page-consent.js'
import { health } from './page-health.js'
import { links } from './page-links.js'
import { mesh } from './page-mesh.js'
import { namespaces } from './page-namespaces.js'
import { pair } from './page-pair.js'
import { peers } from './page-peers.js'
import { requests } from './page-requests.js'

const PAGES = { mesh, pair, peers, requests, links, consent, namespaces, health }
const TITLES = {
  mesh: 'Mesh',
  pair: 'Pair',
  peers: 'Peers',
  requests: 'Requests',
  links: 'Links',
  consent: 'Consent',
  namespaces: 'Namespaces',
  health: 'Health',
}

const main = document.getElementById('main')
let stop = null
let first = true

function loginNeeded(err) {
  stop?.()
  stop = null
  document.getElementById('nav').hidden = true
  document.getElementById('logout').hidden = true
  fill(
    main,
    h('h1', {}, 'Log in to the spl console'),
    err && err.status !== 401 ? errorBox(err) : null,
    h('p', {}, 'The console is for the operator of this daemon. On its machine, run'),
    h('p', {}, cmd('spl ui'), ' (or ', cmd('spl ui --open'), ')'),
    h('p', {}, 'and open the one-time link it prints. A link works once, within 5 minutes; the session it starts lasts 12 hours.'),
    err?.status === 401 ? h('p', { class: 'muted' }, `${err.code}: ${err.message}`) : null,
  )
}

function route() {
  const [name, ...rest] = location.hash.replace(/^#\/?/, '').split('/')
  const page = PAGES[name]
  if (!page) {
    location.replace('#/mesh')
    return
  }
  stop?.()
  stop = null
  main.replaceChildren()
  document.getElementById('status').replaceChildren()
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.getAttribute('href') === `#/${name}`) a.setAttribute('aria-current', 'page')
    else a.removeAttribute('aria-current')
  }
  document.title = `${TITLES[name]} · spl console`
  stop = page(main, rest.length ? decodeURIComponent(rest.join('/')) : undefined) ?? null
  if (!first) (main.querySelector('h1') ?? main).focus()
  first = false
}

async function start() {
  if (location.hash === '#/login-failed') {
    loginNeeded({
      status: 0,
      code: 'UI_LOGIN_INVALID',
      message:
        'this login link does not work: it was used already, it expired (links live 5 minutes), or the daemon restarted since it was made.',
      fix: 'run `spl ui` on the daemon’s machine and open the new link it prints',
    })
    history.replaceState(null, '', '/ui/')
    return
  }
  let s
  try {
    s = await startSession()
  } catch (err) {
    loginNeeded(err)
    return
  }
  fill(document.getElementById('who'), `· ${s.did.slice(0, 16)}…${s.did.slice(-4)} · ${s.version}`)
  document.getElementById('who').title = s.did
  document.getElementById('nav').hidden = false
  const out = document.getElementById('logout')
  out.hidden = false
  out.addEventListener('click', async () => {
    try {
      await logout()
    } catch {
      // the session is gone either way
    }
    loginNeeded(null)
    say('logged out')
  })
  onSessionLost((err) => loginNeeded(err))
  window.addEventListener('hashchange', route)
  route()
}

// The skip link focuses the content without touching the hash (which is the router's).
document.querySelector('.skip')?.addEventListener('click', (e) => {
  e.preventDefault()
  main.focus()
})

void start()
