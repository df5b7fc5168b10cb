import { Command, Option, UsageError } from 'clipanion'
import { BaseCommand } from '../base.js'

// The shell scripts are thin: each asks `spl __complete -- <words so far>` for the candidates,
// so completion always knows the commands and options of the installed spl, and the pair and
// thread ids of the daemon of the current home (SYNCROPEL_HOME / SPL_DAEMON_URL).
const SCRIPTS: Record<string, string> = {
  bash: `# spl completion for bash. Load it with:  source <(spl completion bash)
# or install it:  spl completion bash > ~/.local/share/bash-completion/completions/spl
_spl_complete() {
  local IFS=$'\\n'
  COMPREPLY=( $(spl __complete -- "\${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null) )
}
complete -o default -F _spl_complete spl
`,
  zsh: `#compdef spl
# spl completion for zsh. Load it with:  source <(spl completion zsh)
# or install it as _spl in a directory of $fpath:  spl completion zsh > ~/.zfunc/_spl
_spl() {
  local -a candidates
  candidates=("\${(@f)$(spl __complete -- "\${(@)words[2,CURRENT]}" 2>/dev/null)}")
  candidates=("\${(@)candidates:#}")
  compadd -a candidates
}
if [ "\${funcstack[1]}" = "_spl" ]; then
  _spl "$@"
else
  autoload -Uz compinit 2>/dev/null
  (( $+functions[compdef] )) || compinit
  compdef _spl spl
fi
`,
  fish: `# spl completion for fish. Load it with:  spl completion fish | source
# or install it:  spl completion fish > ~/.config/fish/completions/spl.fish
function __spl_complete
    set -l tokens (commandline -opc) (commandline -ct)
    spl __complete -- $tokens[2..-1] 2>/dev/null
end
complete -c spl -f -a '(__spl_complete)'
`,
}

export class CompletionCommand extends BaseCommand {
  static override paths = [['completion']]
  static override usage = Command.Usage({
    description: 'Print a shell completion script (bash, zsh or fish)',
    details:
      'The script completes commands, options, pair ids and thread ids; the ids come from the daemon of the current home when it runs.',
    examples: [
      ['Use it in this bash session', 'source <(spl completion bash)'],
      ['Install it for zsh', 'spl completion zsh > ~/.zfunc/_spl'],
      ['Install it for fish', 'spl completion fish > ~/.config/fish/completions/spl.fish'],
    ],
  })
  shell = Option.String({ name: 'SHELL' })

  protected async run() {
    const script = SCRIPTS[this.shell]
    if (!script) throw new UsageError(`usage: spl completion bash|zsh|fish (not '${this.shell}')`)
    this.context.stdout.write(script)
    return 0
  }
}

/** The option names of a clipanion definition such as '--follow,-f' or '--port #0'. */
function optionNames(definition: string): string[] {
  return (definition.split(' ')[0] ?? '').split(',').filter((n) => n.startsWith('-'))
}

/** The candidates for the word being completed; `words` are the words after `spl`, the last partial. */
export class CompleteCommand extends BaseCommand {
  static override paths = [['__complete']]
  // No usage: clipanion leaves a command without one out of `spl --help` (this one is for the scripts).
  words = Option.Rest()

  protected async run() {
    const words = this.words.length > 0 ? this.words : ['']
    const cur = words[words.length - 1] ?? ''
    const before = words.slice(0, -1)
    const defs = this.cli.definitions().map((d) => ({
      path: d.path.split(' ').slice(1),
      positionals: d.usage
        .split(' ')
        .slice(d.path.split(' ').length)
        .filter((t) => /^[<[][^-]/.test(t)),
      options: d.options.flatMap((o) => optionNames(o.definition)),
      valued: d.options.filter((o) => o.definition.includes(' ')).flatMap((o) => optionNames(o.definition)),
    }))
    // The command already typed: the longest path that is a prefix of the words before the cursor.
    const plain = before.filter((w) => !w.startsWith('-'))
    const cmd = defs
      .filter((d) => d.path.length > 0 && d.path.every((w, i) => plain[i] === w))
      .sort((a, b) => b.path.length - a.path.length)[0]
    let candidates: string[]
    if (!cmd) {
      const next = new Set<string>()
      for (const d of defs) {
        if (d.path[0]?.startsWith('_')) continue
        if (d.path.length > plain.length && plain.every((w, i) => d.path[i] === w)) next.add(d.path[plain.length]!)
      }
      candidates = [...next]
    } else if (cur.startsWith('-')) {
      candidates = [...cmd.options, '--help']
    } else {
      // Which positional the cursor is on: words after the path that are neither options nor their values.
      let index = 0
      const rest = before.slice(before.indexOf(cmd.path[cmd.path.length - 1]!) + 1)
      for (let i = 0; i < rest.length; i++) {
        const w = rest[i]!
        if (w.startsWith('-')) {
          if (cmd.valued.includes(w)) i++
          continue
        }
        index++
      }
      const name = (cmd.positionals[index] ?? '').toLowerCase()
      candidates = name.includes('pair') ? await this.pairIds() : name.includes('thread') ? await this.threadIds() : []
    }
    for (const c of candidates.filter((c) => c.startsWith(cur)).sort()) this.out(c)
    return 0
  }

  private async pairIds(): Promise<string[]> {
    try {
      const res = await this.client(1500).get<{ data: { pair_id: string }[] }>('/v1/sync/pairs?all=true')
      return res.data.map((p) => p.pair_id)
    } catch {
      return []
    }
  }

  private async threadIds(): Promise<string[]> {
    try {
      const res = await this.client(1500).get<{ data: { thread: string }[] }>('/v1/threads')
      return res.data.map((t) => t.thread)
    } catch {
      return []
    }
  }
}
