import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { ConfigError, durationMs, envToCfg, homePaths, NotInitializedError, parseConfig, readEnv } from './config.js'
import { initHome } from './home.js'
import { loadConfig } from './load.js'

const DID = 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK'

/** The config.toml of SPEC section 1, verbatim (comments included). */
const SPEC_CONFIG = `[identity]
did = "did:key:z6Mk..."
key_path = "keys/primary.key"      # relative to SYNCROPEL_HOME
namespace = "default"              # this instance's home namespace
handle = "alice"                   # optional, shown to peers
[server]
host = "127.0.0.1"
port = 9100
[api]
trust_loopback = true              # see 7.1
[sync]
poll_interval_ms = 5000
serve_policy = "open"              # "open" | "paired" (7.3)
[sync.discovery]
mdns_listen = true
mdns_broadcast = false
directory_url = ""                 # did:sync directory, empty = none
[[sync.discovery.static]]
did = "did:key:z6Mk..."
url = "http://10.0.0.5:9100"
handle = "bob"
`

/** The line (1-based) of the first line of `text` that equals `line` after trimming. */
function lineNo(text: string, line: string): number {
  const n = text.split('\n').findIndex((l) => l.trim() === line)
  if (n < 0) throw new Error(`test bug: '${line}' is not in the text`)
  return n + 1
}

/** Runs parseConfig and returns the ConfigError it must throw. */
function configError(text: string): ConfigError {
  try {
    parseConfig(text, '/h/config.toml')
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError)
    const e = err as ConfigError
    expect(e.code).toBe('CONFIG_INVALID')
    expect(e.message).toContain('/h/config.toml')
    return e
  }
  throw new Error('parseConfig accepted an invalid config')
}

describe('parseConfig: the config.toml of SPEC 1', () => {
  it('parses the full example of SPEC 1, [[sync.discovery.static]] included', () => {
    const cfg = parseConfig(SPEC_CONFIG)
    expect(cfg).toEqual({
      identity: {
        did: 'did:key:z6Mk...',
        key_path: 'keys/primary.key',
        namespace: 'default',
        handle: 'alice',
      },
      server: { host: '127.0.0.1', port: 9100 },
      api: { trust_loopback: true },
      sync: {
        poll_interval_ms: 5000,
        serve_policy: 'open',
        audit_interval: '24h',
        watch: true,
        discovery: {
          mdns_listen: true,
          mdns_broadcast: false,
          directory_url: '',
          advertise_url: '',
          static: [{ did: 'did:key:z6Mk...', url: 'http://10.0.0.5:9100', handle: 'bob' }],
        },
      },
      records: { max_bytes: 1024 * 1024 },
      federation: { accept_pair_requests: 'invite', token_ttl: '90d', degraded_after: '24h' },
      directory: { enabled: false },
      relay: {
        enabled: false,
        deposit_after: '60s',
        ttl: '7d',
        poll_interval: '30s',
        max_waiting: 10_000,
        sender_bytes_per_day: 256 * 1024 * 1024,
      },
      storage: { url: '', lease_ttl: '15s', replica_id: '' },
    })
  })

  it('[storage] url: empty (SQLite in the home) or a postgres:// URL; --database overrides it', () => {
    expect(parseConfig(`[identity]\ndid = "${DID}"\n[storage]\nurl = "postgres://u:p@127.0.0.1:5432/spl"\n`).storage.url).toBe(
      'postgres://u:p@127.0.0.1:5432/spl',
    )
    expect(() => parseConfig(`[identity]\ndid = "${DID}"\n[storage]\nurl = "mysql://x"\n`)).toThrow(
      /storage\.url: empty \(SQLite in the home\) or a postgres:\/\/ URL/,
    )
    expect(envToCfg(parseConfig(`[identity]\ndid = "${DID}"\n`), { database: 'postgres://h/db' }).storage.url).toBe('postgres://h/db')
  })

  it('[storage] replica_id: the replica label of /metrics, empty by default (hostname:port), a plain name', () => {
    expect(parseConfig(`[identity]\ndid = "${DID}"\n[storage]\nreplica_id = "a-1"\n`).storage.replica_id).toBe('a-1')
    expect(() => parseConfig(`[identity]\ndid = "${DID}"\n[storage]\nreplica_id = "a 1\\""\n`)).toThrow(
      /storage\.replica_id: letters, digits/,
    )
  })

  it('[records] max_bytes: 1 MiB by default, from 1 KiB to 4 MiB (SPEC 2.4a)', () => {
    expect(parseConfig(`[identity]\ndid = "${DID}"\n`).records.max_bytes).toBe(1024 * 1024)
    expect(parseConfig(`[identity]\ndid = "${DID}"\n[records]\nmax_bytes = 65536\n`).records.max_bytes).toBe(65536)
    expect(() => parseConfig(`[identity]\ndid = "${DID}"\n[records]\nmax_bytes = 100\n`)).toThrow(/records\.max_bytes/)
    expect(() => parseConfig(`[identity]\ndid = "${DID}"\n[records]\nmax_record_bytes = 1\n`)).toThrow(
      /unknown key \[records\] 'max_record_bytes'/,
    )
  })

  it('keeps every [[sync.discovery.static]] entry, in order', () => {
    const text = `${SPEC_CONFIG}[[sync.discovery.static]]\ndid = "${DID}"\nurl = "http://10.0.0.6:9200"\n`
    const cfg = parseConfig(text)
    expect(cfg.sync.discovery.static).toEqual([
      { did: 'did:key:z6Mk...', url: 'http://10.0.0.5:9100', handle: 'bob' },
      { did: DID, url: 'http://10.0.0.6:9200' },
    ])
  })

  it('fills the documented defaults when only [identity] is given', () => {
    const cfg = parseConfig(`[identity]\ndid = "${DID}"\n`)
    expect(cfg.identity).toEqual({ did: DID, key_path: 'keys/primary.key', namespace: 'default' })
    expect(cfg.server).toEqual({ host: '127.0.0.1', port: 9100 })
    expect(cfg.api.trust_loopback).toBe(true)
    expect(cfg.sync.poll_interval_ms).toBe(5000)
    expect(cfg.sync.serve_policy).toBe('open')
    expect(cfg.sync.discovery).toEqual({
      mdns_listen: true,
      mdns_broadcast: false,
      directory_url: '',
      advertise_url: '',
      static: [],
    })
  })

  it('accepts serve_policy = "paired"', () => {
    expect(parseConfig(SPEC_CONFIG.replace('serve_policy = "open"', 'serve_policy = "paired"')).sync.serve_policy).toBe('paired')
  })
})

describe('parseConfig: unknown keys are errors with the key name and its line', () => {
  it('an unknown key in [identity]', () => {
    const text = SPEC_CONFIG.replace('[identity]\n', '[identity]\nnickname = "al"\n')
    const e = configError(text)
    expect(e.message).toContain("'nickname'")
    expect(e.message).toContain(`line ${lineNo(text, 'nickname = "al"')}`)
  })

  it('an unknown top-level section', () => {
    const text = `${SPEC_CONFIG}[srever]\nport = 1\n`
    const e = configError(text)
    expect(e.message).toContain("'srever'")
    expect(e.message).toContain(`line ${lineNo(text, '[srever]')}`)
  })

  it('an unknown key in [sync.discovery]', () => {
    const text = SPEC_CONFIG.replace('mdns_broadcast = false', 'mdns_broadcast = false\nmdns_interface = "eth0"')
    const e = configError(text)
    expect(e.message).toContain("'mdns_interface'")
    expect(e.message).toContain(`line ${lineNo(text, 'mdns_interface = "eth0"')}`)
  })

  it('an unknown key in a [[sync.discovery.static]] entry', () => {
    const text = `${SPEC_CONFIG}weight = 3\n`
    const e = configError(text)
    expect(e.message).toContain("'weight'")
    expect(e.message).toContain(`line ${lineNo(text, 'weight = 3')}`)
  })

  it('names the line of the unknown key, not an earlier valid key of the same name in another section', () => {
    // [server] has a valid `port`; the unknown `port` is the one under [api].
    const text = SPEC_CONFIG.replace('trust_loopback = true              # see 7.1', 'trust_loopback = true\nport = 9100')
    const apiPortLine = text.split('\n').findIndex((l, i) => l === 'port = 9100' && i > lineNo(text, '[api]')) + 1
    const e = configError(text)
    expect(e.message).toContain("'port'")
    expect(e.message).toContain(`line ${apiPortLine}`)
  })

  it('a key misspelt in case (TOML keys are case-sensitive)', () => {
    const text = SPEC_CONFIG.replace('port = 9100', 'Port = 9100')
    const e = configError(text)
    expect(e.message).toContain("'Port'")
    expect(e.message).toContain(`line ${lineNo(text, 'Port = 9100')}`)
  })
})

describe('parseConfig: wrong types name the key', () => {
  const cases: [what: string, from: string, to: string, key: string][] = [
    ['port as a string', 'port = 9100', 'port = "9100"', 'server.port'],
    ['port out of range', 'port = 9100', 'port = 70000', 'server.port'],
    ['port not an integer', 'port = 9100', 'port = 91.5', 'server.port'],
    ['host as a number', 'host = "127.0.0.1"', 'host = 127', 'server.host'],
    ['trust_loopback as a string', 'trust_loopback = true', 'trust_loopback = "yes"', 'api.trust_loopback'],
    ['poll_interval_ms as a string', 'poll_interval_ms = 5000', 'poll_interval_ms = "5s"', 'sync.poll_interval_ms'],
    ['serve_policy not in the enum', 'serve_policy = "open"', 'serve_policy = "closed"', 'sync.serve_policy'],
    ['mdns_listen as a number', 'mdns_listen = true', 'mdns_listen = 1', 'sync.discovery.mdns_listen'],
    ['a static url that is not a URL', 'url = "http://10.0.0.5:9100"', 'url = "not a url"', 'url'],
    ['a did that is not a did:key', 'did = "did:key:z6Mk..."', 'did = "alice"', 'identity.did'],
    ['[server] given as a value', '[server]\nhost = "127.0.0.1"\nport = 9100\n', 'server = 9100\n', 'server'],
  ]
  for (const [what, from, to, key] of cases) {
    it(what, () => {
      const text = SPEC_CONFIG.replace(from, to)
      expect(text).not.toBe(SPEC_CONFIG)
      expect(configError(text).message).toContain(key)
    })
  }

  it('a missing [identity] is named', () => {
    expect(configError('[server]\nport = 9100\n').message).toContain('identity')
  })

  it('when a line is given for a wrong type it is the line of the offending key', () => {
    // Two static peers; only the second has a bad url.
    const text = `${SPEC_CONFIG}[[sync.discovery.static]]\ndid = "${DID}"\nurl = 42\n`
    const e = configError(text)
    expect(e.message).toContain('url')
    const m = /line (\d+)/.exec(e.message)
    if (m) expect(Number(m[1])).toBe(lineNo(text, 'url = 42'))
  })

  it('TOML syntax errors give the line', () => {
    const text = `[identity]\ndid = "${DID}"\n[server]\nport = \n`
    const e = configError(text)
    expect(e.message).toContain('not valid TOML')
    expect(e.message).toContain('line 4')
  })
})

describe('the config of a home', () => {
  let dir: string
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'spl-config-'))
  })
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true })
  })

  it('an uninitialised home throws NOT_INITIALIZED with the fix `spl init`', () => {
    expect(() => loadConfig(dir)).toThrow(NotInitializedError)
    try {
      loadConfig(dir)
    } catch (err) {
      expect((err as NotInitializedError).code).toBe('NOT_INITIALIZED')
      expect((err as NotInitializedError).fix).toBe('spl init')
    }
  })

  it('the config.toml written by initHome parses back, with the DID init printed', () => {
    const home = path.join(dir, 'home')
    const r = initHome(home, { handle: 'alice' })
    const cfg = loadConfig(home)
    expect(cfg.identity.did).toBe(r.did)
    expect(cfg.identity.handle).toBe('alice')
    expect(cfg.server).toEqual({ host: '127.0.0.1', port: 9100 })
    expect(cfg.sync.discovery.static).toEqual([])
  })

  it('a config with static peers survives `spl init --force` (rewritten and still valid)', () => {
    const home = path.join(dir, 'home')
    initHome(home)
    const file = homePaths(home).config
    const withPeers = readFileSync(file, 'utf8').replace(/\n*$/, '\n') + SPEC_CONFIG.slice(SPEC_CONFIG.indexOf('[[sync'))
    // Appended as an operator would: the init config has no `static = []` to clash with.
    writeFileSync(file, withPeers)
    expect(loadConfig(home).sync.discovery.static).toHaveLength(1)
    const r = initHome(home, { force: true })
    const cfg = loadConfig(home)
    expect(cfg.identity.did).toBe(r.did)
    expect(cfg.sync.discovery.static).toEqual([{ did: 'did:key:z6Mk...', url: 'http://10.0.0.5:9100', handle: 'bob' }])
  })

  it('command-line flags override the file; SYNCROPEL_HOME selects the home', () => {
    const home = path.join(dir, 'home')
    initHome(home)
    const env = readEnv({ SYNCROPEL_HOME: home })
    expect(env.home).toBe(home)
    expect(envToCfg(loadConfig(env.home)).server).toEqual({ host: '127.0.0.1', port: 9100 })
    expect(envToCfg(loadConfig(env.home), { host: '0.0.0.0', port: 9200 }).server).toEqual({ host: '0.0.0.0', port: 9200 })
    expect(envToCfg(loadConfig(env.home), { port: 0 }).server.port).toBe(0)
  })
})

describe('durations in config.toml', () => {
  it('reads 500ms, 10s, 30m, 24h, 90d and refuses anything else with the key', () => {
    expect([durationMs('500ms'), durationMs('10s'), durationMs('30m'), durationMs('24h'), durationMs('90d')]).toEqual([
      500, 10_000, 1_800_000, 86_400_000, 7_776_000_000,
    ])
    for (const bad of ['', '10', '0s', '-1h', '1w', '1.5h', 'soon']) expect(durationMs(bad)).toBeUndefined()
    const text = `[identity]\ndid = "${DID}"\n\n[federation]\ntoken_ttl = "ninety days"\n`
    expect(() => parseConfig(text)).toThrow(/federation\.token_ttl: a duration such as .* \(line 5\)/)
  })
})
