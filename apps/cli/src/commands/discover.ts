import { SplError } from '@spl/transport/identity'
import { Command, Option } from 'clipanion'
import { BaseCommand, EXIT } from '../base.js'

function untilText(ms: number): string {
  const d = ms - Date.now()
  const abs = Math.abs(d)
  if (abs < 60_000) return 'just now'
  const span =
    abs >= 86_400_000
      ? `${Math.round(abs / 86_400_000)}d`
      : abs >= 3_600_000
        ? `${Math.round(abs / 3_600_000)}h`
        : `${Math.round(abs / 60_000)}m`
  return d >= 0 ? `in ${span}` : `${span} ago`
}

/** `spl discover --peer-url URL`: fetch a peer's signed manifest and say whether it holds. */
export class DiscoverCommand extends BaseCommand {
  static override paths = [['discover']]
  static override usage = Command.Usage({
    description: "Fetch and verify a peer's signed manifest (/.well-known/syncropel)",
    details: `
      Checks the manifest's Ed25519 signature against the DID it names, that the DID is the one
      expected (--did, else the one the URL's /v1/identity answers), and its validity. Exits 0
      when it holds and 1 with the reason when it does not: a bad signature
      (MANIFEST_SIGNATURE_INVALID), another DID (MANIFEST_DID_MISMATCH), an expired manifest
      with --strict (MANIFEST_EXPIRED), or no manifest at all (MANIFEST_UNREACHABLE,
      MANIFEST_NOT_FOUND, MANIFEST_MALFORMED). Needs no running daemon.
    `,
    examples: [
      ['Check the daemon at port 9250', 'spl discover --peer-url http://localhost:9250'],
      ['Refuse an expired manifest too, as JSON', 'spl discover --peer-url https://hub.example.com --strict --json'],
      ['Expect a given DID', 'spl discover --peer-url http://10.0.0.5:9100 --did did:key:z6Mk…'],
    ],
  })
  peerUrl = Option.String('--peer-url', { required: true, description: 'The peer daemon URL' })
  did = Option.String('--did', { description: 'The DID the peer must have' })
  strict = Option.Boolean('--strict', false, { description: 'Refuse an expired manifest (exit 1)' })
  timeout = Option.String('--timeout', '5000', { description: 'How long to wait for the peer, in ms' })

  protected async run() {
    const { fetchManifest, verifyManifest, ManifestInvalidError } = await import('@spl/discovery')
    const url = this.peerUrl.replace(/\/+$/, '')
    const timeoutMs = Number(this.timeout)
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 120_000) {
      throw new SplError('INVALID_ARGUMENT', `--timeout ${this.timeout} is not a number of ms between 1 and 120000`, {
        fix: '--timeout 5000',
      })
    }
    const doc = await fetchManifest(url, { timeoutMs })
    const checked = verifyManifest(doc, { expectedDid: this.did, strict: this.strict })
    if (this.did === undefined) {
      // Without --did, the DID that answers /v1/identity at the same URL is the one expected.
      const answering = await identityAt(url, timeoutMs)
      if (answering !== undefined && answering !== checked.did) {
        throw new ManifestInvalidError(
          'MANIFEST_DID_MISMATCH',
          `the manifest is signed by ${checked.did}, but ${url}/v1/identity answers ${answering}`,
          "something between you and the peer serves another daemon's manifest: check the URL and any proxy in front of it",
        )
      }
    }
    const m = checked.manifest
    const result = {
      object: 'manifest_check',
      url,
      verified: true,
      did: checked.did,
      expired: checked.expired,
      signed_at: m.signature.signed_at,
      expires_at: m.signature.expires_at,
      manifest: m,
    }
    return this.render(result, () => {
      this.out(`✓ ${url} is ${checked.did}`)
      this.out(`  signature    valid (Ed25519, ${m.signature.key_id.slice(-6)}), signed ${untilText(checked.signedAt)}`)
      this.out(`  expires      ${m.signature.expires_at} (${untilText(checked.expiresAt)})${checked.expired ? '  EXPIRED' : ''}`)
      this.out(`  version      ${m.daemon.version} (federation protocol ${m.daemon.federation_protocol_version})`)
      this.out(`  pairing      ${m.federation.pair_endpoint} (accepts requests: ${m.consent_policy.accepts_pair_requests})`)
      this.out(`  changes      ${m.federation.sync_change_endpoint}`)
      this.out(`  namespaces   ${m.advertises.namespaces.join(', ') || '-'}`)
      if (checked.expired) this.err('warning: the manifest expired (the peer re-signs it daily while it runs); --strict refuses it')
      return EXIT.OK
    })
  }
}

/** The DID that `<url>/v1/identity` answers, or undefined when it does not answer one. */
async function identityAt(url: string, timeoutMs: number): Promise<string | undefined> {
  try {
    const res = await fetch(`${url}/v1/identity`, { signal: AbortSignal.timeout(timeoutMs) })
    if (!res.ok) return undefined
    const body = (await res.json()) as { did?: unknown }
    return typeof body.did === 'string' ? body.did : undefined
  } catch {
    return undefined
  }
}
