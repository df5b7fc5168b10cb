import path from 'node:path'
import { Command, Option } from 'clipanion'
import { BaseCommand, EXIT } from '../base.js'

/** The report's shape, as the daemon package returns it. */
type Report = Awaited<ReturnType<typeof import('@spl/daemon')['migrateStorage']>>

/** The URL without its password, for the line printed before the daemon package is loaded. */
function redact(url: string): string {
  return url.replace(/^([a-z]+:\/\/[^:/@]*:)[^@]*@/i, '$1***@')
}

/** Progress on stderr, one line per table redrawn at most every 200 ms (a terminal only). */
function tableProgress(enabled: boolean) {
  let current = ''
  let last = 0
  return {
    update(table: string, done: number, total: number) {
      if (!enabled) return
      const now = Date.now()
      if (table !== current) {
        if (current !== '') process.stderr.write('\n')
        current = table
        last = 0
      }
      if (now - last < 200 && done < total) return
      last = now
      process.stderr.write(`\r  ${table}: ${done.toLocaleString('en-US')} / ${total.toLocaleString('en-US')} rows`)
    },
    end() {
      if (enabled && current !== '') process.stderr.write('\n')
    },
  }
}

export class StorageMigrateCommand extends BaseCommand {
  static override paths = [['storage', 'migrate']]
  static override usage = Command.Usage({
    description: "Copy this home's SQLite store (spl.db) into PostgreSQL, resumable and verified",
    details: `
      Migrates every package's tables on the target database, then copies every table of spl.db:
      records keep their sequence numbers and the store keeps its epoch, so the cursors of this
      home's pairs and of every peer pulling from it stay valid. Afterwards each table is verified
      (row counts, records by their ids at their seqs, other tables row by row).

      Interrupted (Ctrl-C, kill -9, a lost connection)? Run the same command again: records resume
      above the last batch copied, the other tables are copied again whole. A finished migration
      run again copies nothing and verifies again.

      The daemon must be stopped (spl serve --stop); the target must be empty or hold this same
      store (an interrupted or earlier run). spl.db is only read: the home keeps working on SQLite
      until you point its config at PostgreSQL, which this command does not do.

      Exit 0: copied and verified. 1: verification found a difference. 2: nothing verified (a usage
      mistake, PostgreSQL unreachable or refusing, the daemon running, another store in the
      target). See docs/postgres.md.
    `,
    examples: [
      ['Move this home to PostgreSQL', 'spl storage migrate --to postgres://spl:secret@db.internal:5432/spl'],
      ['Another home, for a script', 'spl storage migrate --home /srv/spl --to postgres://spl@db/spl --json'],
      ['Then run on it', 'spl serve --daemon --database postgres://spl:secret@db.internal:5432/spl'],
    ],
  })

  to = Option.String('--to', { required: true, description: 'The postgres:// URL of the target database' })
  home = Option.String('--home', { description: 'The home to migrate (default: SYNCROPEL_HOME, else ~/.syncro)' })

  protected async run() {
    const home = this.home === undefined ? this.env.home : path.resolve(this.home)
    const { migrateStorage } = await import('@spl/daemon')
    const progress = tableProgress(this.interactive)
    if (this.interactive) this.err(`Migrating ${path.join(home, 'spl.db')} to ${redact(this.to)}`)
    let r: Report
    try {
      r = await migrateStorage(home, { to: this.to, onProgress: (t, done, total) => progress.update(t, done, total) })
    } finally {
      progress.end()
    }
    this.#finished = true
    return this.render(r, () => this.human(r), r.verified ? EXIT.OK : EXIT.ERROR)
  }

  private human(r: Report): number {
    const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`
    const rate = r.records.copied > 0 ? `, ${Math.round(r.records.copied / (r.elapsed_ms / 1000)).toLocaleString('en-US')} records/s` : ''
    const ranges = (list: readonly { from_seq: number; to_seq: number }[]) => list.map((m) => `${m.from_seq}-${m.to_seq}`).join(', ')
    const resumed = r.records.resumed_after_seq > 0 ? ` (resumed above seq ${r.records.resumed_after_seq})` : ''
    const recopied = r.records.recopied.length > 0 ? `; seq ${ranges(r.records.recopied)} differed and were copied again` : ''
    this.out(`${r.verified ? 'Migrated' : 'Copied'} ${r.source} to ${r.target} in ${s(r.elapsed_ms)}: epoch ${r.epoch ?? '(none)'}`)
    this.out(
      `records: ${r.records.total.toLocaleString('en-US')}, ${r.records.copied.toLocaleString('en-US')} copied by this run${resumed}${rate}${recopied}`,
    )
    const width = Math.max(...r.tables.map((t) => t.table.length))
    for (const t of r.tables) {
      const mark = t.verified ? '✓' : '✗'
      const diff = t.mismatched && t.mismatched.length > 0 ? `, rows differ in seq ${ranges(t.mismatched)}` : ''
      this.out(`  ${mark} ${t.table.padEnd(width)}  source ${t.source}, target ${t.target}${diff}`)
    }
    if (!r.verified) {
      this.err(
        'Error: MIGRATE_VERIFY_FAILED: the target differs from the source (marked ✗): it holds rows the home does not (a daemon wrote to it?). Fix: migrate into a new empty database, or run again to copy the marked tables anew',
      )
      return EXIT.ERROR
    }
    this.out('Verified: every table has the same rows.')
    if (r.collation !== 'C' && r.collation !== 'POSIX') {
      this.err(
        `note: the database's collation is ${r.collation}, not C: text sorts otherwise than in SQLite (create it with --lc-collate C, docs/postgres.md)`,
      )
    }
    if (r.config_points_here) this.out("Next: the home's config already names this database; start the daemon: spl serve --daemon")
    else {
      this.out('Next: point the home at it, in config.toml (with your password in place of ***):')
      this.out(`  [storage]\n  url = "${r.target}"`)
      this.out(`or for one run: spl serve --daemon --database '${r.target}'. spl.db stays as it was (a fallback until you remove it).`)
    }
    return EXIT.OK
  }

  #finished = false

  override async execute(): Promise<number> {
    const code = await super.execute()
    // Anything that stopped the migration before its verification exits 2 (decision 143): a
    // rerun after the fix resumes; 1 stays for "copied, but the target differs".
    return code !== EXIT.OK && !this.#finished ? EXIT.USAGE : code
  }
}
