import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { Keypair, SplError } from '@spl/identity'
import { type ConfigOverrides, envToCfg, homePaths, NotInitializedError, parseConfig, readEnv, type SplConfig } from './config.js'

// Every file the daemon reads to start lives here: config.toml, the key, the admin token.

/** Reads config.toml of `home`; throws NotInitializedError / ConfigError. */
export function loadConfig(home: string): SplConfig {
  const file = homePaths(home).config
  if (!existsSync(file)) throw new NotInitializedError(home)
  return parseConfig(readFileSync(file, 'utf8'), file)
}

/** The key file is missing, unreadable or not an Ed25519 JWK. */
export class KeyFileError extends SplError {
  override readonly name = 'KeyFileError'
  constructor(file: string, reason: string) {
    super('KEY_INVALID', `${file}: ${reason}`, {
      status: 500,
      fix: 'spl init --force (makes a new identity: peers must re-pair)',
    })
  }
}

/** Reads the instance key; checks it matches the DID in config. */
export function readKeyFile(file: string, expectedDid?: string): Keypair {
  let jwk: { kty?: unknown; crv?: unknown; d?: unknown }
  try {
    jwk = JSON.parse(readFileSync(file, 'utf8'))
  } catch {
    throw new KeyFileError(file, 'cannot be read as a JSON Web Key')
  }
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.d !== 'string') throw new KeyFileError(file, 'is not an Ed25519 JWK')
  const seed = Buffer.from(jwk.d, 'base64url')
  if (seed.length !== 32) throw new KeyFileError(file, 'the private key is not 32 bytes')
  const kp = Keypair.fromSeed(seed)
  if (expectedDid && kp.did !== expectedDid) throw new KeyFileError(file, `holds ${kp.did}, but config.toml says ${expectedDid}`)
  return kp
}

/** Reads the admin token of a home. */
export function readAdminToken(home: string): string | undefined {
  const file = homePaths(home).adminToken
  return existsSync(file) ? readFileSync(file, 'utf8').trim() : undefined
}

/** What only the home's files know and the context needs: the signing key and the admin token. */
export interface DaemonSecrets {
  keypair: Keypair
  adminToken: string
}

/** Reads the key (checked against the DID in config) and the admin token of `home`. */
export function loadSecrets(home: string, cfg: SplConfig): DaemonSecrets {
  const keypair = readKeyFile(path.resolve(home, cfg.identity.key_path), cfg.identity.did)
  const adminToken = readAdminToken(home)
  if (!adminToken) throw new Error(`${homePaths(home).adminToken} is missing: run spl init`)
  return { keypair, adminToken }
}

/** Where a daemon starts from: the home (flag, else SYNCROPEL_HOME), its config with flags on top, the log level. */
export interface DaemonStart {
  home: string
  cfg: SplConfig
  logLevel: string | undefined
}

/** Reads the environment and the home's config.toml once, for `SplDaemon.create`. */
export function loadDaemonStart(options: ConfigOverrides & { home?: string | undefined } = {}): DaemonStart {
  const env = readEnv()
  const home = options.home ?? env.home
  return { home, cfg: envToCfg(loadConfig(home), { ...options, ...(env.mdnsOff ? { mdns: false } : {}) }), logLevel: env.logLevel }
}
