// Resolves the DIDs given as arguments with independent resolvers (did-resolver +
// web-did-resolver + key-did-resolver) and prints {did: resolution} as JSON. Run by
// discovery-did-web.e2e.test.ts inside a network namespace whose /etc/hosts maps the test
// domains, with NODE_EXTRA_CA_CERTS naming the test CA (web-did-resolver fetches over https).
import { Resolver } from 'did-resolver'
import * as KeyDidResolver from 'key-did-resolver'
import { getResolver as webDidResolver } from 'web-did-resolver'

const resolver = new Resolver({ ...webDidResolver(), ...KeyDidResolver.getResolver() })
const out = {}
for (const did of process.argv.slice(2)) out[did] = await resolver.resolve(did)
process.stdout.write(JSON.stringify(out))
