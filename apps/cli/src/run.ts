import type { Cli as CliType, CommandClass } from 'clipanion'
import { colourWanted } from './colour.js'
import { CLI_VERSION, versionText } from './version.js'

/** A command of the table in bin.ts: its paths ('a b', several separated by '|') and its loader. */
export type CommandEntry = readonly [paths: string, load: () => Promise<CommandClass>]

const EXIT_USAGE = 2

/** The paths of an entry, as word lists. */
function pathsOf(entry: CommandEntry): string[][] {
  return entry[0].split('|').map((p) => p.split(' '))
}

/** The leading words of the command line: what names the command (options stop it). */
function leadingWords(argv: readonly string[]): string[] {
  const words: string[] = []
  for (const a of argv) {
    if (a.startsWith('-') && words.length > 0) break
    words.push(a)
    if (a.startsWith('-')) break
  }
  return words
}

/** The entries worth loading for `argv`: those whose first word is argv's, else all of them. */
function select(entries: readonly CommandEntry[], argv: readonly string[]): readonly CommandEntry[] {
  const first = argv[0]
  // Completion candidates are drawn from every command's definition.
  if (first === undefined || first === '__complete') return entries
  const some = entries.filter((e) => pathsOf(e).some((p) => p[0] === first))
  return some.length > 0 ? some : entries
}

/** Edit distance (Levenshtein) between two short strings. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    const cur = [i]
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    prev = cur
  }
  return prev[b.length]!
}

/** The closest command path to the words typed, if one is close enough to be a typo. */
export function suggest(paths: readonly string[][], words: readonly string[]): string | undefined {
  let best: { path: string; d: number } | undefined
  for (const p of paths) {
    if (p[0]!.startsWith('-') || p[0]!.startsWith('_')) continue
    const want = p.join(' ')
    const typed = words.slice(0, p.length).join(' ')
    const d = distance(want, typed)
    if (!best || d < best.d) best = { path: want, d }
  }
  if (!best) return undefined
  return best.d <= Math.max(2, Math.floor(best.path.length / 4)) ? best.path : undefined
}

/** The command that `words` name, if any: the longest path that is a prefix of them. */
function identified(entries: readonly CommandEntry[], words: readonly string[]): { entry: CommandEntry; path: string[] } | undefined {
  let found: { entry: CommandEntry; path: string[] } | undefined
  for (const entry of entries) {
    for (const p of pathsOf(entry)) {
      if (p.length <= words.length && p.every((w, i) => words[i] === w) && (!found || p.length > found.path.length)) {
        found = { entry, path: p }
      }
    }
  }
  return found
}

function firstLine(text: string): string {
  return (
    text
      .split('\n')
      .map((l) => l.trim())
      .find((l) => l.length > 0) ?? ''
  )
}

/** 'missing --thread' when the command `words` name has required options that `argv` lacks. */
function missingOptions(cli: CliType, words: readonly string[], argv: readonly string[]): string | undefined {
  const def = cli
    .definitions()
    .filter((d) => {
      const path = d.path.split(' ').slice(1)
      return path.length > 0 && path.every((w, i) => words[i] === w)
    })
    .sort((a, b) => b.path.length - a.path.length)[0]
  const missing = (def?.options ?? [])
    .filter((o) => o.required)
    .map((o) => (o.definition.split(' ')[0] ?? '').split(','))
    .filter((names) => !names.some((n) => argv.some((a) => a === n || a.startsWith(`${n}=`))))
    .map((names) => names[0])
  return missing.length > 0 ? `missing ${missing.join(', ')}` : undefined
}

/** Exit quietly when the reader of stdout or stderr goes away (`spl … | head -1`). */
function quietOnClosedPipe(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0)
      throw err
    })
  }
}

/**
 * Runs the command `argv` names: loads only its module (all of them when none matches, for help
 * and suggestions), parses, and maps mistakes to one line — `UNKNOWN_COMMAND` or `USAGE`, exit 2.
 */
export async function runCli(entries: readonly CommandEntry[], given: readonly string[]): Promise<number> {
  quietOnClosedPipe()
  // `spl help [command…]` is `spl [command…] --help`.
  const argv = given[0] === 'help' ? [...given.slice(1), '--help'] : given
  // `spl version` needs nothing but the version: answered before clipanion loads (issue 14's
  // start-up target is 1.5× `node -e 0`; loading clipanion alone is ~0.15× of it).
  const [first, second, ...more] = argv
  if (
    (first === 'version' || first === '--version' || first === '-v') &&
    more.length === 0 &&
    (second === undefined || second === '--json')
  ) {
    process.stdout.write(`${versionText(second === '--json')}\n`)
    return 0
  }
  const { Builtins, Cli } = await import('./clipanion.js')
  const colored = colourWanted()
  const cli = new Cli({ binaryLabel: 'spl', binaryName: 'spl', binaryVersion: CLI_VERSION, enableCapture: false, enableColors: colored })
  const chosen = select(entries, argv)
  const classes = await Promise.all(chosen.map((e) => e[1]()))
  chosen.forEach((entry, i) => {
    const declared = entry[0]
    const actual = (classes[i]!.paths ?? []).map((p) => p.join(' ')).join('|')
    if (declared !== actual) throw new Error(`bin.ts declares '${declared}' but the class has the paths '${actual}'`)
    cli.register(classes[i]!)
  })
  cli.register(Builtins.HelpCommand)

  const context = { ...Cli.defaultContext, colorDepth: colored ? 8 : 1 }
  const words = leadingWords(argv)
  const usageOf = (cls: CommandClass) => firstLine(cli.usage(cls, { colored: false })).replace(/^\$ /, '')
  const usageLine = (message: string): number => {
    const hit = identified(chosen, words)
    const cls = hit ? classes[chosen.indexOf(hit.entry)] : undefined
    const form = cls ? ` The form is: ${usageOf(cls)}.` : ''
    const fix = hit ? ` Fix: spl ${hit.path.join(' ')} --help` : ' Fix: spl --help'
    context.stderr.write(`Error: USAGE: ${message.replace(/\.$/, '')}.${form}${fix}\n`)
    return EXIT_USAGE
  }

  let command: ReturnType<CliType['process']>
  try {
    command = cli.process([...argv], context)
  } catch (err) {
    const e = err as Error & { candidates?: { usage: string; reason: string | null }[] }
    if (e.name === 'UnknownSyntaxError' && !identified(chosen, words)) {
      const allPaths = chosen.flatMap(pathsOf)
      const typed = words.filter((w) => !w.startsWith('-')).join(' ')
      const below = allPaths.filter((p) => p.length > words.length && words.every((w, i) => p[i] === w)).map((p) => `spl ${p.join(' ')}`)
      if (words.length > 0 && below.length > 0) {
        context.stderr.write(
          `Error: USAGE: 'spl ${typed}' needs a subcommand: ${below.join(', ')}. Fix: spl ${typed} <subcommand> --help\n`,
        )
        return EXIT_USAGE
      }
      const guess = suggest(allPaths, words)
      context.stderr.write(
        `Error: UNKNOWN_COMMAND: 'spl ${typed}' is not a command.${guess ? ` Did you mean spl ${guess}?` : ' Fix: spl --help'}\n`,
      )
      return EXIT_USAGE
    }
    if (e.name === 'UnknownSyntaxError') {
      const reason =
        e.candidates?.find((c) => c.reason)?.reason ?? missingOptions(cli, words, argv) ?? 'the arguments do not fit the command'
      return usageLine(reason)
    }
    if (e.name === 'UsageError' || e.name === 'AmbiguousSyntaxError') return usageLine(firstLine(e.message))
    throw err
  }
  if (command.help) {
    context.stdout.write(cli.usage(command, { colored, detailed: true }))
    return 0
  }
  command.context = context
  command.cli = {
    binaryLabel: cli.binaryLabel,
    binaryName: cli.binaryName,
    binaryVersion: cli.binaryVersion,
    enableCapture: false,
    enableColors: colored,
    definitions: () => cli.definitions(),
    error: (error, opts) => cli.error(error, opts),
    format: (c) => cli.format(c),
    process: (input, sub) => cli.process(input, { ...context, ...sub }),
    run: (input, sub) => cli.run(input, { ...context, ...sub }),
    usage: (cmd, opts) => cli.usage(cmd, opts),
  }
  try {
    return await command.validateAndExecute()
  } catch (err) {
    if ((err as Error).name === 'UsageError') return usageLine(firstLine((err as Error).message))
    throw err
  }
}
