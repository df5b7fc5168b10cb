import crypto from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { Keypair } from '@spl/identity'
import { parse as parseToml, stringify as stringifyToml } from 'smol-toml'
import { homePaths, type SplConfig } from './config.js'
import { loadConfig } from './load.js'

/**
 * The key file is a JWK of the Ed25519 key (RFC 8037 OKP): {"kty":"OKP","crv":"Ed25519",
 * "d": seed, "x": public key}, both base64url. Mode 0600.
 */
function writeKeyFile(file: string, keypair: Keypair): void {
  const jwk = {
    kty: 'OKP',
    crv: 'Ed25519',
    d: Buffer.from(keypair.exportSeed()).toString('base64url'),
    x: Buffer.from(keypair.publicKey).toString('base64url'),
  }
  writeFileSync(file, `${JSON.stringify(jwk)}\n`, { mode: 0o600 })
  chmodSync(file, 0o600)
}

const CONFIG_HEADER = '# spl instance configuration (see docs/configuration.md)\n'

/**
 * Makes `keypair` the identity of an initialised home (`spl import` of a bundle with its key: the
 * instance moved here): writes the key file and the DID in config.toml, keeping the rest.
 */
export function adoptIdentity(home: string, keypair: Keypair): void {
  const p = homePaths(home)
  const cfg = loadConfig(home)
  writeKeyFile(path.resolve(home, cfg.identity.key_path), keypair)
  const doc = parseToml(readFileSync(p.config, 'utf8')) as { identity: Record<string, unknown> }
  doc.identity['did'] = keypair.did
  writeFileSync(p.config, `${CONFIG_HEADER}${stringifyToml(doc)}\n`, { mode: 0o600 })
}

/** What `spl init` did. */
export interface InitResult {
  did: string
  home: string
  created: boolean
  previousDid?: string
}

/**
 * `spl init`: creates the home (0700), a key, the admin token and config.toml. Without
 * `force` an initialised home is left alone; with it a new key replaces the old one and the
 * rest of the config (and all records) is kept.
 */
export function initHome(home: string, options: { force?: boolean; handle?: string; namespace?: string } = {}): InitResult {
  const p = homePaths(home)
  let existing: SplConfig | undefined
  if (existsSync(p.config)) {
    existing = loadConfig(home)
    if (!options.force) return { did: existing.identity.did, home, created: false }
  }
  for (const dir of [home, p.keysDir, p.logsDir, p.runDir]) {
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    chmodSync(dir, 0o700)
  }
  const keypair = Keypair.generate()
  const keyPath = existing?.identity.key_path ?? 'keys/primary.key'
  writeKeyFile(path.resolve(home, keyPath), keypair)
  if (!existsSync(p.adminToken)) {
    writeFileSync(p.adminToken, `${crypto.randomBytes(32).toString('base64url')}\n`, { mode: 0o600 })
  }
  const identity: Record<string, string> = {
    did: keypair.did,
    key_path: keyPath,
    namespace: existing?.identity.namespace ?? options.namespace ?? 'default',
  }
  const handle = options.handle ?? existing?.identity.handle
  if (handle) identity['handle'] = handle
  if (existing?.identity.web_domain) identity['web_domain'] = existing.identity.web_domain
  const sync = existing?.sync ?? {
    poll_interval_ms: 5000,
    serve_policy: 'open',
    discovery: { mdns_listen: true, mdns_broadcast: false, directory_url: '', advertise_url: '', static: [] },
  }
  // No `static = []`: an operator appends [[sync.discovery.static]] tables, which an empty array would clash with.
  const { static: statics, ...discovery } = sync.discovery
  const doc = {
    identity,
    server: existing?.server ?? { host: '127.0.0.1', port: 9100 },
    api: existing?.api ?? { trust_loopback: true },
    sync: { ...sync, discovery: statics.length > 0 ? { ...discovery, static: statics } : discovery },
    ...(existing ? { federation: existing.federation, directory: existing.directory } : {}),
  }
  writeFileSync(p.config, `${CONFIG_HEADER}${stringifyToml(doc)}\n`, { mode: 0o600 })
  return {
    did: keypair.did,
    home,
    created: true,
    ...(existing ? { previousDid: existing.identity.did } : {}),
  }
}
