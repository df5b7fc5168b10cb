import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createConnection } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from './pg-cluster.js'

/** A real haproxy (Debian's) balancing HTTP round robin over `backends` on a loopback port. */
export interface Haproxy {
  url: string
  stop(): void
}

export async function startHaproxy(backends: readonly string[]): Promise<Haproxy> {
  const dir = mkdtempSync(join(tmpdir(), 'spl-haproxy-'))
  const port = await freePort()
  const servers = backends.map((b, i) => `  server r${i + 1} ${new URL(b).host} check inter 500ms`).join('\n')
  const cfg = join(dir, 'haproxy.cfg')
  writeFileSync(
    cfg,
    `global\n  maxconn 4096\ndefaults\n  mode http\n  timeout connect 2s\n  timeout client 120s\n  timeout server 120s\n` +
      `frontend fe\n  bind 127.0.0.1:${port}\n  default_backend be\nbackend be\n  balance roundrobin\n${servers}\n`,
  )
  const child = spawn('haproxy', ['-f', cfg, '-db'], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d) => {
    stderr += String(d)
  })
  const stop = () => {
    child.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  }
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`haproxy exited: ${stderr}`)
    if (await listening(port)) break
    if (i > 100) {
      stop()
      throw new Error(`haproxy did not listen on ${port}: ${stderr}`)
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  return { url: `http://127.0.0.1:${port}`, stop }
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port }, () => {
      s.end()
      resolve(true)
    })
    s.on('error', () => resolve(false))
  })
}
