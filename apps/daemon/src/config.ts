import os from 'node:os'
import path from 'node:path'
import { SplError } from '@spl/identity'
import { parse as parseToml, TomlError } from 'smol-toml'
import { z } from 'zod'

/** Environment variables spl reads; nothing else in the daemon reads process.env (the CLI hands it in). */
export interface SplEnv {
  home: string
  daemonUrl: string | undefined
  logLevel: string | undefined
  daemonized: boolean
  /** `SPL_MDNS=off`: no mDNS at all, whatever config.toml says (test suites, CI). */
  mdnsOff: boolean
}

/** Reads the environment once. */
export function readEnv(env: NodeJS.ProcessEnv = process.env): SplEnv {
  return {
    home: path.resolve(env['SYNCROPEL_HOME'] || path.join(os.homedir(), '.syncro')),
    daemonUrl: env['SPL_DAEMON_URL'] || undefined,
    logLevel: env['SPL_LOG_LEVEL'] || undefined,
    daemonized: env['SPL_DAEMONIZED'] === '1',
    mdnsOff: env['SPL_MDNS'] === 'off',
  }
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** `500ms`, `10s`, `30m`, `24h`, `90d` → ms, or undefined when it is not a duration. */
export function durationMs(value: string): number | undefined {
  const m = /^(\d{1,9})(ms|s|m|h|d)$/.exec(value.trim())
  const ms = m ? Number(m[1]) * DURATION_UNITS[m[2]!]! : 0
  return ms > 0 ? ms : undefined
}

/** A duration in config.toml: a string such as "24h" (kept as written; read with durationMs). */
const duration = z.string().refine((v) => durationMs(v) !== undefined, 'a duration such as 500ms, 10s, 30m, 24h or 90d')

const staticPeer = z.object({ did: z.string(), url: z.url(), handle: z.string().optional() }).strict()

/** The schema of config.toml (SPEC 1); unknown keys are errors. */
const configSchema = z
  .object({
    identity: z
      .object({
        did: z.string().startsWith('did:key:z6Mk'),
        key_path: z.string().default('keys/primary.key'),
        namespace: z.string().default('default'),
        handle: z.string().max(64).optional(),
        /** The domain this instance publishes a did:web document for (served at /.well-known/did.json). */
        web_domain: z.string().max(253).optional(),
      })
      .strict(),
    server: z
      .object({
        host: z.string().default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(9100),
      })
      .strict()
      .default({ host: '127.0.0.1', port: 9100 }),
    api: z
      .object({ trust_loopback: z.boolean().default(true) })
      .strict()
      .default({ trust_loopback: true }),
    sync: z
      .object({
        poll_interval_ms: z.number().int().min(100).max(3_600_000).default(5000),
        serve_policy: z.enum(['open', 'paired']).default('open'),
        /** How often each caught-up pair is audited against its source (SPEC 13), staggered. */
        audit_interval: duration.default('24h'),
        /** Caught-up pairs towards one peer wait in one watch (docs/federation.md); false: a long poll per pair. */
        watch: z.boolean().default(true),
        discovery: z
          .object({
            mdns_listen: z.boolean().default(true),
            mdns_broadcast: z.boolean().default(false),
            /** How often the broadcaster announces (default 30 s); peers drop it after two missed announcements. */
            mdns_interval_ms: z.number().int().min(1000).max(3_600_000).optional(),
            directory_url: z.string().default(''),
            /** The URL this instance announces instead of its own address (NAT, containers). */
            advertise_url: z.union([z.literal(''), z.url({ protocol: /^https?$/ })]).default(''),
            static: z.array(staticPeer).default([]),
          })
          .strict()
          .default({ mdns_listen: true, mdns_broadcast: false, directory_url: '', advertise_url: '', static: [] }),
      })
      .strict()
      .default({
        poll_interval_ms: 5000,
        serve_policy: 'open',
        audit_interval: '24h',
        watch: true,
        discovery: { mdns_listen: true, mdns_broadcast: false, directory_url: '', advertise_url: '', static: [] },
      }),
    records: z
      .object({
        /** The largest record accepted, in UTF-8 bytes of its canonical form (SPEC 2.4a): at emit and at ingest. */
        max_bytes: z
          .number()
          .int()
          .min(1024)
          .max(4 * 1024 * 1024)
          .default(1024 * 1024),
      })
      .strict()
      .default({ max_bytes: 1024 * 1024 }),
    federation: z
      .object({
        accept_pair_requests: z.enum(['manual', 'invite', 'auto', 'never']).default('invite'),
        /** Lifetime of the peer tokens this instance issues (SPEC 7.5). */
        token_ttl: duration.default('90d'),
        /** A link whose peer was unreachable this long shows `degraded` (SPEC 9.2). */
        degraded_after: duration.default('24h'),
      })
      .strict()
      .default({ accept_pair_requests: 'invite', token_ttl: '90d', degraded_after: '24h' }),
    directory: z
      .object({
        /** Serve a did:sync directory (/directory/*) from this daemon. */
        enabled: z.boolean().default(false),
      })
      .strict()
      .default({ enabled: false }),
    relay: z
      .object({
        /** Serve mailboxes for registered receivers (SPEC 10); `spl serve --relay` turns it on too. */
        enabled: z.boolean().default(false),
        /** A record a receiver has not pulled this long after it was stored here is deposited at its relay. */
        deposit_after: duration.default('60s'),
        /** How long a deposit waits at a relay (both as a relay and as a sender). */
        ttl: duration.default('7d'),
        /** How often this instance collects from the relays it registered at. */
        poll_interval: duration.default('30s'),
        /** As a relay: deposits waiting per receiver (507 beyond). */
        max_waiting: z.number().int().min(1).max(1_000_000).default(10_000),
        /** As a relay: bytes one sender may deposit per UTC day (429 beyond). */
        sender_bytes_per_day: z
          .number()
          .int()
          .min(1024)
          .default(256 * 1024 * 1024),
      })
      .strict()
      .default({
        enabled: false,
        deposit_after: '60s',
        ttl: '7d',
        poll_interval: '30s',
        max_waiting: 10_000,
        sender_bytes_per_day: 256 * 1024 * 1024,
      }),
    storage: z
      .object({
        /** '' (default): the home's spl.db (SQLite). `postgres://user:password@host:5432/db`: PostgreSQL (replicas, docs/postgres.md). */
        url: z
          .string()
          .refine((v) => v === '' || /^postgres(ql)?:\/\//.test(v), 'empty (SQLite in the home) or a postgres:// URL')
          .default(''),
        /** PostgreSQL replicas: how long a replica holds a pair's lease without renewing it (taken over after that). */
        lease_ttl: duration.default('15s'),
        /** This daemon's name among the replicas of one identity on PostgreSQL (/metrics label `replica`); '' = `<hostname>:<port>`. */
        replica_id: z
          .string()
          .max(200)
          .regex(/^[A-Za-z0-9_.:@-]*$/, 'letters, digits and _ . : @ - only')
          .default(''),
      })
      .strict()
      .default({ url: '', lease_ttl: '15s', replica_id: '' }),
  })
  .strict()

export type SplConfig = z.output<typeof configSchema>

/** config.toml does not parse or does not fit the schema. */
export class ConfigError extends SplError {
  override readonly name = 'ConfigError'
  constructor(file: string, detail: string) {
    super('CONFIG_INVALID', `${file}: ${detail}`, {
      status: 500,
      fix: `edit ${file} (see docs/configuration.md)`,
    })
  }
}

/** The home has no config.toml yet. */
export class NotInitializedError extends SplError {
  override readonly name = 'NotInitializedError'
  constructor(home: string) {
    super('NOT_INITIALIZED', `${home} has no spl identity yet.`, { status: 500, fix: 'spl init' })
  }
}

/**
 * The line of `key` inside the table `parent` (as a zod issue path: `['sync', 'discovery',
 * 'static', 1]` is the second `[[sync.discovery.static]]`), or of the table header `[parent.key]`.
 */
function lineOf(text: string, parent: readonly PropertyKey[], key: string): number | undefined {
  const want = parent.map(String).join('.')
  const header = want ? `${want}.${key}` : key
  const arrays = new Map<string, number>()
  let current = ''
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!.trim()
    const arr = /^\[\[\s*([^\]]+?)\s*\]\]/.exec(l)
    if (arr) {
      const name = arr[1]!.replace(/\s/g, '')
      const n = (arrays.get(name) ?? -1) + 1
      arrays.set(name, n)
      current = `${name}.${n}`
      if (name === header || current === header) return i + 1
      continue
    }
    const table = /^\[\s*([^\]]+?)\s*\]/.exec(l)
    if (table) {
      current = table[1]!.replace(/\s/g, '')
      if (current === header) return i + 1
      continue
    }
    const k = /^("[^"]*"|[A-Za-z0-9_-]+)\s*=/.exec(l)
    if (k && current === want && k[1]!.replace(/"/g, '') === key) return i + 1
  }
  return undefined
}

/** Parses and checks the text of a config file; errors name the key and its line. */
export function parseConfig(text: string, file = 'config.toml'): SplConfig {
  let raw: unknown
  try {
    raw = parseToml(text)
  } catch (err) {
    const where = err instanceof TomlError ? ` (line ${err.line})` : ''
    throw new ConfigError(file, `not valid TOML${where}: ${err instanceof Error ? err.message.split('\n')[0] : ''}`)
  }
  const parsed = configSchema.safeParse(raw)
  if (parsed.success) return parsed.data
  const issue = parsed.error.issues[0]!
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0]!
    const line = lineOf(text, issue.path, key)
    const section = issue.path.length ? `[${issue.path.join('.')}] ` : ''
    throw new ConfigError(file, `unknown key ${section}'${key}'${line ? ` on line ${line}` : ''}`)
  }
  const keyPath = issue.path.map(String).join('.')
  const leaf = String(issue.path[issue.path.length - 1] ?? '')
  const line = leaf ? lineOf(text, issue.path.slice(0, -1), leaf) : undefined
  throw new ConfigError(file, `${keyPath}: ${issue.message}${line ? ` (line ${line})` : ''}`)
}

/** Where everything of one instance lives. */
export interface HomePaths {
  home: string
  config: string
  keysDir: string
  adminToken: string
  logsDir: string
  log: string
  runDir: string
  daemonJson: string
  db: string
}

/** The paths under a home directory (SPEC 1). */
export function homePaths(home: string): HomePaths {
  return {
    home,
    config: path.join(home, 'config.toml'),
    keysDir: path.join(home, 'keys'),
    adminToken: path.join(home, 'admin.token'),
    logsDir: path.join(home, 'logs'),
    log: path.join(home, 'logs', 'daemon.log'),
    runDir: path.join(home, 'run'),
    daemonJson: path.join(home, 'run', 'daemon.json'),
    db: path.join(home, 'spl.db'),
  }
}

/** Command-line flags that override the file. */
export interface ConfigOverrides {
  host?: string | undefined
  port?: number | undefined
  /** false: neither listen nor broadcast on mDNS (from SPL_MDNS=off). */
  mdns?: boolean | undefined
  /** true: serve mailboxes (`spl serve --relay`), whatever `[relay] enabled` says. */
  relay?: boolean | undefined
  /** `spl serve --database URL`: the database instead of `[storage] url`. */
  database?: string | undefined
}

/** The config in force: the file, then flags on top (pure: the file is read by loadConfig). */
export function envToCfg(file: SplConfig, overrides: ConfigOverrides = {}): SplConfig {
  const discovery = file.sync.discovery
  return {
    ...file,
    server: { host: overrides.host ?? file.server.host, port: overrides.port ?? file.server.port },
    sync: overrides.mdns === false ? { ...file.sync, discovery: { ...discovery, mdns_listen: false, mdns_broadcast: false } } : file.sync,
    relay: overrides.relay ? { ...file.relay, enabled: true } : file.relay,
    storage: overrides.database !== undefined ? { ...file.storage, url: overrides.database } : file.storage,
  }
}
