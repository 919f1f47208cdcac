/**
 * What a scanner sends, against the app serving a built SPA (hardening issue item 11): directory
 * paths, traversal in every spelling, dotfiles, empty segments, overlong paths, NUL and bad
 * percent-encoding, unknown API paths, WebDAV and unknown methods, odd Range / If-Match headers.
 * Sent byte for byte over a real socket (a URL library would normalise `..` and `//` away), so
 * Node's HTTP parser, Fastify's router and the static file server all see exactly this.
 *
 * Every answer: never a 5xx; HTML only as the SPA shell itself; anything else that is an error is
 * the one error body, with the status of its code. No error is logged, and no byte of a file
 * outside the SPA's directory is ever served.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ERROR_STATUS, type ErrorCode } from '@keyturn/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from './harness';

const INDEX_HTML = '<!doctype html><html><head><title>Keyturn test SPA</title></head><body><div id="root"></div></body></html>';
const ASSET_JS = 'console.log("keyturn test asset");';
/** In a file next to the SPA's directory and in a dotfile inside it: neither is ever served. */
const SECRET_CANARY = `CANARY-not-served-${Math.random().toString(36).slice(2)}`;

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** One request, exactly these bytes on the wire; the answer is read until the server closes. */
function raw(port: number, requestHead: string): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.setTimeout(10_000, () => socket.destroy(new Error(`no answer to ${JSON.stringify(requestHead.slice(0, 120))}`)));
    socket.on('data', (d) => chunks.push(d));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) return reject(new Error(`no HTTP answer to ${JSON.stringify(requestHead.slice(0, 120))}: ${JSON.stringify(text.slice(0, 200))}`));
      const [statusLine, ...headerLines] = text.slice(0, end).split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of headerLines) {
        const i = l.indexOf(':');
        headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      let body = text.slice(end + 4);
      if (headers['transfer-encoding'] === 'chunked') body = dechunk(body);
      resolve({ status: Number(statusLine!.split(' ')[1]), headers, body: Buffer.from(body, 'latin1').toString('utf8') });
    });
    socket.write(requestHead, 'latin1');
  });
}

function dechunk(s: string): string {
  let out = '';
  for (let i = 0; ; ) {
    const eol = s.indexOf('\r\n', i);
    const size = Number.parseInt(s.slice(i, eol), 16);
    if (!size) return out;
    out += s.slice(eol + 2, eol + 2 + size);
    i = eol + 2 + size + 2;
  }
}

const request = (method: string, target: string, headers: Record<string, string> = {}) =>
  `${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n${Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n`;

/** The request targets of a scanner's list (raw: sent as written). */
const TARGETS = [
  '/',
  '/index.html',
  '/index.html/',
  '/assets/',
  '/assets',
  '/assets//',
  '/assets/./',
  '/assets/../',
  '/assets/..',
  '/assets/%2e%2e/',
  '/assets/%2e%2e%2f',
  '/assets/..%2f..%2foutside.txt',
  '/assets/%2e%2e/%2e%2e/outside.txt',
  '/assets/../../outside.txt',
  '/../outside.txt',
  '/%2e%2e/outside.txt',
  '/..%2foutside.txt',
  '/..%5coutside.txt',
  '/assets/..\\..\\outside.txt',
  '/assets/app.js',
  '/assets/app.js/',
  '/assets/app.js%00',
  '/assets/app.js%00.html',
  '/assets/APP.JS',
  '/assets/missing.js',
  '/assets/nested/',
  '/assets/nested/deeper/',
  '/.env',
  '/.git/config',
  '/.git/',
  '/.well-known/security.txt',
  '//',
  '///',
  '//assets/',
  '//etc/passwd',
  '/%00',
  '/assets/%00',
  '/%zz',
  '/assets/%zz',
  '/%',
  '/%e0%a4%a',
  '/%c0%ae%c0%ae/outside.txt',
  '/api/',
  '/api',
  '/api/nope',
  '/api/secrets/',
  '/api/secrets/%zz',
  `/api/secrets/${'x'.repeat(300)}`,
  '/admin/api/',
  '/admin/api/nope',
  '/admin/',
  '/docs/',
  '/docs/static/',
  '/docs/static/../',
  '/wp-login.php',
  '/cgi-bin/../../../../bin/sh',
  '/server-status',
  '/phpmyadmin/',
  '/?%zz',
  '/assets/app.js?x=%zz',
  `/${'a'.repeat(300)}`,
  `/${'a/'.repeat(2000)}`,
  `/assets/${'b'.repeat(5000)}.js`,
  `/${'c'.repeat(300)}/`,
  // past Node's 16 KiB header limit: refused by the HTTP parser itself
  `/${'x'.repeat(20_000)}`,
  // not a valid request target at all
  '/a b',
  'assets/app.js',
  '*',
];

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'PROPFIND', 'MKCOL', 'SEARCH', 'FOO'];

describe('SPA + API under a scanner (hardening item 11)', () => {
  let t: TestApp;
  let port: number;
  let root: string;

  beforeAll(async () => {
    root = mkdtempSync(path.join(os.tmpdir(), 'keyturn-spa-'));
    const dist = path.join(root, 'dist');
    mkdirSync(path.join(dist, 'assets', 'nested', 'deeper'), { recursive: true });
    writeFileSync(path.join(dist, 'index.html'), INDEX_HTML);
    writeFileSync(path.join(dist, 'assets', 'app.js'), ASSET_JS);
    writeFileSync(path.join(dist, 'assets', 'nested', 'deeper', 'x.css'), 'body{}');
    writeFileSync(path.join(dist, '.env'), `SECRET=${SECRET_CANARY}`);
    writeFileSync(path.join(root, 'outside.txt'), SECRET_CANARY);
    t = await createTestApp({ env: { WEB_DIST_DIR: dist } });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    port = (t.app.server.address() as net.AddressInfo).port;
  });
  afterAll(async () => {
    await t?.close();
    rmSync(root, { recursive: true, force: true });
  });

  /** What is wrong with an answer (empty: it obeys the contract). */
  function problems(method: string, target: string, accept: string, a: RawAnswer): string[] {
    const where = `${method} ${target.slice(0, 60)}${target.length > 60 ? '…' : ''} (accept ${accept}) → ${a.status} ${a.headers['content-type'] ?? ''} ${a.body.slice(0, 100)}`;
    const wrong: string[] = [];
    const need = (ok: boolean, what: string) => {
      if (!ok) wrong.push(`${what}: ${where}`);
    };
    need(a.status >= 200 && a.status < 500, 'a 5xx (or no status)');
    need(!a.body.includes(SECRET_CANARY), 'served a file it must not');
    need(!!a.headers['content-security-policy'] && a.headers['x-content-type-options'] === 'nosniff', 'without the security headers');
    const type = a.headers['content-type'] ?? '';
    if (type.startsWith('text/html')) {
      // HTML is only ever the SPA shell (or the API docs under /docs), for a GET (or HEAD) of a page
      need((method === 'GET' || method === 'HEAD') && a.status === 200, 'HTML that is not the answer to a page GET');
      if (method === 'GET' && !target.startsWith('/docs/')) need(a.body === INDEX_HTML, 'HTML other than the SPA shell');
    } else if (a.status >= 400) {
      need(/^application\/json/.test(type), 'an error that is not JSON');
      if (method !== 'HEAD' && /^application\/json/.test(type)) {
        const body = JSON.parse(a.body) as { error?: { code?: ErrorCode; message?: unknown; requestId?: unknown } };
        const e = body.error;
        need(
          Object.keys(body).join() === 'error' &&
            typeof e?.code === 'string' &&
            typeof e.message === 'string' &&
            typeof e.requestId === 'string' &&
            /^[0-9a-f-]{36}$/.test(e.requestId) &&
            ERROR_STATUS[e.code] === a.status,
          'not the one error body (with the status of its code)',
        );
      }
    }
    return wrong;
  }

  function check(method: string, target: string, accept: string, a: RawAnswer): void {
    expect(problems(method, target, accept, a)).toEqual([]);
  }

  it('GET /assets/ (a directory of the SPA) is a 404 in the one error body, not a 500', async () => {
    for (const accept of ['*/*', 'text/html,application/xhtml+xml']) {
      for (const target of ['/assets/', '/assets/nested/', '/assets//', '//']) {
        const a = await raw(port, request('GET', target, { Accept: accept }));
        check('GET', target, accept, a);
        expect(a.status, `${target} ${accept}: ${a.body}`).toBe(404);
        expect(JSON.parse(a.body).error.code).toBe('NOT_FOUND');
      }
    }
  });

  it('every target × method × accept: no 5xx, HTML only as the SPA shell, otherwise the one error body; nothing outside dist; no error logged', async () => {
    const wrong: string[] = [];
    const statuses = new Map<number, number>();
    let sent = 0;
    for (const target of TARGETS) {
      for (const method of METHODS) {
        for (const accept of method === 'GET' || method === 'HEAD' ? ['*/*', 'text/html'] : ['*/*']) {
          const a = await raw(port, request(method, target, { Accept: accept }));
          wrong.push(...problems(method, target, accept, a));
          statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
          sent++;
        }
      }
    }
    expect(sent).toBe(TARGETS.length * (METHODS.length + 2));
    console.log(`scanner answers by status: ${[...statuses].map(([s, n]) => `${s}×${n}`).join(' ')}`);
    expect(wrong).toEqual([]);
    const errors = t.logs.entries().filter((e) => Number(e.level) >= 50);
    expect(errors.map((e) => JSON.stringify(e).slice(0, 300))).toEqual([]);
  }, 120_000);

  it('the SPA still works: its shell for pages, its files as files, missing assets and API paths 404 as JSON', async () => {
    const shell = await raw(port, request('GET', '/secrets/123', { Accept: 'text/html' }));
    expect(shell.status).toBe(200);
    expect(shell.body).toBe(INDEX_HTML);
    const asset = await raw(port, request('GET', '/assets/app.js'));
    expect(asset.status).toBe(200);
    expect(asset.headers['content-type']).toMatch(/javascript/);
    expect(asset.body).toBe(ASSET_JS);
    for (const target of ['/assets/missing.js', '/api/nope', '/admin/api/nope', '/.env', '/assets/../']) {
      const a = await raw(port, request('GET', target));
      check('GET', target, '*/*', a);
      expect(a.status, target).toBe(404);
    }
    // a dotfile in dist is never served, whatever the Accept
    const env = await raw(port, request('GET', '/.env', { Accept: 'text/html' }));
    expect(env.body).not.toContain(SECRET_CANARY);
  });

  it('odd Range and If-Match headers on a real file: an answer, never a 5xx', async () => {
    const wrong: string[] = [];
    const odd: Record<string, string>[] = [
      { Range: 'bytes=999999-' },
      { Range: 'bytes=5-2' },
      { Range: 'bytes=0-1,2-3,4-5' },
      { Range: 'lines=1-2' },
      { 'If-Match': '"nope"' },
      { 'If-Unmodified-Since': 'Thu, 01 Jan 1970 00:00:00 GMT' },
      { 'If-None-Match': '*' },
      { 'If-Modified-Since': 'not a date' },
    ];
    for (const headers of odd) {
      const a = await raw(port, request('GET', '/assets/app.js', headers));
      wrong.push(...problems('GET', `/assets/app.js ${JSON.stringify(headers)}`, '*/*', a));
    }
    expect(wrong).toEqual([]);
    const errors = t.logs.entries().filter((e) => Number(e.level) >= 50);
    expect(errors.map((e) => JSON.stringify(e).slice(0, 300))).toEqual([]);
  });
});
