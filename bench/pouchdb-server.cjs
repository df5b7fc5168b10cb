// A PouchDB server for the benchmarks' comparison: express + express-pouchdb (the CouchDB HTTP
// protocol, `POST /_replicate` included) over pouchdb-node's on-disk LevelDB adapter, listening
// on 127.0.0.1 on a free port. Prints `{"port":N}` on one line of stdout once it listens.
//
//   node bench/pouchdb-server.cjs <directory>
//
// PouchDB is a devDependency of the repository root, used by bench/ only (never by the tests).
'use strict'
const path = require('node:path')
const fs = require('node:fs')

const dir = process.argv[2]
if (!dir) {
  console.error('usage: node bench/pouchdb-server.cjs <directory>')
  process.exit(2)
}
fs.mkdirSync(dir, { recursive: true })

const express = require('express')
const PouchDB = require('pouchdb-node').defaults({ prefix: `${path.resolve(dir)}${path.sep}` })
const expressPouchDB = require('express-pouchdb')

const app = express()
app.use(
  '/',
  expressPouchDB(PouchDB, {
    // The CouchDB routes PouchDB replication uses, plus the replicator endpoint; config and logs
    // in memory (nothing written outside the directory).
    mode: 'minimumForPouchDB',
    overrideMode: { include: ['routes/replicate'] },
    inMemoryConfig: true,
  }),
)
const server = app.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`)
})
server.keepAliveTimeout = 60_000
const stop = () => server.close(() => process.exit(0))
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
