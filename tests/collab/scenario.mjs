// Co-editing scenarios played by the stock Yjs clients (yjs, y-websocket) against a running
// ruche. The end-to-end tests start the server, then run `node scenario.mjs NAME` with:
//   RUCHE_URL       http://127.0.0.1:PORT
//   RUCHE_USER, RUCHE_PASSWORD
//   FILE_ID         the oc:fileid of the document's file
//   FILE_PATH       its path below /dav/ (for the WebDAV side of a scenario)
// Each scenario prints one JSON line with what it saw, and exits 0; any failure exits 1.

import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'

const env = (name) => {
  const value = process.env[name]
  if (!value) throw new Error(`${name} is not set`)
  return value
}
const base = env('RUCHE_URL')
const fileId = env('FILE_ID')
const basic = 'Basic ' + Buffer.from(`${env('RUCHE_USER')}:${env('RUCHE_PASSWORD')}`).toString('base64')
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

async function accessToken () {
  const response = await fetch(`${base}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: env('RUCHE_USER'), password: env('RUCHE_PASSWORD') })
  })
  if (!response.ok) throw new Error(`login: ${response.status}`)
  return (await response.json()).access_token
}

/** A browser-like client: its own document and provider, synced with the server. */
async function client (token, name, params = {}) {
  const doc = new Y.Doc()
  const provider = new WebsocketProvider(base.replace(/^http/, 'ws') + '/collab', fileId, doc, {
    WebSocketPolyfill: WebSocket,
    params: { token, ...params },
    disableBc: true
  })
  provider.awareness.setLocalStateField('user', { name })
  const closes = []
  provider.on('connection-close', (event) => {
    if (event) closes.push({ code: event.code, reason: event.reason })
  })
  await until(() => provider.synced, `${name} to sync`)
  return { doc, provider, text: doc.getText('codemirror'), closes }
}

async function until (condition, what, timeout = 15000) {
  const deadline = Date.now() + timeout
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

const converged = (clients) => clients.every((c) => c.text.toString() === clients[0].text.toString())

async function davPut (body) {
  const response = await fetch(`${base}/dav/${env('FILE_PATH')}`, {
    method: 'PUT',
    headers: { authorization: basic },
    body
  })
  if (!response.ok) throw new Error(`PUT: ${response.status}`)
}

async function davDelete () {
  const response = await fetch(`${base}/dav/${env('FILE_PATH')}`, {
    method: 'DELETE',
    headers: { authorization: basic }
  })
  if (!response.ok) throw new Error(`DELETE: ${response.status}`)
}

const scenarios = {
  // Three clients type at once; all end with the same text, holding every edit.
  async converge (token) {
    const clients = await Promise.all(['Anne', 'Bruno', 'Chloé'].map((n) => client(token, n)))
    await Promise.all(clients.map(async (c, i) => {
      for (let k = 0; k < 10; k++) {
        // At either end, so that no marker lands inside another.
        const at = Math.random() < 0.5 ? 0 : c.text.length
        c.text.insert(at, `[${i}:${k}]`)
        await sleep(Math.random() * 20)
      }
    }))
    await until(() => converged(clients) && clients[0].text.length > 0, 'convergence')
    await sleep(200)
    const text = clients[0].text.toString()
    clients.forEach((c) => c.provider.destroy())
    return { text, others: clients.map((c) => c.provider.awareness.getStates().size) }
  },

  // A client edits while disconnected; its edits merge when it comes back.
  async offline (token) {
    const [a, b] = await Promise.all([client(token, 'Anne'), client(token, 'Bruno')])
    a.provider.disconnect()
    a.text.insert(0, 'hors ligne ')
    b.text.insert(b.text.length, ' en ligne')
    await sleep(300)
    a.provider.connect()
    await until(() => converged([a, b]) && a.text.toString().includes('en ligne'), 'merge on reconnect')
    const text = a.text.toString()
    a.provider.destroy()
    b.provider.destroy()
    return { text }
  },

  // The browser types while a desktop saves the file over WebDAV: both edits survive.
  async webdav (token) {
    const a = await client(token, 'Anne')
    const original = a.text.toString()
    a.text.insert(a.text.length, 'ajout du navigateur\n')
    await sleep(200)
    await davPut(original.replace('Ordre du jour', 'Ordre du jour du 4 décembre'))
    await until(() => a.text.toString().includes('4 décembre'), 'the WebDAV write to arrive')
    await sleep(200)
    const text = a.text.toString()
    a.provider.destroy()
    return { text }
  },

  // Types a line, checks that a second client sees it, then leaves.
  async type (token) {
    const a = await client(token, 'Anne')
    a.text.insert(a.text.length, process.env.TEXT ?? 'ligne tapée\n')
    const b = await client(token, 'Bruno')
    await until(() => converged([a, b]), 'the second client to see it')
    const text = b.text.toString()
    a.provider.destroy()
    b.provider.destroy()
    return { text }
  },

  // A read-only client edits locally: nobody else sees it, and it still hears the others.
  async readonly (token) {
    const reader = await client(token, 'Lecteur', { access: 'read' })
    const writer = await client(token, 'Anne')
    reader.text.insert(0, 'ignoré ')
    writer.text.insert(writer.text.length, ' écrit')
    await until(() => reader.text.toString().includes('écrit'), 'the reader to hear the writer')
    await sleep(300)
    const fresh = await client(token, 'Bruno')
    const result = { writer: writer.text.toString(), fresh: fresh.text.toString() }
    for (const c of [reader, writer, fresh]) c.provider.destroy()
    return result
  },

  // Reads the document as a new client sees it.
  async read (token) {
    const a = await client(token, 'Anne')
    const text = a.text.toString()
    a.provider.destroy()
    return { text }
  },

  // The file is deleted over WebDAV while open: the client is told, and does not retry.
  async deleted (token) {
    const a = await client(token, 'Anne')
    await davDelete()
    await until(() => a.closes.length > 0, 'the document to close')
    await sleep(300)
    const result = { closes: a.closes, reconnected: a.provider.wsconnected }
    a.provider.destroy()
    return result
  }
}

const name = process.argv[2]
const scenario = scenarios[name]
if (!scenario) {
  console.error(`unknown scenario ${name}; known: ${Object.keys(scenarios).join(', ')}`)
  process.exit(2)
}
try {
  const result = await scenario(await accessToken())
  console.log(JSON.stringify(result))
  process.exit(0)
} catch (error) {
  console.error(error)
  process.exit(1)
}
