export * from './link.js'
export * from './service.js'
export * from './store.js'
export * from './wire.js'
