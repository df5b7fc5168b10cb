// The light part of the daemon package: what the CLI needs on every command (config, home,
// lock files, version, process settings) without loading the HTTP server, the database or the sync engine.
export * from './config.js'
export * from './home.js'
export * from './lifecycle.js'
export * from './load.js'
export * from './package-files.js'
export * from './runtime.js'
