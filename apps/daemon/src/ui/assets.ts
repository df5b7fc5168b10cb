import { readFile } from 'node:fs/promises'
import { ASSETS_DIR } from '../package-files.js'

/** Names an asset may have: flat, lowercase; anything else is not looked up on disk at all. */
export const ASSET_NAME = /^[a-z0-9][a-z0-9-]{0,60}\.(js|css|svg|html)$/

const TYPES: Record<string, string> = {
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  svg: 'image/svg+xml',
  html: 'text/html; charset=utf-8',
}

const cache = new Map<string, { body: string; type: string }>()

/** One asset's text and content type, or null when there is no such file (read once, then kept). */
export async function asset(name: string): Promise<{ body: string; type: string } | null> {
  if (!ASSET_NAME.test(name)) return null
  const hit = cache.get(name)
  if (hit) return hit
  let body: string
  try {
    body = await readFile(`${ASSETS_DIR}${name}`, 'utf8')
  } catch {
    return null
  }
  const entry = { body, type: TYPES[name.slice(name.lastIndexOf('.') + 1)]! }
  cache.set(name, entry)
  return entry
}
