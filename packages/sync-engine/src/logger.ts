/** The logging the engine needs; pino's logger fits it. */
export interface Logger {
  debug(obj: object, msg?: string): void
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
}

/** Discards everything (the default when no logger is handed in). */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} }
