// The ingest benchmark's Express baseline (cmd/appwrite-sync/loadgen_test.go): the webhook
// handler of Appwrite's guide, verify the signature (HMAC-SHA1 of the webhook URL and the raw
// body, base64), parse the JSON, answer 200, store nothing.
// Usage: node server.js PORT WEBHOOK_URL SECRET   (prints "listening" when ready)
'use strict';
const crypto = require('crypto');
const express = require('express');

const [port, url, secret] = process.argv.slice(2);
const app = express();
app.post('/webhooks/appwrite', express.raw({ type: () => true, limit: '5mb' }), (req, res) => {
  const want = crypto.createHmac('sha1', secret).update(url).update(req.body).digest();
  const got = Buffer.from(req.get('X-Appwrite-Webhook-Signature') || '', 'base64');
  if (got.length !== want.length || !crypto.timingSafeEqual(got, want)) {
    return res.status(401).end();
  }
  JSON.parse(req.body);
  res.json({ recorded: true, result: 'new' });
});
app.listen(Number(port), '127.0.0.1', () => console.log('listening'));
