export { BaseCommand, EXIT } from './base.js'
