// clipanion, loaded by run.ts only once a command needs parsing (`spl version` does not). A module
// of its own, so the bundle's dynamic import of it is plain ESM (clipanion itself is CommonJS).
export { Builtins, Cli } from 'clipanion'
