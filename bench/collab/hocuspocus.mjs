// The Hocuspocus peer of the co-editing benchmark: its server with its SQLite extension,
// on 127.0.0.1. Usage: node hocuspocus.mjs DATABASE_FILE. Prints "listening on PORT".

import { Server } from '@hocuspocus/server'
import { SQLite } from '@hocuspocus/extension-sqlite'

const database = process.argv[2]
if (!database) {
  console.error('usage: node hocuspocus.mjs DATABASE_FILE')
  process.exit(2)
}
const server = new Server({
  port: 0,
  address: '127.0.0.1',
  quiet: true,
  extensions: [new SQLite({ database })]
})
await server.listen()
console.log(`listening on ${server.address.port}`)
const stop = async () => {
  await server.destroy()
  process.exit(0)
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
