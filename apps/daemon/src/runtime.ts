import v8 from 'node:v8'

/**
 * Node flags a daemon process is started with (`spl serve --daemon`; they only take effect at
 * start): a young generation of at most 2 × 4 MB instead of 2 × 16 MB.
 */
export const DAEMON_NODE_FLAGS = ['--max-semi-space-size=4']

/**
 * The environment of a daemon process: glibc gives each thread that allocates an arena of its
 * own; two are enough for the main thread, the verification threads and V8's helpers.
 */
export function daemonEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { MALLOC_ARENA_MAX: '2', ...env }
}

/**
 * What a running daemon can still change for itself, before it starts work: the old generation
 * grows by 20 % over what survived the last full collection instead of up to 4×, so a
 * catch-up's garbage (pages promoted while in flight) is collected at ~40 MB instead of piling
 * up to ~130 MB. V8 reads this factor at each collection. (Measured in docs/performance.md.)
 */
export function tuneDaemonProcess(): void {
  v8.setFlagsFromString('--heap-growing-percent=20')
}
