// Real Confab processes for the browser tests: nodes (each with its
// in-process gateway, or with the gateway run apart) on loopback, started
// from config files in a temporary directory, and headless Chromium.

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const ROOT = join(here, '..', '..');
const TARGET = process.env.CARGO_TARGET_DIR || join(ROOT, 'target');
export const NODE_BIN = process.env.CONFAB_NODE_BIN || join(TARGET, 'debug', 'confab-node');
export const GATEWAY_BIN = process.env.CONFAB_GATEWAY_BIN || join(TARGET, 'debug', 'confab-gateway');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
/** Where screenshots go (tests/e2e/screenshots, one folder per test). */
export const SHOTS = join(here, 'screenshots');
/** The longest any single wait may take before a test fails (a hang guard). */
export const GUARD_MS = 20000;

/** A free TCP port on 127.0.0.1. */
export function tcpPort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = /** @type {import('node:net').AddressInfo} */ (s.address());
      s.close(() => resolve(port));
    });
  });
}

/** A free UDP port on 127.0.0.1. */
export function udpPort() {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Waits until `url` answers 200 (a hang guard, not a speed claim). */
export async function waitReady(url, guard = GUARD_MS) {
  const until = Date.now() + guard;
  for (;;) {
    try {
      const r = await fetch(url);
      if (r.ok) return;
    } catch {}
    if (Date.now() > until) throw new Error(`${url} never became ready`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A node process with its config, data directory and (maybe) gateway. */
export class NodeProc {
  /**
   * @param {string} name
   * @param {{gateway?: 'in-process'|'separate', messagesPerMinute?: number, requestsPerMinute?: number}} [opts]
   */
  constructor(name, opts = {}) {
    this.name = name;
    this.separateGateway = opts.gateway === 'separate';
    // Tests that post a long backlog through the protocol raise the rate
    // limits (a minute's worth of tokens is the burst a user may send).
    this.messagesPerMinute = opts.messagesPerMinute;
    this.requestsPerMinute = opts.requestsPerMinute;
    this.dir = mkdtempSync(join(tmpdir(), `confab-e2e-${name}-`));
    this.data = join(this.dir, 'data');
    this.config = join(this.dir, 'node.toml');
    /** @type {import('node:child_process').ChildProcess|null} */
    this.proc = null;
    /** @type {import('node:child_process').ChildProcess|null} */
    this.gw = null;
    this.log = '';
    this.gwLog = '';
  }

  async prepare() {
    this.fedPort = await udpPort();
    this.clientPort = await udpPort();
    this.webPort = await tcpPort();
    this.metricsPort = await tcpPort();
    mkdirSync(this.data, { recursive: true, mode: 0o700 });
    this.id = run(NODE_BIN, ['--config', this.writeConfig([]), 'id']);
    if (this.separateGateway) {
      this.gwDir = join(this.dir, 'gateway-data');
      this.gwConfig = join(this.dir, 'gateway.toml');
      writeFileSync(this.gwConfig, this.gatewayToml());
      this.gwId = run(GATEWAY_BIN, ['--config', this.gwConfig, 'id']);
    }
  }

  /** @param {NodeProc[]} peers */
  writeConfig(peers) {
    const peerLines = peers.map((p) => `  { node = "${p.id}", addr = "127.0.0.1:${p.fedPort}", name = "${p.name}" },`).join('\n');
    writeFileSync(this.config, `
[node]
name = "${this.name}"
data_dir = "${this.data}"

[federation]
listen = "127.0.0.1:${this.fedPort}"
peers = [
${peerLines}
]

[client]
listen = "127.0.0.1:${this.clientPort}"
gateways = [${this.gwId ? `"${this.gwId}"` : ''}]

[gateway]
enabled = ${!this.separateGateway}
listen = "127.0.0.1:${this.webPort}"
${this.requestsPerMinute ? `requests_per_minute = ${this.requestsPerMinute}` : ''}
${this.messagesPerMinute ? `[limits]\nmessages_per_minute = ${this.messagesPerMinute}\n` : ''}
[metrics]
listen = "127.0.0.1:${this.metricsPort}"

[log]
level = "info,confab_node=debug,confab_gateway=debug"
`);
    return this.config;
  }

  gatewayToml() {
    return `
[gateway]
name = "${this.name}-gw"
listen = "127.0.0.1:${this.webPort}"
data_dir = "${this.gwDir}"

[node]
addr = "127.0.0.1:${this.clientPort}"
node_id = "${this.id ?? ''}"
`;
  }

  get url() {
    return `http://127.0.0.1:${this.webPort}`;
  }

  /** @param {NodeProc[]} peers */
  async start(peers = []) {
    this.writeConfig(peers);
    this.proc = spawn(NODE_BIN, ['--config', this.config], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.stdout?.on('data', (d) => (this.log += d));
    this.proc.stderr?.on('data', (d) => (this.log += d));
    this.proc.on('exit', () => writeFileSync(join(this.dir, 'node.log'), this.log));
    await waitReady(`http://127.0.0.1:${this.metricsPort}/health/ready`);
    if (this.separateGateway) await this.startGateway();
    else await waitReady(`${this.url}/health/ready`);
  }

  async startGateway() {
    writeFileSync(this.gwConfig, this.gatewayToml());
    this.gw = spawn(GATEWAY_BIN, ['--config', this.gwConfig], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.gw.stdout?.on('data', (d) => (this.gwLog += d));
    this.gw.stderr?.on('data', (d) => (this.gwLog += d));
    this.gw.on('exit', () => writeFileSync(join(this.dir, 'gateway.log'), this.gwLog));
    await waitReady(`${this.url}/health/ready`);
  }

  /** SIGKILLs the separately run gateway. */
  async killGateway() {
    const g = this.gw;
    if (!g) return;
    const exited = new Promise((r) => g.once('exit', r));
    g.kill('SIGKILL');
    await exited;
    this.gw = null;
  }

  /** `@name:<this node>` */
  user(name) {
    return `@${name}:${this.id}`;
  }

  async stop() {
    for (const p of [this.gw, this.proc]) {
      if (p && p.exitCode === null) {
        const exited = new Promise((r) => p.once('exit', r));
        p.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
        if (p.exitCode === null) p.kill('SIGKILL');
      }
    }
  }

  cleanup() {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** @param {string} bin @param {string[]} args */
function run(bin, args) {
  const r = spawnSync(bin, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${bin} ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout.trim();
}

/** Two federated nodes, started. */
export async function twoNodes(optsA = {}, optsB = {}) {
  const a = new NodeProc('alpha', optsA);
  const b = new NodeProc('beta', optsB);
  await a.prepare();
  await b.prepare();
  await a.start([b]);
  await b.start([a]);
  return [a, b];
}

/** Headless Chromium, as this machine allows it. */
export async function browser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
      // A page served by a route has no address, so the browser would
      // take its sockets to 127.0.0.1 for a public site's reaching in.
      ...(UI_DIR ? ['--disable-features=LocalNetworkAccessChecks'] : []),
    ],
  });
}

/** The axe-core source, injected through DevTools (the page's CSP forbids inline script). */
export const AXE = readFileSync(join(here, 'node_modules', 'axe-core', 'axe.min.js'), 'utf8');

/**
 * Runs axe on the page; returns the serious and critical violations.
 * @param {import('playwright-core').Page} page
 */
export async function axeViolations(page) {
  await page.evaluate(AXE);
  const result = await page.evaluate(async () => {
    // @ts-ignore axe is the injected global
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }));
  });
  return result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

/**
 * CONFAB_UI_DIR (a development aid): the browser gets the web UI's files
 * from this directory instead of from the gateway's embedded copy, so a UI
 * change (or an older version of a file, to see a test fail) needs no
 * rebuild. Service workers are off then, so offline reloads cannot work.
 */
const UI_DIR = process.env.CONFAB_UI_DIR || '';
/** @type {Record<string, string>} */
const UI_TYPES = { html: 'text/html', js: 'text/javascript', css: 'text/css', svg: 'image/svg+xml', webmanifest: 'application/manifest+json' };

/** @param {import('playwright-core').BrowserContext} ctx @param {string} dir */
async function serveUiFrom(ctx, dir) {
  await ctx.route(/^http:\/\/127\.0\.0\.1:\d+\/[^?]*$/, async (route) => {
    const path = new URL(route.request().url()).pathname;
    const file = join(dir, path === '/' ? 'index.html' : path);
    const type = UI_TYPES[path === '/' ? 'html' : path.split('.').pop() ?? ''];
    if (!type || path.startsWith('/api/') || !existsSync(file)) return route.fallback();
    await route.fulfill({ status: 200, contentType: type, body: readFileSync(file) });
  });
}

/**
 * Console errors a test causes on purpose (a server it stopped, a network
 * it cut). Between `start()` and `stop()` errors matching `pattern` are
 * kept in `seen` instead of counting as problems; any other error, or one
 * outside that window, is a problem as usual. A test stops the window only
 * once the page shows it is connected again, so no failed try is left.
 */
export class ExpectedErrors {
  /** @param {RegExp} pattern */
  constructor(pattern) {
    this.pattern = pattern;
    this.open = false;
    /** @type {string[]} */
    this.seen = [];
  }

  start() {
    this.open = true;
  }

  stop() {
    this.open = false;
  }

  /** @param {string} text @returns {boolean} whether it was expected */
  take(text) {
    if (!this.open || !this.pattern.test(text)) return false;
    this.seen.push(text);
    return true;
  }
}

/**
 * A new browser context and page at `url`. Page errors and console errors
 * (except those matching `ignore`, or expected by `expected`) are appended
 * to `problems`.
 * @param {import('playwright-core').Browser} b @param {string} url @param {string[]} problems
 * @param {{viewport?: {width: number, height: number}, ignore?: RegExp, expected?: ExpectedErrors}} [opts]
 */
export async function openPage(b, url, problems, opts = {}) {
  const ctx = await b.newContext({
    viewport: opts.viewport ?? { width: 1280, height: 800 },
    // The service worker would answer before the route below could.
    serviceWorkers: UI_DIR ? 'block' : 'allow',
  });
  if (UI_DIR) await serveUiFrom(ctx, UI_DIR);
  const page = await ctx.newPage();
  page.setDefaultTimeout(GUARD_MS);
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !(opts.ignore && opts.ignore.test(m.text())) && !opts.expected?.take(m.text())) problems.push(`console: ${m.text()}`);
    if (m.type() === 'warning') console.log(`[${url}] warning: ${m.text()}`);
  });
  await page.goto(url);
  return { ctx, page };
}

/** Creates an account `name` in the sign-in form. @param {import('playwright-core').Page} page @param {string} name */
export async function register(page, name) {
  await page.getByTestId('login-form').waitFor();
  await page.getByTestId('register-tab').click();
  await page.getByTestId('login-username').fill(name);
  await page.getByTestId('login-password').fill('correct horse battery');
  await page.getByTestId('login-password-confirm').fill('correct horse battery');
  await page.getByTestId('login-submit').click();
  await page.getByTestId('app-shell').waitFor();
}

/** A message with `text` in the open room's timeline. @param {import('playwright-core').Page} page @param {string} text */
export function message(page, text) {
  return page.getByTestId('timeline').getByTestId('message').filter({ hasText: text });
}

/** Types `text` into the composer and sends it. @param {import('playwright-core').Page} page @param {string} text */
export async function send(page, text) {
  await page.getByTestId('composer-input').fill(text);
  await page.getByTestId('composer-input').press('Enter');
}

/**
 * Talks the browser protocol (gateway/PROTOCOL.md) on a socket of its own,
 * opened from `page` (so its Origin is the gateway's): registers `username`
 * (or signs in if the name is taken), runs `create_room` with `settings`
 * when given (else joins `room`), then posts `count` messages whose body is
 * `template` with `{n}` replaced by the number, zero-padded to 4 digits.
 * Fast, not typed: the first message is confirmed before the rest are
 * pipelined, so it is the room's oldest. Resolves with the room id.
 * @param {import('playwright-core').Page} page
 * @param {{username: string, room?: string, settings?: Record<string, unknown>, count: number, template: string}} opts
 * @returns {Promise<string>}
 */
export function postMessages(page, opts) {
  return page.evaluate(async ({ username, room, settings, count, template }) => {
    const ws = new WebSocket(`${location.origin.replace(/^http/, 'ws')}/ws`);
    let next = 1;
    /** @type {Map<number, (msg: any) => void>} */
    const waiting = new Map();
    const hello = new Promise((resolve) => {
      ws.addEventListener('message', (ev) => {
        const msg = JSON.parse(ev.data);
        if (msg.push === 'hello') resolve(msg);
        else if (typeof msg.id === 'number') waiting.get(msg.id)?.(msg);
      });
    });
    /** @param {string} type @param {Record<string, unknown>} fields @returns {Promise<any>} */
    const call = (type, fields = {}) =>
      new Promise((resolve) => {
        const id = next++;
        waiting.set(id, (msg) => {
          waiting.delete(id);
          resolve(msg);
        });
        ws.send(JSON.stringify({ ...fields, id, type }));
      });
    /** @param {string} type @param {Record<string, unknown>} fields */
    const ok = async (type, fields = {}) => {
      for (;;) {
        const r = await call(type, fields);
        if (r.error?.code === 'rate_limited') {
          await new Promise((res) => setTimeout(res, r.error.retry_after_ms ?? 500));
          continue;
        }
        if (r.error) throw new Error(`${type}: ${r.error.code} ${r.error.message}`);
        return r.ok;
      }
    };
    await hello;
    const cred = { username, password: 'correct horse battery' };
    const reg = await call('register', cred);
    if (reg.error) await ok('login', cred);
    let id = room;
    if (settings) id = (await ok('create_room', { settings, invite: [] })).room;
    else await ok('join_room', { room: id });
    const body = (/** @type {number} */ n) => template.replace('{n}', String(n).padStart(4, '0'));
    const key = (/** @type {number} */ n) => `${username}-${id}-${n}`.replace(/[^a-z0-9-]/gi, '').slice(-64);
    if (count > 0) await ok('send', { room: id, body: body(1), idempotency_key: key(1) });
    // A window of sends in flight; a repeated key never posts twice.
    let n = 2;
    const worker = async () => {
      while (n <= count) {
        const mine = n++;
        await ok('send', { room: id, body: body(mine), idempotency_key: key(mine) });
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    ws.close(1000);
    return /** @type {string} */ (id);
  }, opts);
}
