// A worker's metrics endpoint (CHAT_METRICS_LISTEN), scraped while the
// worker handles traffic: the counters move with what happened, and a
// client that opens the endpoint and says nothing stalls no chat.
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {connect as tcp} from 'node:net';
import {System, freePort, waitPort} from '../lib/system.mjs';
import {login, Socket} from '../lib/client.mjs';
import {scrape, scrapeUntil, moved} from '../lib/metrics.mjs';

let sys, port;
const sockets = [];

before(async () => {
  port = await freePort();
  sys = await new System({workerEnv: {CHAT_METRICS_LISTEN: `127.0.0.1:${port}`, CHAT_RATE_BURST: '5',
                                      CHAT_RATE_MESSAGES: '1'}}).start();
  sys.chatctl(['user', 'add', 'ann', '--password-stdin'], 'ann-pass-1\n');
  sys.chatctl(['room', 'add', 'Lobby']);
  await waitPort(port);
});

after(async () => {
  for (const s of sockets) s.close();
  await sys?.stop();
});

test('counters move with the traffic, scraped while it flows', async () => {
  const before = await scrape(port);
  assert.ok(before.has('chat_worker_queue_depth'));
  assert.ok(before.has('chat_worker_in_flight_envelopes'));
  assert.ok([...before.keys()].some((k) => k.startsWith('chat_worker_info{process="wrk.')));

  const failed = await fetch(`${sys.url}/accounts/login/`, {redirect: 'manual'});
  await failed.text();
  await assert.rejects(login(sys.url, 'ann', 'wrong'));
  const cookie = await login(sys.url, 'ann', 'ann-pass-1');
  const s = new Socket('ann');
  sockets.push(s);
  await s.open(sys.url, cookie);
  await s.join(1);
  // Sends and scrapes at once.
  const scrapes = [];
  for (let i = 0; i < 5; i++) {
    scrapes.push(scrape(port));
    await s.request({command: 'send', room: 1, message: `hello ${i}`}, (d) => d.msg_type === 0 && d.own);
  }
  await Promise.all(scrapes);
  // Past the burst: refused, and counted.
  await s.request({command: 'send', room: 1, message: 'one too many'}, (d) => d.error === 'RATE_LIMITED');

  const after = await scrapeUntil(port, (m) => m.get('chat_worker_rate_limited_total{limit="messages"}') >= 1,
    'the refusal');
  assert.ok(moved(before, after, 'chat_worker_commands_total{command="send"}') >= 6);
  assert.ok(moved(before, after, 'chat_worker_commands_total{command="join"}') >= 1);
  assert.ok(moved(before, after, 'chat_worker_envelopes_total{type="websocket.receive"}') >= 7);
  assert.ok(moved(before, after, 'chat_worker_envelopes_total{type="websocket.connect"}') >= 1);
  assert.ok(moved(before, after, 'chat_worker_envelopes_total{type="http.request"}') >= 4);
  assert.ok(moved(before, after, 'chat_worker_envelope_seconds_count{type="websocket.receive"}') >= 7);
  assert.equal(after.get('chat_worker_envelope_seconds_bucket{type="websocket.receive",le="+Inf"}'),
    after.get('chat_worker_envelope_seconds_count{type="websocket.receive"}'));
  assert.ok(moved(before, after, 'chat_worker_logins_total{result="ok"}') >= 1);
  assert.ok(moved(before, after, 'chat_worker_logins_total{result="failed"}') >= 1);
  assert.ok(moved(before, after, 'chat_worker_db_statements_total') > 0);
  assert.equal(after.get('chat_worker_redis_errors_total'), 0);
});

test('login refusals are counted by throttle', async () => {
  const before = await scrape(port);
  for (let i = 0; i < 6; i++) await assert.rejects(login(sys.url, 'zed', `guess-${i}`));
  const after = await scrapeUntil(port, (m) => moved(before, m, 'chat_worker_login_refusals_total{reason="user_address"}') >= 1,
    'the refusal');
  assert.ok(moved(before, after, 'chat_worker_logins_total{result="refused"}') >= 1);
});

test('a client that opens the endpoint and says nothing stalls no chat', async () => {
  const silent = tcp(port, '127.0.0.1');
  await new Promise((r) => silent.once('connect', r));
  const cookie = await login(sys.url, 'ann', 'ann-pass-1');
  const s = new Socket('ann-2');
  sockets.push(s);
  await s.open(sys.url, cookie);
  await s.request({command: 'who', room: 1}, (d) => d.who === '1');
  // The endpoint closes it without an answer, then serves the next scrape.
  const closed = new Promise((r) => silent.once('close', r));
  silent.on('data', () => assert.fail('the silent client got an answer'));
  await closed;
  await scrape(port);
});

test('no process reported a memory error, and all stop cleanly', async () => {
  for (const s of sockets) s.close();
  assert.ok(sys.running(), 'a process died');
  assert.deepEqual(await sys.stop(), []);
});
