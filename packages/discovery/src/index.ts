export * from './discovery.js'
export * from './manifest.js'
export * from './source.js'
export * from './static.js'
