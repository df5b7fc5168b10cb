import path from 'node:path'
import { durationMs, homePaths, loadConfig, readDaemonInfo, readKeyFile, type SplConfig } from '@spl/daemon/home'
import { SplError } from '@spl/transport/identity'
import { Command, Option } from 'clipanion'
import { BaseCommand } from '../base.js'

// `spl directory register|unregister|import`: this instance in a did:sync directory (SPEC 8).
// @spl/discovery is imported in run(), so that other commands do not load it.

const LOOPBACK = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])$/

abstract class DirectoryCommand extends BaseCommand {
  directory = Option.String('--directory', { description: 'The directory URL (default: [sync.discovery] directory_url)' })

  protected config(): SplConfig {
    return loadConfig(this.env.home)
  }

  /** --directory, else the configured directory_url. */
  protected directoryUrl(cfg: SplConfig): string {
    const url = this.directory ?? cfg.sync.discovery.directory_url
    if (!url) {
      throw new SplError('DIRECTORY_NOT_CONFIGURED', 'no did:sync directory given', {
        fix: 'pass --directory URL or set [sync.discovery] directory_url in config.toml',
      })
    }
    return url.replace(/\/+$/, '')
  }

  protected keypair(cfg: SplConfig) {
    return readKeyFile(path.resolve(this.env.home, cfg.identity.key_path), cfg.identity.did)
  }
}

export class DirectoryRegisterCommand extends DirectoryCommand {
  static override paths = [['directory', 'register']]
  static override usage = Command.Usage({
    description: 'Register this instance in a did:sync directory',
    details: `
      Signs a registration with this home's key (a JWS of typ spl-directory+jwt: did, url,
      namespaces, handle, iat, exp) and posts it to the directory's /directory/register. The URL
      registered is [sync.discovery] advertise_url, else the one the running daemon wrote to
      run/daemon.json, else --url. Registrations expire (--expires, 30d by default, at most
      365d): register again to renew; a new registration replaces the old one. A handle held by
      another DID is refused (HANDLE_TAKEN). The directory stores the signed JWT; whoever finds
      this instance there still checks its manifest at the URL.
    `,
    examples: [
      ['Register in the configured directory', 'spl directory register'],
      [
        'Two namespaces and a handle',
        'spl directory register --directory http://dir.example:9100 --namespace acme --namespace acme/ops --handle alice',
      ],
      ['For a week, as JSON', 'spl directory register --directory http://dir.example:9100 --expires 7d --json'],
    ],
  })
  namespaces = Option.Array('--namespace', { description: 'A namespace to be listed in (repeatable; default: the home namespace)' })
  handle = Option.String('--handle', { description: 'The handle (did:sync:<handle>; default: [identity] handle)' })
  expires = Option.String('--expires', '30d', { description: 'How long the registration is valid (e.g. 7d, 24h; at most 365d)' })
  url = Option.String('--url', { description: 'The URL to register (default: advertise_url, else the running daemon)' })

  /** Where peers should reach this instance. */
  #ownUrl(cfg: SplConfig): string {
    if (this.url) return this.url
    if (cfg.sync.discovery.advertise_url) return cfg.sync.discovery.advertise_url
    const info = readDaemonInfo(homePaths(this.env.home).runDir)
    if (info) return info.url
    throw new SplError('DAEMON_NOT_RUNNING', 'no URL to register: no advertise_url, and no daemon runs on this home', {
      fix: 'start it (spl serve --daemon), set [sync.discovery] advertise_url, or pass --url URL',
    })
  }

  protected async run() {
    const { DirectoryClient, MAX_REGISTRATION_LIFETIME_S } = await import('@spl/discovery')
    const cfg = this.config()
    const directory = this.directoryUrl(cfg)
    const ms = durationMs(this.expires)
    if (ms === undefined || ms < 60_000 || ms > MAX_REGISTRATION_LIFETIME_S * 1000) {
      throw new SplError('INVALID_ARGUMENT', `--expires ${this.expires} is not a duration between 1m and 365d`, { fix: '--expires 30d' })
    }
    const url = this.#ownUrl(cfg)
    const handle = this.handle ?? cfg.identity.handle
    const namespaces = this.namespaces?.length ? this.namespaces : [cfg.identity.namespace]
    const client = new DirectoryClient(directory)
    const { entry, replaced } = await client.register(this.keypair(cfg), { url, namespaces, handle, lifetimeS: Math.floor(ms / 1000) })
    const loopbackOnly = LOOPBACK.test(new URL(entry.url).hostname) && !LOOPBACK.test(new URL(directory).hostname)
    const result = {
      object: 'directory_registration',
      directory,
      replaced,
      did: entry.did,
      url: entry.url,
      namespaces: entry.namespaces,
      handle: entry.handle ?? null,
      issued_at: new Date(entry.iat * 1000).toISOString(),
      expires_at: new Date(entry.exp * 1000).toISOString(),
    }
    return this.render(result, () => {
      this.out(`✓ ${replaced ? 're-registered' : 'registered'} ${entry.did} in ${directory}`)
      this.out(`  url          ${entry.url}`)
      this.out(`  namespaces   ${entry.namespaces.join(', ')}`)
      if (entry.handle) this.out(`  handle       ${entry.handle} (did:sync:${entry.handle})`)
      this.out(`  expires      ${result.expires_at}: run this again before then to renew`)
      if (loopbackOnly)
        this.err('warning: the URL is a loopback address; peers on other machines cannot reach it (set [sync.discovery] advertise_url)')
      return undefined
    })
  }
}

export class DirectoryUnregisterCommand extends DirectoryCommand {
  static override paths = [['directory', 'unregister']]
  static override usage = Command.Usage({
    description: 'Remove this instance from a did:sync directory',
    details: `
      Sends DELETE /directory/<DID> with a delete signed by this home's key (a JWS of typ
      spl-directory-delete+jwt, valid 60 s). Only the DID's own key can delete its entry; the
      directory then refuses this DID's earlier registrations (here and on import).
    `,
    examples: [['Leave a directory', 'spl directory unregister --directory http://dir.example:9100']],
  })

  protected async run() {
    const { DirectoryClient } = await import('@spl/discovery')
    const cfg = this.config()
    const directory = this.directoryUrl(cfg)
    const keypair = this.keypair(cfg)
    await new DirectoryClient(directory).unregister(keypair)
    return this.render(
      { object: 'directory_deletion', directory, did: keypair.did, deleted: true },
      `✓ removed ${keypair.did} from ${directory}`,
    )
  }
}

export class DirectoryImportCommand extends BaseCommand {
  static override paths = [['directory', 'import']]
  static override usage = Command.Usage({
    description: "Copy another directory's entries into a directory",
    details: `
      Reads every entry of --from (GET /directory/export: each its DID's signed registration),
      keeps those whose signatures hold, and posts them to the import door of --directory
      (default: this home's daemon, which must have [directory] enabled = true). The receiving
      directory checks each again: expired ones, older ones than it holds, deleted ones and
      handles it knows for another DID are skipped and listed.
    `,
    examples: [
      ['Mirror a directory into this daemon', 'spl directory import --from http://dir.example:9100'],
      ['Between two others', 'spl directory import --from http://a.example:9100 --directory http://b.example:9100 --json'],
    ],
  })
  from = Option.String('--from', { required: true, description: 'The directory to copy from' })
  directory = Option.String('--directory', { description: "The directory to copy into (default: this home's daemon)" })

  protected async run() {
    const { DirectoryClient } = await import('@spl/discovery')
    const target = (this.directory ?? this.daemonUrl()).replace(/\/+$/, '')
    const entries = await new DirectoryClient(this.from).export()
    const r = await new DirectoryClient(target, { timeoutMs: 60_000 }).import(entries)
    const result = { ...r, from: this.from.replace(/\/+$/, ''), directory: target, read: entries.length }
    return this.render(result, () => {
      this.out(
        `✓ ${entries.length} entries read from ${result.from} into ${target}: ${r.added} new, ${r.replaced} replaced, ${r.unchanged} unchanged, ${r.skipped.length} skipped`,
      )
      for (const s of r.skipped) this.out(`  skipped #${s.index}${s.did ? ` ${s.did}` : ''}: ${s.code}: ${s.message}`)
      return undefined
    })
  }
}
