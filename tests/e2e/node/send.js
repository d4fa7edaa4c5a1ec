// Sends one of every call with Segment's official Node.js SDK (@segment/analytics-node) to the
// collector, then prints the events as the SDK built them (one JSON array on stdout).
// Usage: node send.js <collector-url> <write-key> <run-id>
'use strict'
const { Analytics } = require('@segment/analytics-node')

const [host, writeKey, run] = process.argv.slice(2)
const analytics = new Analytics({ writeKey, host, path: '/v1/batch', flushAt: 4, flushInterval: 200, maxRetries: 3 })

const sent = []
const errors = []
analytics.on('error', (err) => errors.push(String(err && (err.reason || err.message || err))))
const done = (err, ctx) => {
  if (err) errors.push(String(err))
  else sent.push(ctx.event)
}

const user = `node-user-${run}`
const anon = `node-anon-${run}`
analytics.identify({ userId: user, anonymousId: anon, traits: { email: 'ada@example.com', plan: 'pro', logins: 3 } }, done)
analytics.track({ userId: user, event: 'Order Completed', properties: { orderId: `o-${run}`, total: 42.5, items: [{ sku: 'a', qty: 2 }] } }, done)
analytics.track({ anonymousId: anon, event: 'Anonymous Thing', properties: { nested: { deep: { ok: true } }, 'ünïcode': 'ça va ✓' } }, done)
analytics.page({ userId: user, category: 'Docs', name: 'Quick start', properties: { path: '/docs/quick-start', referrer: '' } }, done)
analytics.screen({ userId: user, name: 'Home', properties: { variant: 'B' } }, done)
analytics.group({ userId: user, groupId: `g-${run}`, traits: { name: 'Initech', employees: 120 } }, done)
analytics.alias({ userId: user, previousId: anon }, done)
analytics.track({ userId: user, event: 'Old Event', timestamp: new Date(Date.now() - 60000), properties: { minute_ago: true } }, done)

analytics.closeAndFlush({ timeout: 20000 }).then(() => {
  if (errors.length) {
    console.error(JSON.stringify(errors))
    process.exit(1)
  }
  process.stdout.write(JSON.stringify(sent))
})
