import { existsSync, statSync } from 'node:fs'
import path from 'node:path'
import { homePaths, loadConfig } from '@spl/daemon/home'
import { SplError } from '@spl/transport/identity'
import { Command } from 'clipanion'
import { BaseCommand } from '../base.js'

interface Check {
  name: string
  status: 'pass' | 'warn' | 'fail'
  message: string
  fix?: string
}

function modeCheck(name: string, file: string, allowed: number, kind: 'fail' | 'warn'): Check {
  if (!existsSync(file)) return { name, status: 'fail', message: `${file} is missing`, fix: 'spl init' }
  const mode = statSync(file).mode & 0o777
  if ((mode & ~allowed) !== 0) {
    return {
      name,
      status: kind,
      message: `${file} has mode ${mode.toString(8).padStart(4, '0')}: readable by others`,
      fix: `chmod ${allowed.toString(8)} ${file}`,
    }
  }
  return { name, status: 'pass', message: `${file} (${mode.toString(8).padStart(4, '0')})` }
}

const MARK = { pass: '✓', warn: '!', fail: '✗' }

/** A check's lines: the mark, name and first sentence, then one sentence a line, then the fix. */
function checkLines(c: Check): string[] {
  const [first, ...rest] = c.message.split('. ')
  const pad = `  ${''.padEnd(20)} `
  return [
    `${MARK[c.status]} ${c.name.padEnd(20)} ${rest.length ? `${first}.` : first}`,
    ...rest
      .join('. ')
      .split(/(?<=\.) /)
      .filter(Boolean)
      .map((line) => `${pad}${line}`),
    ...(c.fix && c.status !== 'pass' ? [`${pad}fix: ${c.fix}`] : []),
  ]
}

export class DoctorCommand extends BaseCommand {
  static override paths = [['doctor']]
  static override usage = Command.Usage({
    description: 'Check this instance and say what to fix',
    details: 'Exit 0 when every check passes, 1 when any warns, 2 when any fails.',
    examples: [
      ['Check', 'spl doctor'],
      ['For scripts', 'spl doctor --json'],
    ],
  })

  protected async run() {
    const home = this.env.home
    const p = homePaths(home)
    const checks: Check[] = []
    checks.push(modeCheck('home directory', home, 0o700, 'warn'))
    let keyFile = path.join(home, 'keys', 'primary.key')
    try {
      const cfg = loadConfig(home)
      keyFile = path.resolve(home, cfg.identity.key_path)
      checks.push({ name: 'config', status: 'pass', message: `${p.config} parses` })
    } catch (err) {
      checks.push({
        name: 'config',
        status: 'fail',
        message: err instanceof Error ? err.message : String(err),
        fix: err instanceof SplError ? err.fix : 'spl init',
      })
    }
    checks.push(modeCheck('key file', keyFile, 0o600, 'fail'))
    checks.push(modeCheck('admin token', p.adminToken, 0o600, 'fail'))
    try {
      const res = await this.client().get<{ checks: Check[] }>('/v1/doctor')
      checks.push({ name: 'daemon reachable', status: 'pass', message: this.daemonUrl() })
      checks.push(...res.checks)
    } catch (err) {
      checks.push({
        name: 'daemon reachable',
        status: 'fail',
        message: `${this.daemonUrl()}: ${err instanceof Error ? err.message : String(err)}`,
        fix: 'spl serve --daemon',
      })
    }
    const worst = checks.some((c) => c.status === 'fail') ? 2 : checks.some((c) => c.status === 'warn') ? 1 : 0
    return this.render({ object: 'doctor', status: ['pass', 'warn', 'fail'][worst], checks }, checks.flatMap(checkLines), worst)
  }
}
