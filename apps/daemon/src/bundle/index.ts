export * from './export.js'
export * from './format.js'
export * from './import.js'
export * from './verify.js'
