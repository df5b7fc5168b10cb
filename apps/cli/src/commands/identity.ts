import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { loadConfig, readKeyFile } from '@spl/daemon/home'
import { Command, Option } from 'clipanion'
import { BaseCommand } from '../base.js'

/** What `spl identity publish-did-web --json` prints. */
export interface DidWebPublished {
  object: 'did_web_document'
  did: string
  did_key: string
  /** Where the document must be served. */
  upload_url: string
  endpoint: string
  output: string | null
  /** The config.toml line that makes this daemon serve it itself (bare domains only). */
  config_line: string | null
  document: unknown
}

export class IdentityPublishDidWebCommand extends BaseCommand {
  static override paths = [['identity', 'publish-did-web']]
  static override usage = Command.Usage({
    description: 'Write the did:web document that lets peers find this instance by a domain',
    details: `
      Writes a W3C DID document for \`did:web:<domain>\`: this instance's Ed25519 key (the same key as
      its did:key) and a \`SyncropelDaemon\` service naming the URL peers reach the daemon at
      (\`--endpoint\`, else \`[sync.discovery] advertise_url\`, else the domain itself). Upload it to the
      URL printed, or set \`web_domain\` under \`[identity]\` in config.toml so the daemon serves it at
      \`/.well-known/did.json\` (behind the domain's HTTPS). Peers then run
      \`spl fleet sync peers discover --method did-web --domain <domain>\`. Without \`--output\` the
      document goes to stdout. Run it again after \`spl init --force\` or a move.
    `,
    examples: [
      ['Write did.json for alice.dev', 'spl identity publish-did-web --domain alice.dev --output did.json'],
      [
        'The daemon answers at another URL',
        'spl identity publish-did-web --domain alice.dev --endpoint https://spl.alice.dev:9100 --output did.json',
      ],
      ['A path form (served at https://example.com/u/alice/did.json)', 'spl identity publish-did-web --domain did:web:example.com:u:alice'],
      ['Everything as JSON', 'spl identity publish-did-web --domain alice.dev --json'],
    ],
  })

  domain = Option.String('--domain', {
    required: true,
    description: 'The domain (alice.dev), domain:port (alice.dev:8443) or a did:web DID',
  })
  endpoint = Option.String('--endpoint', {
    description: 'The URL peers reach this daemon at (default: advertise_url, else https://<domain>)',
  })
  output = Option.String('--output', { description: 'Write the document to this file (default: stdout)' })

  protected async run() {
    // Loaded here, not at start: the other commands do not pay for the discovery package.
    const { didWebDocument, didWebUrl, parseDidWeb, toDidWeb } = await import('@spl/discovery')
    const home = this.env.home
    const cfg = loadConfig(home)
    const keypair = readKeyFile(path.resolve(home, cfg.identity.key_path), cfg.identity.did)
    const did = toDidWeb(this.domain)
    const uploadUrl = didWebUrl(did)
    const endpoint = this.endpoint ?? (cfg.sync.discovery.advertise_url || new URL(uploadUrl).origin)
    const document = didWebDocument({ keypair, domain: did, endpoint })
    const text = `${JSON.stringify(document, null, 2)}\n`
    const output = this.output ? path.resolve(this.output) : null
    if (output) writeFileSync(output, text)
    const parsed = parseDidWeb(did)
    // The daemon serves only /.well-known/did.json: a path form is uploaded, never served by it.
    const configLine =
      parsed.path.length === 0 ? `web_domain = "${parsed.port === undefined ? parsed.host : `${parsed.host}:${parsed.port}`}"` : null
    const result: DidWebPublished = {
      object: 'did_web_document',
      did,
      did_key: keypair.did,
      upload_url: uploadUrl,
      endpoint: document.service[0]!.serviceEndpoint,
      output,
      config_line: configLine,
      document,
    }
    return this.render(result, () => {
      // Without --output stdout is the document (spl identity publish-did-web --domain D > did.json).
      const say = output ? (line: string) => this.out(line) : (line: string) => this.err(line)
      if (output) say(`Wrote ${output}: ${did} → ${keypair.did}, endpoint ${result.endpoint}`)
      else this.context.stdout.write(text)
      say(`Upload it to ${uploadUrl}`)
      if (configLine) say(`or let this daemon serve it: set ${configLine} under [identity] in config.toml and restart it.`)
      say(`Peers find you with: spl fleet sync peers discover --method did-web --domain ${this.domain.trim()}`)
      return undefined
    })
  }
}
