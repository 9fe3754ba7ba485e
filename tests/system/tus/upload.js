// upload.js: one upload with tus-js-client (the reference tus client), for test_tus.py.
//
//   node upload.js --endpoint URL --file PATH --session TOKEN --registration ID --kind ktp
//                  [--chunk-size BYTES] [--retry-delays 0,200,500] [--filetype image/png]
//
// Prints one JSON line: {"ok": true, "url": ..., "progress": [...]} on success, or
// {"ok": false, "error": ...}. Every retry is printed to stderr, so the test's log shows them.
'use strict';

const fs = require('fs');
const tus = require('tus-js-client');

function args(argv) {
  const out = {};
  for (let i = 2; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || i + 1 >= argv.length) {
      throw new Error(`bad argument ${argv[i]}`);
    }
    out[argv[i].slice(2)] = argv[i + 1];
  }
  for (const need of ['endpoint', 'file', 'session', 'registration', 'kind']) {
    if (!out[need]) throw new Error(`--${need} is required`);
  }
  return out;
}

function main() {
  const a = args(process.argv);
  const data = fs.readFileSync(a.file);
  const retries = [];
  const upload = new tus.Upload(data, {
    endpoint: a.endpoint,
    chunkSize: a['chunk-size'] ? Number(a['chunk-size']) : Infinity,
    retryDelays: (a['retry-delays'] || '0,200,500,1000').split(',').map(Number),
    headers: { Authorization: `Bearer ${a.session}` },
    metadata: {
      registration_id: a.registration,
      kind: a.kind,
      filetype: a.filetype || 'image/png',
      filename: 'photo.png',
    },
    // Keep the test's own record of what happened; no URL storage across runs.
    storeFingerprintForResuming: false,
    onShouldRetry(err, attempt, options) {
      const status = err.originalResponse ? err.originalResponse.getStatus() : 0;
      retries.push({ attempt, status, message: String(err.message).split('\n')[0] });
      process.stderr.write(`retry ${attempt} status=${status}: ${err.message}\n`);
      return status === 0 || status === 409 || status === 423 || status >= 500;
    },
    onSuccess() {
      process.stdout.write(JSON.stringify({ ok: true, url: upload.url, retries }) + '\n');
    },
    onError(err) {
      process.stdout.write(JSON.stringify({ ok: false, error: String(err), retries }) + '\n');
      process.exitCode = 1;
    },
  });
  upload.start();
}

try {
  main();
} catch (e) {
  process.stdout.write(JSON.stringify({ ok: false, error: String(e) }) + '\n');
  process.exitCode = 2;
}
