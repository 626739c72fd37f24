// Behind a proxy: the shipped nginx example (deploy/nginx/multichat.conf,
// TLS with a throw-away certificate) in front of a whole Multichat that
// trusts it. Clients speak from addresses of their own on loopback
// (127.0.0.2, 127.0.0.3, ...), so that nginx sees each as itself: the
// limits keyed on the client's address must tell them apart, and an
// X-Forwarded-For from anyone but the proxy must change nothing.
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {spawn, spawnSync} from 'node:child_process';
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {System, freePort, waitPort} from '../lib/system.mjs';
import {login, request, Socket} from '../lib/client.mjs';

const source = process.env.MC_SOURCE || fileURLToPath(new URL('../..', import.meta.url));
const A = '127.0.0.2', B = '127.0.0.3', D = '127.0.0.4';
let sys, nginx, dir, site;
const sockets = [];

// nginx with the example site, its ports and certificate swapped for the
// test's own; one process, in the foreground, so that it dies with us.
async function startNginx(upstreamPort) {
  dir = mkdtempSync(path.join(tmpdir(), 'mc-nginx-'));
  const tls = await freePort(), plain = await freePort();
  const cert = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1',
    '-subj', '/CN=chat.example.com', '-keyout', `${dir}/privkey.pem`, '-out', `${dir}/fullchain.pem`]);
  assert.equal(cert.status, 0, cert.stderr?.toString());
  const conf = readFileSync(path.join(source, 'deploy/nginx/multichat.conf'), 'utf8')
    .replaceAll('/etc/ssl/multichat/', `${dir}/`)
    .replace('server 127.0.0.1:8000;', `server 127.0.0.1:${upstreamPort};`)
    .replace(/^\s*listen \[::\].*\n/gm, '')
    .replace('listen 80;', `listen 127.0.0.1:${plain};`)
    .replace('listen 443 ssl http2;', `listen 127.0.0.1:${tls} ssl http2;`);
  assert.ok(conf.includes(`listen 127.0.0.1:${tls}`) && conf.includes(`:${upstreamPort};`));
  writeFileSync(`${dir}/site.conf`, conf);
  writeFileSync(`${dir}/nginx.conf`, `daemon off;
master_process off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
events {}
http {
    access_log off;
    client_body_temp_path ${dir}/body;
    proxy_temp_path ${dir}/proxy;
    include ${dir}/site.conf;
}
`);
  nginx = spawn('nginx', ['-p', dir, '-c', `${dir}/nginx.conf`, '-e', `${dir}/error.log`],
    {stdio: 'ignore'});
  process.on('exit', () => nginx.kill('SIGKILL'));
  await waitPort(tls);
  return `https://127.0.0.1:${tls}`;
}

before(async () => {
  // The interface gets its port before nginx exists; nginx's origin is set
  // once known, through a second start of the interface.
  sys = await new System({
    // An address that fails 3 logins is refused: behind the proxy, that
    // must be the client's address, not the proxy's.
    workerEnv: {CHAT_LOGIN_MAX_FAILURES: '3', CHAT_LOGIN_ADDRESS_MAX_FAILURES: '3'},
    interfaceEnv: {CHAT_TRUSTED_PROXIES: '127.0.0.1', CHAT_ADDRESS_RATE: '1',
      CHAT_ADDRESS_BURST: '30'},
  }).start();
  sys.chatctl(['user', 'add', 'ann', '--password-stdin'], 'ann-pass-1\n');
  sys.chatctl(['user', 'add', 'bob', '--password-stdin'], 'bob-pass-1\n');
  site = await startNginx(sys.port);
  await sys.killInterface(0);
  sys.interfaceEnv.CHAT_ALLOWED_ORIGINS = site;
  await sys.startInterface(0);
});

after(async () => {
  for (const s of sockets) s.ws?.terminate();
  if (nginx) {
    const gone = new Promise((r) => nginx.once('exit', r));
    nginx.kill('SIGTERM');
    await gone;
  }
  if (dir) rmSync(dir, {recursive: true, force: true});
  const reports = await sys?.stop();
  assert.deepEqual(reports, []);
});

const healthz = (from, headers = {}) => request(`${site}/healthz`, {localAddress: from, headers});

test('behind nginx, one client\'s failed logins do not lock out another', async () => {
  for (let i = 0; i < 3; i++) {
    await assert.rejects(login(site, 'nobody', 'wrong', {localAddress: A}),
      (err) => err.status !== undefined);
  }
  // Another client of the same proxy logs in, and its chat socket opens
  // over TLS, with the page's https origin.
  const cookie = await login(site, 'bob', 'bob-pass-1', {localAddress: B});
  const bob = new Socket('bob');
  sockets.push(bob);
  await bob.open(site, cookie, 10000, {localAddress: B});
});

test('behind nginx, each client has its own share of requests', async () => {
  // A spends its burst; its next requests are refused with 429.
  let status;
  for (let i = 0; i < 60 && status !== 429; i++) status = (await healthz(A)).status;
  assert.equal(status, 429);
  // B, behind the same proxy, is served.
  assert.equal((await healthz(B)).status, 200);
  // A cannot pass for B: what it writes in X-Forwarded-For comes before
  // what nginx appends, and is not believed.
  assert.equal((await healthz(A, {'x-forwarded-for': B})).status, 429);
  assert.equal((await healthz(B)).status, 200);
  assert.ok(await sys.metric(0, 'chat_interface_refused_connections_total') >= 2);
});

test('X-Forwarded-For from a peer that is no trusted proxy is ignored', async () => {
  // D speaks to the interface directly and names B as its client: its
  // failed logins count against D, and B logs in all the same.
  const direct = `http://127.0.0.1:${sys.port}`;
  for (let i = 0; i < 3; i++) {
    const page = await request(`${direct}/accounts/login/`, {localAddress: D});
    const csrf = page.headers['set-cookie'].join(';').match(/csrftoken=([^;]+)/)[1];
    const r = await request(`${direct}/accounts/login/`, {
      method: 'POST', localAddress: D,
      headers: {'content-type': 'application/x-www-form-urlencoded', cookie: `csrftoken=${csrf}`,
        origin: direct, 'x-forwarded-for': B, 'x-forwarded-proto': 'https'},
      body: new URLSearchParams({username: 'ann', password: 'wrong',
        csrfmiddlewaretoken: page.body.match(/name="csrfmiddlewaretoken" value="([^"]+)"/)[1]})
        .toString(),
    });
    assert.notEqual(r.status, 302);
  }
  await login(site, 'bob', 'bob-pass-1', {localAddress: B});
});

test('the default origin check compares the scheme a trusted proxy reports', async () => {
  // Without an origin list the page's origin must be the request's own:
  // https only when the proxy says the client came over TLS.
  const own = await new System({interfaceEnv: {CHAT_TRUSTED_PROXIES: '127.0.0.1'}}).start();
  try {
    own.chatctl(['user', 'add', 'ann', '--password-stdin'], 'ann-pass-1\n');
    const cookie = await login(own.url, 'ann', 'ann-pass-1');
    // From the trusted proxy's address, with X-Forwarded-Proto: https, an
    // https page is the request's own origin.
    assert.equal(await upgrade(own, cookie, '127.0.0.1', 'https', true), 101);
    // From anyone else the header is not believed: an https page does not
    // match a plain-http request, and an http page does.
    assert.equal(await upgrade(own, cookie, D, 'https', true), 403);
    assert.equal(await upgrade(own, cookie, D, 'http', false), 101);
  } finally {
    assert.deepEqual(await own.stop(), []);
  }
});

// Opens a chat socket of own from address from, as a page of origin
// scheme://127.0.0.1:port would, saying X-Forwarded-Proto: https when
// xfp; resolves with 101 or the status of the refusal.
async function upgrade(own, cookie, from, scheme, xfp) {
  const {default: WebSocket} = await import('ws');
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${own.port}/chat/stream/`, {
      localAddress: from,
      headers: {cookie, origin: `${scheme}://127.0.0.1:${own.port}`,
        ...(xfp ? {'x-forwarded-proto': 'https'} : {})},
    });
    ws.on('upgrade', () => { resolve(101); ws.terminate(); });
    ws.on('unexpected-response', (req, res) => { resolve(res.statusCode); req.destroy(); });
    ws.on('error', () => {});
  });
}
