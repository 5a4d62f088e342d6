// Replays real editing traces through a co-editing server with stock clients, and prints
// one JSON line of measurements. Driven by `ruche-bench collab`, which starts the servers
// and measures their CPU and memory; this program only plays the clients.
//
//   node replay.mjs WORKLOAD SERVER URL DOC [options as KEY=VALUE]
//   WORKLOAD  fanout | concurrent | many | store | open
//   SERVER    ruche (y-websocket provider) | hocuspocus (its own provider)
//   URL       ws://127.0.0.1:PORT (ruche: with /collab)
//   DOC       the document: a file id for ruche, a name for Hocuspocus
//   options   token=, trace=, limit=, watchers=, docs= (comma-separated, for `many`)
//
// Traces: the editing-traces collection by Joseph Gentle (CC BY 4.0); automerge-paper was
// first prepared by Martin Kleppmann.

import { readFileSync } from 'node:fs'
import { gunzipSync } from 'node:zlib'
import { createInterface } from 'node:readline'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { HocuspocusProvider } from '@hocuspocus/provider'
import WebSocket from 'ws'

const [workload, server, url, docName, ...rest] = process.argv.slice(2)
const options = Object.fromEntries(rest.map((kv) => kv.split(/=(.*)/s).slice(0, 2)))
const now = () => performance.timeOrigin + performance.now()
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const WINDOW = 200
// Every provider adds a process exit listener; fifty watchers are not a leak.
process.setMaxListeners(0)

function loadTrace (path) {
  return JSON.parse(gunzipSync(readFileSync(path)).toString('utf8'))
}

/** A client of `server` on document `name`, resolved once synced. */
function connect (name = docName) {
  const doc = new Y.Doc()
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no sync with ${server}`)), 60000)
    const done = (provider) => {
      clearTimeout(timer)
      resolve({ doc, provider, text: doc.getText('codemirror') })
    }
    if (server === 'ruche') {
      const provider = new WebsocketProvider(url, name, doc, {
        WebSocketPolyfill: WebSocket,
        params: { token: options.token },
        disableBc: true
      })
      if (provider.synced) done(provider)
      else provider.once('sync', () => done(provider))
    } else {
      const provider = new HocuspocusProvider({
        url,
        name,
        document: doc,
        WebSocketPolyfill: WebSocket,
        onSynced: () => done(provider)
      })
    }
  })
}

function close (client) {
  client.provider.destroy()
}

/** Applies one transaction of a trace, positions clamped to the current text. */
function applyTxn (client, txn) {
  client.doc.transact(() => {
    for (const [pos, del, ins] of txn.patches) {
      const at = Math.min(pos, client.text.length)
      if (del > 0) client.text.delete(at, Math.min(del, client.text.length - at))
      if (ins) client.text.insert(at, ins)
    }
  })
}

function percentile (sorted, p) {
  if (sorted.length === 0) return null
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]
}

function latencyStats (latencies) {
  const sorted = Float64Array.from(latencies).sort()
  return { p50_ms: percentile(sorted, 50), p99_ms: percentile(sorted, 99) }
}

/** How many items of `client` the document holds: its clock in the state vector. */
const clockOf = (doc, client) => Y.getState(doc.store, client)

/**
 * Records the sender's updates: when each was made, and the sender's clock after it.
 * Servers may merge several updates into one message (Hocuspocus does), so delivery is
 * judged by the receiver's state vector, not by counting messages. An update that only
 * deletes does not move the clock; it counts for throughput, not for latency.
 */
function recordSends (sender) {
  const records = []
  let last = clockOf(sender.doc, sender.doc.clientID)
  sender.doc.on('update', (_update, origin) => {
    if (origin === sender.provider) return
    const clock = clockOf(sender.doc, sender.doc.clientID)
    records.push({ t: now(), clock, timed: clock > last })
    last = clock
  })
  return records
}

/** Follows what `receiver` got of `records`, pushing latencies; returns a poll function. */
function follow (receiver, senderId, records, latencies, onProgress) {
  let next = 0
  const poll = () => {
    const clock = clockOf(receiver.doc, senderId)
    const t = now()
    const before = next
    while (next < records.length && records[next].clock <= clock) {
      if (records[next].timed) latencies.push(t - records[next].t)
      next++
    }
    if (next > before) onProgress(next - before)
    return next
  }
  receiver.doc.on('update', (_update, origin) => {
    if (origin === receiver.provider) poll()
  })
  return poll
}

/** Types `txns` on `sender` as fast as a window of unacknowledged updates allows. */
async function type (sender, txns, records, acked) {
  for (const [i, txn] of txns.entries()) {
    while (records.length - acked() >= WINDOW) await sleep(1)
    applyTxn(sender, txn)
    if (i % 50 === 0) await sleep(0)
  }
}

async function untilDone (done, what) {
  const deadline = now() + 60000
  while (!done()) {
    if (now() > deadline) throw new Error(`timed out: ${what}`)
    await sleep(5)
  }
}

async function play (sender, receivers, txns) {
  const records = recordSends(sender)
  const latencies = []
  const polls = receivers.map((r) => follow(r, sender.doc.clientID, records, latencies, () => {}))
  const started = now()
  await type(sender, txns, records, () => polls[0]())
  await untilDone(() => polls.every((poll) => poll() >= records.length), 'fan-out')
  const seconds = (now() - started) / 1000
  const updates = records.length
  return { updates, seconds, updates_per_s: updates / seconds, ...latencyStats(latencies) }
}

const workloads = {
  // One typist, many watchers: the seph-blog1 trace.
  async fanout () {
    const trace = loadTrace(options.trace)
    const txns = trace.txns.slice(0, Number(options.limit ?? trace.txns.length))
    const typist = await connect()
    const watchers = await Promise.all(Array.from({ length: Number(options.watchers ?? 50) }, () => connect()))
    const result = await play(typist, watchers, txns)
    for (const c of [typist, ...watchers]) close(c)
    return result
  },

  // Two typists at once: the friendsforever trace, each agent on its own client.
  async concurrent () {
    const trace = loadTrace(options.trace)
    const limit = Number(options.limit ?? trace.txns.length)
    const txns = trace.txns.slice(0, limit)
    const a = await connect()
    const b = await connect()
    // Both type into one shared text; a sender's updates are counted by the other client.
    const result = await playPair(a, b, txns.filter((t) => t.agent === 0), txns.filter((t) => t.agent !== 0))
    close(a)
    close(b)
    return result
  },

  // Many documents open at once, two clients each; waits on stdin while the caller measures.
  async many () {
    const names = options.docs.split(',')
    const clients = []
    for (const name of names) {
      const pair = [await connect(name), await connect(name)]
      for (const [i, c] of pair.entries()) c.text.insert(0, `client ${i} of ${name}\n`)
      clients.push(...pair)
    }
    await sleep(500)
    console.log(JSON.stringify({ ready: true, documents: names.length, clients: clients.length }))
    await new Promise((resolve) => createInterface({ input: process.stdin }).once('line', resolve))
    for (const c of clients) close(c)
    return { documents: names.length }
  },

  // Builds the whole automerge-paper document and hands it to the server.
  async store () {
    const trace = loadTrace(options.trace)
    const local = { doc: new Y.Doc() }
    local.text = local.doc.getText('codemirror')
    for (const txn of trace.txns) applyTxn(local, txn)
    const client = await connect()
    Y.applyUpdate(client.doc, Y.encodeStateAsUpdate(local.doc))
    await sleep(1500)
    const result = {
      length: local.text.length,
      v1_bytes: Y.encodeStateAsUpdate(local.doc).length,
      v2_bytes: Y.encodeStateAsUpdateV2(local.doc).length
    }
    close(client)
    await sleep(500)
    return result
  },

  // Time for a new client to open a stored document: connection to synced.
  async open () {
    const started = now()
    const client = await connect()
    const ms = now() - started
    const length = client.text.length
    close(client)
    return { open_ms: ms, length }
  }
}

/** Two clients typing at once; each one's updates are timed at the other. */
async function playPair (a, b, txnsA, txnsB) {
  const recordsA = recordSends(a)
  const recordsB = recordSends(b)
  const latencies = []
  const atB = follow(b, a.doc.clientID, recordsA, latencies, () => {})
  const atA = follow(a, b.doc.clientID, recordsB, latencies, () => {})
  const started = now()
  await Promise.all([type(a, txnsA, recordsA, atB), type(b, txnsB, recordsB, atA)])
  await untilDone(() => atB() >= recordsA.length && atA() >= recordsB.length, 'both typists')
  const seconds = (now() - started) / 1000
  const updates = recordsA.length + recordsB.length
  return { updates, seconds, updates_per_s: updates / seconds, ...latencyStats(latencies) }
}

const run = workloads[workload]
if (!run) {
  console.error(`unknown workload ${workload}`)
  process.exit(2)
}
try {
  console.log(JSON.stringify(await run()))
  process.exit(0)
} catch (error) {
  console.error(error)
  process.exit(1)
}
