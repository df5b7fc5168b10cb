import os from 'node:os'
import v8 from 'node:v8'

/**
 * Node flags a daemon process is started with (`spl serve --daemon`; they only take effect at
 * start): a young generation of at most 2 × 2 MB instead of 2 × 16 MB. A catch-up's pages are
 * promoted whatever the size (they live ~100 ms, longer than a scavenge cycle at either size), so
 * the smaller one costs no rate and ~4 MB less at the peak (docs/performance.md, 2026-12-02 evening).
 */
export const DAEMON_NODE_FLAGS = ['--max-semi-space-size=2']

/**
 * Threads of libuv's pool, which verifies the Ed25519 signatures of every record received: one
 * per core the process may use (libuv's default is 4 whatever the machine: half the cores of an
 * 8-core server idle during a catch-up, and two more threads than cores on a 2-core one).
 */
export function threadPoolSize(cores: number = os.availableParallelism()): number {
  return Math.min(Math.max(cores, 2), 64)
}

/**
 * The environment of a daemon process (an operator's own values win): the size of libuv's pool
 * (threadPoolSize), and for glibc's malloc:
 * - two arenas, not one per thread that allocates (the main thread, the verification threads
 *   and V8's helpers share them);
 * - blocks of 32 KiB and more get their own mappings, returned to the system when freed, and
 *   free memory at the top of the heap is given back past 32 KiB. By default glibc raises the
 *   first threshold up to the largest block freed so far (a 700 KB page body, say), after which
 *   such blocks fragment the heap and stay resident.
 * Together: a catch-up's peak 126–142 MB → 117–120 MB (docs/performance.md).
 */
export function daemonEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return {
    UV_THREADPOOL_SIZE: String(threadPoolSize()),
    MALLOC_ARENA_MAX: '2',
    MALLOC_MMAP_THRESHOLD_: '32768',
    MALLOC_TRIM_THRESHOLD_: '32768',
    ...env,
  }
}

/**
 * What a running daemon can still change for itself, before it starts work (measured in
 * docs/performance.md): the old generation grows by 20 % over what survived the last full
 * collection instead of up to 4×, so a catch-up's garbage (pages promoted while in flight) is
 * collected at ~40 MB instead of piling up to ~130 MB (V8 reads the factor at each collection);
 * WebAssembly stays on V8's baseline compiler.
 */
export function tuneDaemonProcess(): void {
  v8.setFlagsFromString('--heap-growing-percent=20')
  // fetch parses HTTP with llhttp compiled to WebAssembly, and tiering it up with the optimizing
  // compiler costs ~30 MB for a moment. Pulls use node:http; `spl sync <thread> from <url>`
  // still resolves the URL's DID with fetch. (V8 lists the flag among its testing flags; it only
  // keeps WebAssembly on the baseline compiler, which Node's own startup never needs.)
  v8.setFlagsFromString('--liftoff-only')
}
