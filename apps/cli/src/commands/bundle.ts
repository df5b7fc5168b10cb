import { existsSync } from 'node:fs'
import { homePaths, NotInitializedError, tuneDaemonProcess } from '@spl/daemon/home'
import { SplError } from '@spl/transport/identity'
import { Command, Option } from 'clipanion'
import { BaseCommand, EXIT } from '../base.js'

const THREAD_LIST_RE = /^th_[A-Za-z0-9_.:-]{1,200}$/

/** `--threads th_a,th_b` (commas or spaces) as a checked list. */
function threadList(text: string | undefined): string[] | undefined {
  if (text === undefined) return undefined
  const list = text.split(/[,\s]+/).filter(Boolean)
  const bad = list.find((t) => !THREAD_LIST_RE.test(t))
  if (list.length === 0 || bad !== undefined) {
    throw new SplError('INVALID_REQUEST', `--threads: '${(bad ?? text).slice(0, 80)}' is not a thread id.`, {
      status: 400,
      fix: 'name threads like th_demo, separated by commas',
    })
  }
  return list
}

/** A progress line on stderr, redrawn at most every 200 ms (a terminal only). */
function progressLine(enabled: boolean, label: string) {
  let last = 0
  return {
    update(done: number, total: number) {
      if (!enabled) return
      const now = Date.now()
      if (now - last < 200 && done < total) return
      last = now
      const pct = total > 0 ? Math.min(100, Math.floor((done / total) * 100)) : 100
      process.stderr.write(`\r${label}: ${done.toLocaleString('en-US')} / ${total.toLocaleString('en-US')} records (${pct} %)`)
    },
    end() {
      if (enabled && last > 0) process.stderr.write('\n')
    },
  }
}

export class ExportCommand extends BaseCommand {
  static override paths = [['export']]
  static override usage = Command.Usage({
    description: 'Write a signed, compressed bundle of this instance (back up, or move to a new machine)',
    details: `
      The bundle holds every record (as envelopes), the pairs with their cursors, the namespaces,
      grants and bindings, the peer links (token ids only, never a token), the blocklist, and the
      instance key unless \`--no-identity\`. A manifest lists each staged file with its SHA-256 and is
      signed by this instance. The daemon may keep running: the export reads the database beside it.
      With the key in it, the bundle is a secret: keep it like \`keys/primary.key\` (it is written 0600).
      See docs/backup.md.
    `,
    examples: [
      ['Back up everything', 'spl export --out spl-backup.spl'],
      ['Two threads only, without the key', 'spl export --out demo.spl --threads th_demo,th_notes --no-identity'],
      ['A script reads the summary', 'spl export --out backup.spl --json'],
    ],
  })

  outFile = Option.String('--out', { required: true, description: 'The bundle file to write (replaced once complete)' })
  threads = Option.String('--threads', { description: 'Only these threads (comma-separated); the registry threads always go too' })
  identity = Option.Boolean('--identity', true, { description: 'Include the instance key (--no-identity leaves it out)' })

  protected async run() {
    if (!existsSync(homePaths(this.env.home).config)) throw new NotInitializedError(this.env.home)
    const threads = threadList(this.threads)
    const { exportBundle } = await import('@spl/daemon')
    const progress = progressLine(this.interactive, 'exporting')
    const r = await exportBundle(this.env.home, {
      out: this.outFile,
      identity: this.identity,
      ...(threads ? { threads } : {}),
      onProgress: (p) => progress.update(p.records, p.total),
    })
    progress.end()
    return this.render(r, () => {
      this.lines([
        `Exported ${r.records.toLocaleString('en-US')} record(s), ${r.pairs} pair(s), ${r.links} link(s), ${r.namespaces} namespace(s), ${r.grants} grant(s), ${r.bindings} binding(s) to ${r.file} (${r.bytes.toLocaleString('en-US')} bytes, ${r.seconds.toFixed(1)} s)`,
        r.identity
          ? 'The bundle holds the instance key: keep it secret (spl import on a new machine makes that machine this instance).'
          : 'Without the key: an import makes the records, namespaces and grants another instance’s.',
      ])
      return undefined
    })
  }
}

/** The import report's shape, as the daemon package returns it. */
type Report = Awaited<ReturnType<typeof import('@spl/daemon')['importBundle']>>

function rejectedText(r: Record<string, number>): string {
  const parts = Object.entries(r).map(([code, n]) => `${code} ${n}`)
  return parts.length === 0 ? 'none rejected' : `rejected: ${parts.join(', ')}`
}

export class ImportCommand extends BaseCommand {
  static override paths = [['import']]
  static override usage = Command.Usage({
    description: 'Verify a bundle of spl export and take it in (safe to run again)',
    details: `
      First the whole bundle is checked: the archive, the manifest's signature, and every staged
      file's SHA-256. A bundle with one changed byte is refused with the reason and nothing is stored.
      Then every record passes the same ingest checks as a record pulled from a peer (schema, hash,
      signature, namespace, clock) and is stored, 1,000 per transaction; pairs with their cursors and
      the links come last. Run it again after an interruption: what is here already counts as a
      duplicate. Into a new home (or one that holds nothing yet), a bundle with the key makes this
      home that instance. The daemon must be stopped (spl serve --stop). Exit 1 when any record was
      rejected. See docs/backup.md.
    `,
    examples: [
      ['Move to this machine', 'SYNCROPEL_HOME=~/.syncro spl import spl-backup.spl'],
      ['Check a bundle without storing anything', 'spl import spl-backup.spl --dry-run'],
      ['Only one thread, for a script', 'spl import backup.spl --threads th_demo --json'],
    ],
  })

  file = Option.String({ name: 'FILE' })
  dryRun = Option.Boolean('--dry-run', false, { description: 'Verify and check every record, store nothing' })
  threads = Option.String('--threads', { description: 'Only these threads (comma-separated); the others are counted as skipped' })

  protected async run() {
    if (!existsSync(this.file)) {
      throw new SplError('FILE_NOT_FOUND', `${this.file} does not exist.`, {
        status: 400,
        fix: 'give the path of a bundle written by spl export',
      })
    }
    const threads = threadList(this.threads)
    // The daemon's GC setting: an import makes the same garbage as a catch-up (batches promoted
    // while their signatures are checked), collected at ~40 MB instead of piling up (peak RSS
    // ~215 → ~155 MB at 100,000 and 1,000,000 records, docs/performance.md).
    tuneDaemonProcess()
    const { createLogger, importBundle } = await import('@spl/daemon')
    const progress = progressLine(this.interactive, this.dryRun ? 'checking' : 'importing')
    let r: Report
    try {
      r = await importBundle(this.env.home, this.file, {
        dryRun: this.dryRun,
        ...(threads ? { threads } : {}),
        logger: createLogger({ level: 'warn' }),
        onProgress: (p) => progress.update(p.records, p.total),
      })
    } finally {
      progress.end()
    }
    const rejected = Object.values(r.records.rejected).reduce((a, b) => a + b, 0)
    const code = rejected > 0 ? EXIT.ERROR : EXIT.OK
    return this.render(
      r,
      () => {
        const verb = r.dry_run ? 'Would import' : 'Imported'
        const rate = r.seconds > 0 ? Math.round(r.records.received / r.seconds).toLocaleString('en-US') : '–'
        const who = {
          adopted: `this home is now ${r.did} (the bundle's instance)`,
          same: `same instance ${r.did}`,
          kept: `into ${r.did}, another instance than the bundle's ${r.source_did}: ${r.registry_resigned} registry entr(ies) signed anew, pairs start from the beginning, links left out`,
        }[r.identity]
        this.lines([
          `${verb} ${r.file}: ${who}`,
          `records: ${r.records.received.toLocaleString('en-US')} read, ${r.records.stored.toLocaleString('en-US')} stored, ${r.records.duplicates.toLocaleString('en-US')} duplicate(s), ${r.records.skipped} skipped, ${rejectedText(r.records.rejected)} (${r.seconds.toFixed(1)} s, ${rate}/s)`,
          `pairs: ${r.pairs.stored} restored, ${r.pairs.duplicates} here already, ${r.pairs.skipped} skipped`,
          `links: ${r.links.stored} restored, ${r.links.duplicates} here already, ${r.links.skipped} skipped`,
          `registry in the bundle: ${r.namespaces} namespace(s), ${r.grants} grant(s), ${r.bindings} binding(s)`,
        ])
        if (!r.dry_run && r.links.stored > 0) {
          this.err(
            'note: links come without the tokens peers issued to this instance; the daemon asks each peer for a fresh one when it starts (spl federation refresh <peer> does it now).',
          )
        }
        return undefined
      },
      code,
    )
  }
}
