// The did:web resolver of @spl/discovery (the daemon's, with its real HTTPS fetch) on a clock
// the test moves: discovery-did-web.e2e.test.ts runs it inside its network namespace and sends
// one command per line on stdin, reading one JSON line per command:
//   resolve <domain|did:web>   → {ok, didKey, url, fromCache, fetchedAt} or {ok:false, code, message}
//   advance <ms>               → moves the clock
//   settle                     → waits until every fetch started (background refreshes too) is over
import { createInterface } from 'node:readline'
import { DidWebResolver, fetchDidWebDocument } from '@spl/discovery'

let now = Date.now()
let started = 0
let settled = 0
const resolver = new DidWebResolver({
  now: () => now,
  fetchDocument: (did) => {
    started++
    return fetchDidWebDocument(did, { timeoutMs: 5000 }).finally(() => {
      settled++
    })
  },
})

for await (const line of createInterface({ input: process.stdin })) {
  const [cmd, arg = ''] = line.trim().split(' ')
  let out
  try {
    if (cmd === 'resolve') {
      const r = await resolver.resolve(arg)
      out = { ok: true, didKey: r.didKey, url: r.url, fromCache: r.fromCache, fetchedAt: r.fetchedAt }
    } else if (cmd === 'advance') {
      now += Number(arg)
      out = { ok: true, now }
    } else if (cmd === 'settle') {
      while (settled < started) await new Promise((r) => setTimeout(r, 5))
      // The resolver stores what a fetch brought a few microtasks after it settles.
      await new Promise((r) => setImmediate(r))
      out = { ok: true, fetches: started }
    } else {
      out = { ok: false, code: 'UNKNOWN_COMMAND', message: line }
    }
  } catch (err) {
    out = { ok: false, code: err?.code, message: err?.message }
  }
  process.stdout.write(`${JSON.stringify(out)}\n`)
}
