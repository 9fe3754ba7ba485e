// drive.js: one headless Debian Chromium, driven by tests/system/test_page.py.
//
// Usage: node drive.js --chromium /usr/bin/chromium --user-data-dir DIR [--no-js]
//                      [--width 360 --height 740]
// Reads one JSON command per line on standard input and writes one JSON answer per line on
// standard output: {"ok": true, "value": ...} or {"ok": false, "error": "..."}. Closes the
// browser and exits at end of input or on {"cmd": "quit"}. Every command has a time limit.
//
// --no-js starts Chromium with --blink-settings=scriptEnabled=false: the page's scripts do not
// run and <noscript> content (the meta refresh) is live, as for a visitor without JavaScript.
'use strict';

const readline = require('readline');
const { chromium } = require('playwright-core');

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}

const noJs = process.argv.includes('--no-js');
const width = Number(arg('--width', '360'));
const height = Number(arg('--height', '740'));
const flags = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
if (noJs) flags.push('--blink-settings=scriptEnabled=false');

let context = null;
let page = null;
let navigations = 0;   // main-frame navigations (the no-JS page reloading itself counts)
const documents = [];  // URLs of the documents loaded, in order

async function start() {
  context = await chromium.launchPersistentContext(arg('--user-data-dir'), {
    executablePath: arg('--chromium', '/usr/bin/chromium'),
    headless: true,
    args: flags,
    viewport: { width, height },
    deviceScaleFactor: 1,
    isMobile: false,
    locale: arg('--locale', 'id-ID'),
    timeout: 30000,
  });
  page = context.pages()[0] || await context.newPage();
  page.setDefaultTimeout(15000);
  page.on('framenavigated', (f) => {
    if (f === page.mainFrame()) { navigations++; documents.push(f.url()); }
  });
}

// The text and visibility of SELECTOR, read through the DevTools protocol's DOM (no page
// script needed, so this works with scripts disabled too).
async function probe(selector) {
  const el = await page.$(selector);
  if (!el) return { found: false, text: null, visible: false };
  return { found: true, text: (await el.textContent()) || '', visible: await el.isVisible() };
}

async function waitFor(what, timeoutMs, intervalMs, pred) {
  const deadline = Date.now() + timeoutMs;
  const tries = Math.ceil(timeoutMs / intervalMs) + 1;
  for (let i = 0; i < tries; i++) {
    let v;
    try { v = await pred(); } catch (e) { v = undefined; } // a navigation in between: retry
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

const commands = {
  async goto(c) {
    const res = await page.goto(c.url, { waitUntil: 'load' });
    return { status: res ? res.status() : null, url: page.url() };
  },
  async reload() {
    const res = await page.reload({ waitUntil: 'load' });
    return { status: res ? res.status() : null, url: page.url() };
  },
  async click(c) {
    await page.click(c.selector);
    await page.waitForLoadState('load');
    return page.url();
  },
  probe: (c) => probe(c.selector),
  // Wait until SELECTOR is visible and its text matches the regular expression PATTERN.
  async wait_text(c) {
    const re = new RegExp(c.pattern);
    const p = await waitFor(`${c.selector} =~ /${c.pattern}/`, c.timeout_ms || 15000, 100,
      async () => {
        const q = await probe(c.selector);
        return q.visible && re.test(q.text) ? q : null;
      });
    return p.text;
  },
  async wait_navigations(c) {
    await waitFor(`${c.count} navigations`, c.timeout_ms || 15000, 100,
      async () => navigations >= c.count);
    return navigations;
  },
  navigations: async () => ({ count: navigations, documents }),
  html: async () => page.content(),
  url: async () => page.url(),
  // The page's localStorage (needs JavaScript, like the page itself).
  local_storage: async () => page.evaluate(() => Object.assign({}, window.localStorage)),
  async cookies() {
    const all = await context.cookies();
    return all.map((k) => ({ name: k.name, value: k.value, httpOnly: k.httpOnly }));
  },
  async clear_cookies() {
    await context.clearCookies();
    return true;
  },
  async screenshot(c) {
    await page.screenshot({ path: c.path, fullPage: !!c.full_page });
    return c.path;
  },
};

async function main() {
  await start();
  const browser = context.browser();
  const hello = { ok: true, value: { version: browser ? browser.version() : null } };
  process.stdout.write(JSON.stringify(hello) + '\n');
  const rl = readline.createInterface({ input: process.stdin });
  for await (const line of rl) {
    if (!line.trim()) continue;
    let c;
    try { c = JSON.parse(line); } catch (e) {
      process.stdout.write(JSON.stringify({ ok: false, error: 'bad command line' }) + '\n');
      continue;
    }
    if (c.cmd === 'quit') break;
    let answer;
    try {
      const fn = commands[c.cmd];
      if (!fn) throw new Error(`unknown command ${c.cmd}`);
      answer = { ok: true, value: await fn(c) };
    } catch (e) {
      answer = { ok: false, error: String(e && e.message ? e.message : e) };
    }
    process.stdout.write(JSON.stringify(answer) + '\n');
  }
  await context.close();
}

main().then(() => process.exit(0), (e) => {
  const error = `driver: ${e && e.message ? e.message : e}`;
  process.stdout.write(JSON.stringify({ ok: false, error }) + '\n');
  process.exit(1);
});
