// What the CLI needs from @spl/identity, so that it depends on @spl/transport alone (DESIGN.md).
export { isDidKey, shortDid } from '@spl/identity/did-key'
export { InternalError, SplError } from '@spl/identity/errors'
