// Small DOM helpers: every text goes in through textContent, never as HTML.

/** An element: `h('button', { type: 'button', onclick }, 'Pause')`; attributes `null`/`false` are left out. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v)
    else if (k === 'class') el.className = v
    else if (v === true) el.setAttribute(k, '')
    else el.setAttribute(k, String(v))
  }
  append(el, children)
  return el
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue
    el.append(c instanceof Node ? c : document.createTextNode(String(c)))
  }
}

/** Replaces the children of `el`. */
export function fill(el, ...children) {
  el.replaceChildren()
  append(el, children)
  return el
}

/** did:key:z6MkabcdefXYZ… → z6Mkabcd…wxyz (the whole DID in the title). */
export function shortDid(did) {
  const tail = did.startsWith('did:key:') ? did.slice(8) : did
  return tail.length > 16 ? `${tail.slice(0, 8)}…${tail.slice(-4)}` : tail
}

export function didCell(did) {
  return h('span', { class: 'did', title: did }, shortDid(did))
}

/** "12 s ago", "in 3 min", from epoch ms or an ISO string. */
export function ago(at) {
  if (at === null || at === undefined) return '-'
  const t = typeof at === 'number' ? at : Date.parse(at)
  const s = Math.round((Date.now() - t) / 1000)
  const abs = Math.abs(s)
  const span =
    abs < 90
      ? `${abs} s`
      : abs < 5400
        ? `${Math.round(abs / 60)} min`
        : abs < 172800
          ? `${Math.round(abs / 3600)} h`
          : `${Math.round(abs / 86400)} d`
  return s >= 0 ? `${span} ago` : `in ${span}`
}

export function when(at) {
  if (at === null || at === undefined) return '-'
  const d = new Date(at)
  return h('time', { datetime: d.toISOString(), title: d.toISOString() }, ago(at))
}

/** An error as the daemon gives it: code, message and fix. */
export function errorBox(err) {
  const code = err?.code ?? 'ERROR'
  return h(
    'div',
    { class: 'error', role: 'alert' },
    h('p', {}, h('strong', {}, code), ': ', err?.message ?? String(err)),
    err?.fix ? h('p', { class: 'fix' }, 'Fix: ', err.fix) : null,
  )
}

/** What to do when a list is empty. */
export function empty(what, next) {
  return h('div', { class: 'empty' }, h('p', {}, what), next ? h('p', {}, next) : null)
}

/** A command the operator can copy. */
export function cmd(text) {
  return h('code', { class: 'cmd' }, text)
}

/** A table: `columns` are header labels, `rows` arrays of cells (or [cells, rowAttrs]). */
export function table(caption, columns, rows) {
  return h(
    'div',
    { class: 'scroll' },
    h(
      'table',
      { class: 'stack' },
      h('caption', {}, caption),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          columns.map((c) => h('th', { scope: 'col' }, c)),
        ),
      ),
      h(
        'tbody',
        {},
        rows.map((r) => {
          const [cells, attrs] = Array.isArray(r[0]) ? r : [r, {}]
          return h(
            'tr',
            attrs,
            cells.map((c) => h('td', {}, c)),
          )
        }),
      ),
    ),
  )
}

const statusEl = () => document.getElementById('status')

/** Says something in the status line (read by screen readers too). */
export function say(text, isError = false) {
  const el = statusEl()
  if (!el) return
  el.className = isError ? 'status error-status' : 'status'
  fill(el, text)
}

/**
 * A button that runs `action`; while it runs it is disabled; an error is shown in `where`
 * (or the status line) with its code and fix.
 */
export function actionButton(label, action, { where = null, danger = false, confirmText = null, name = null } = {}) {
  const b = h('button', { type: 'button', class: danger ? 'danger' : null, 'aria-label': name }, label)
  // Busy is aria-disabled, not disabled: a disabled button loses the keyboard focus.
  b.addEventListener('click', async () => {
    if (b.getAttribute('aria-disabled') === 'true') return
    if (confirmText && !window.confirm(confirmText)) return
    b.setAttribute('aria-disabled', 'true')
    if (where) where.replaceChildren()
    try {
      await action()
    } catch (err) {
      if (where) fill(where, errorBox(err))
      else say(`${err.code ?? 'ERROR'}: ${err.message}${err.fix ? ` Fix: ${err.fix}` : ''}`, true)
    } finally {
      b.removeAttribute('aria-disabled')
    }
  })
  return b
}

/** A labelled input: `field('Thread', { name: 'thread', placeholder: 'th_…' })`. */
export function field(label, attrs = {}, hint = null) {
  const id = attrs.id ?? `f-${Math.random().toString(36).slice(2, 9)}`
  const hintId = hint ? `${id}-hint` : null
  return h(
    'div',
    { class: 'field' },
    h('label', { for: id }, label),
    h('input', { id, type: 'text', 'aria-describedby': hintId, ...attrs }),
    hint ? h('p', { class: 'hint', id: hintId }, hint) : null,
  )
}

let sessionLost = () => {}
/** What to do when a call answers 401 (the session expired or was ended). */
export function onSessionLost(fn) {
  sessionLost = fn
}

/**
 * Runs `fn` now and every `ms` (never two at once) until the returned stop is called; an error is
 * shown in `where` with its code and fix, and cleared by the next success.
 */
export function every(ms, fn, where) {
  let stopped = false
  let running = false
  const run = async () => {
    if (stopped || running) return
    running = true
    try {
      await fn()
      if (where) where.replaceChildren()
    } catch (err) {
      if (err?.status === 401 || err?.code === 'CSRF_INVALID') {
        stopped = true
        sessionLost(err)
      } else if (where) fill(where, errorBox(err))
    } finally {
      running = false
    }
  }
  void run()
  const timer = setInterval(run, ms)
  return () => {
    stopped = true
    clearInterval(timer)
  }
}

/**
 * A region that is drawn again only when its data changed (so that focus stays on a button
 * while the data it belongs to does not change).
 */
export function region(draw) {
  const el = h('div')
  let last = null
  return {
    el,
    update(data) {
      const key = JSON.stringify(data)
      if (key === last) return
      last = key
      fill(el, draw(data))
    },
    force() {
      last = null
    },
  }
}

/** A page's heading (focused after navigation, so keyboard users start at the page). */
export function heading(text, intro = null) {
  return [h('h1', { tabindex: '-1' }, text), intro ? h('p', { class: 'intro' }, intro) : null]
}
