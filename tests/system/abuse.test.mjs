// Attacks of one client on the others, through the real interface and
// worker: a logged-in socket that floods, handshakes with made-up sessions
// from the address real users share, and one address that opens more
// connections than any client needs. Each must cost the attacker, and
// nobody else.
import {test, after} from 'node:test';
import assert from 'node:assert/strict';
import {connect} from 'node:net';
import {System} from '../lib/system.mjs';
import {login, Socket, until} from '../lib/client.mjs';

const systems = [];
const sockets = [];

async function system(opts) {
  const sys = await new System(opts).start();
  systems.push(sys);
  sys.chatctl(['user', 'add', 'ann', '--password-stdin'], 'ann-pass-1\n');
  sys.chatctl(['user', 'add', 'bob', '--password-stdin'], 'bob-pass-1\n');
  return sys;
}

async function open(sys, name, cookie) {
  const s = new Socket(name);
  sockets.push(s);
  await s.open(sys.url, cookie);
  return s;
}

// A system whose Lobby holds 300 messages of 4 KB (a history page of 100
// is a 400 KB answer), with ann (the flooder) and bob in it.
async function lobbyOfLargeMessages() {
  const sys = await system({workerEnv: {CHAT_RATE_MESSAGES: '0'}});
  const lobby = sys.chatctl(['room', 'add', 'Lobby']);
  sys.sql(`INSERT INTO messages (room_id, user_id, body, created)
           WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)
           SELECT ${lobby}, (SELECT id FROM users WHERE username = 'bob'),
                  substr(replace(hex(zeroblob(4000)), '0', 'x'), 1, 4000), 0 FROM n`);
  const flooder = await open(sys, 'ann', await login(sys.url, 'ann', 'ann-pass-1'));
  const bob = await open(sys, 'bob', await login(sys.url, 'bob', 'bob-pass-1'));
  await flooder.join(lobby);
  await bob.join(lobby);
  return {sys, lobby, flooder, bob};
}

after(async () => {
  for (const s of sockets) s.ws?.terminate();
  for (const sys of systems) {
    const reports = await sys.stop();
    assert.deepEqual(reports, []);
  }
});

// Frames that carry exactly the interface's refusal (the worker's own
// RATE_LIMITED names the command).
const refusals = (s) => s.frames.filter((f) => f.raw === '{"error":"RATE_LIMITED"}').length;

test('a socket flooding history and junk is refused, then closed, and another user chats on', async () => {
  const {sys, lobby, flooder, bob} = await lobbyOfLargeMessages();

  // The flood goes out without waiting for anything: history requests and
  // 60 KB frames that are no command at all.
  const junk = 'j'.repeat(60 * 1024);
  for (let i = 0; i < 400; i++) {
    if (flooder.ws.readyState !== flooder.ws.OPEN) break;
    flooder.send(i % 2 ? junk : {command: 'history', room: Number(lobby), limit: 50});
  }
  // Meanwhile bob chats at a person's pace, and hears every message back.
  const from = bob.mark();
  for (let i = 0; i < 20; i++) {
    await bob.request({command: 'send', room: Number(lobby), message: `bob ${i}`},
      (d) => d && d.own && d.message === `bob ${i}`);
  }
  await until(() => flooder.closed, 30000, 'the flooder to be closed');
  assert.equal(flooder.closed.code, 1008);
  // Told once, not once a frame.
  assert.equal(refusals(flooder), 1);
  const mine = bob.frames.slice(from).filter((f) => f.data?.own).map((f) => f.data.message);
  assert.deepEqual(mine, Array.from({length: 20}, (_, i) => `bob ${i}`));
  assert.deepEqual(bob.frames.filter((f) => f.data?.error), []);
  assert.equal(bob.closed, null);
  assert.ok(await sys.metric(0, 'chat_interface_rate_limited_total') >= 20);
  assert.equal(await sys.metric(0, 'chat_interface_closed_rate_total'), 1);
  assert.equal(await sys.metric(0, 'chat_interface_queue_full_total'), 0);
});

test('a socket pulling large history pages pays for them, comes back with less, and another user chats on', async () => {
  const {sys, lobby, flooder, bob} = await lobbyOfLargeMessages();

  // 50 small frames, within the socket's burst of frames and of bytes:
  // only the answers are large.
  for (let i = 0; i < 50; i++)
    flooder.send({command: 'history', room: Number(lobby), before: 1000000, limit: 100});
  const from = bob.mark();
  for (let i = 0; i < 5; i++) {
    await bob.request({command: 'send', room: Number(lobby), message: `bob ${i}`},
      (d) => d && d.own && d.message === `bob ${i}`);
  }
  await until(() => flooder.closed, 30000, 'the flooder to be closed');
  assert.equal(flooder.closed.code, 1008);
  assert.equal(refusals(flooder), 1);
  const pages = flooder.frames.filter((f) => Array.isArray(f.data?.messages)).length;
  assert.ok(pages < 50, `${pages} history pages answered`);
  const mine = bob.frames.slice(from).filter((f) => f.data?.own).map((f) => f.data.message);
  assert.deepEqual(mine, Array.from({length: 5}, (_, i) => `bob ${i}`));
  assert.deepEqual(bob.frames.filter((f) => f.data?.error), []);
  assert.equal(bob.closed, null);
  assert.equal(await sys.metric(0, 'chat_interface_closed_rate_total'), 1);

  // Back at once from the same address, it starts with a second's budget
  // (20 frames), not a whole burst (60): 30 small frames are too many.
  const again = await open(sys, 'ann', await login(sys.url, 'ann', 'ann-pass-1'));
  for (let i = 0; i < 30; i++)
    again.send({command: 'history', room: Number(lobby), before: 1, limit: 1});
  await until(() => refusals(again) === 1, 30000, 'the returning flooder to be refused');
  assert.equal(bob.closed, null);
});

test('handshakes with made-up sessions from a shared address lock no user out', async () => {
  // Every client here is 127.0.0.1, as every user behind one proxy or NAT.
  const sys = await system({workerEnv: {CHAT_RATE_CONNECT_BURST: '5', CHAT_RATE_CONNECTS: '1'}});
  const cookie = await login(sys.url, 'ann', 'ann-pass-1');
  for (let i = 0; i < 20; i++) {
    const s = new Socket(`anonymous ${i}`);
    await assert.rejects(s.open(sys.url, `sessionid=made-up-${i}`), (err) => err.status === 403);
  }
  await open(sys, 'ann', cookie);
});

// A raw TCP connection to port; resolves once connected.
function dial(port) {
  return new Promise((resolve, reject) => {
    const c = connect(port, '127.0.0.1', () => resolve(c));
    c.on('error', reject);
  });
}

// Whether the server takes c: it answers a request, or ends the connection
// without a byte (a refusal).
function answers(c) {
  return new Promise((resolve) => {
    let got = '';
    c.on('data', (d) => { got += d; if (got.includes('\r\n\r\n')) resolve(true); });
    c.on('close', () => resolve(got.length > 0));
    c.on('error', () => {});
    c.write('GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n');
  });
}

test('one address may hold so many connections open, and open them so fast', async () => {
  const sys = await system({interfaceEnv: {CHAT_ADDRESS_OPEN_MAX: '8', CHAT_ADDRESS_RATE: '1',
    CHAT_ADDRESS_BURST: '20'}});
  const port = sys.port;
  const held = [];
  for (let i = 0; i < 8; i++) held.push(await dial(port));
  // The ninth is closed at once, before it costs anything.
  const ninth = await dial(port);
  assert.equal(await answers(ninth), false);
  assert.equal(await sys.metric(0, 'chat_interface_refused_connections_total'), 1);
  // Each of the eight is served; once one is gone, a new one is taken.
  assert.equal(await answers(held[0]), true);
  held[0].destroy();
  await until(async () => await sys.metric(0, 'chat_interface_open_sockets') === 7 + 1, 5000,
    'the closed connection to be gone'); // 7 held, and the /metrics request itself
  const again = await dial(port);
  assert.equal(await answers(again), true);
  again.destroy();
  for (const c of held) c.destroy();

  // New connections: a burst of 20, then one a second. Ten are taken: the
  // probe that saw the interface start, the eight, the one after.
  const start = Date.now();
  let served = 0;
  for (let i = 0; i < 40; i++) {
    const c = await dial(port);
    served += await answers(c) ? 1 : 0;
    c.destroy();
  }
  const seconds = (Date.now() - start) / 1000;
  assert.ok(served >= 20 - 10, `${served} served`);
  assert.ok(served <= 20 - 10 + Math.ceil(seconds), `${served} served in ${seconds} s`);
  assert.ok(await sys.metric(0, 'chat_interface_refused_connections_total') >= 40 - served);
});
