await import('./dist/index.js')
await new Promise((r) => setTimeout(r, 200))
const m = process.memoryUsage()
console.log(
  'rss',
  (m.rss / 1e6).toFixed(1),
  'heapTotal',
  (m.heapTotal / 1e6).toFixed(1),
  'heapUsed',
  (m.heapUsed / 1e6).toFixed(1),
  'ext',
  (m.external / 1e6).toFixed(1),
)
