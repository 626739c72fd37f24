// Rate limits with real processes: two interfaces and two workers share
// each user's buckets through Redis. A user over the limit is refused
// (nothing stored), recovers once the bucket refills, and is closed with
// 1008 when it keeps sending; too many new sockets of one user are refused
// at the handshake.
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {System} from '../lib/system.mjs';
import {Socket, login as loginCookie} from '../lib/client.mjs';

const RATE = 2; // messages a second
let sys, cookie;

before(async () => {
  sys = await new System({
    interfaces: 2, workers: 2, separatePorts: true,
    workerEnv: {CHAT_RATE_MESSAGES: String(RATE), CHAT_RATE_BURST: '3', CHAT_RATE_CLOSE_AFTER: '5',
                CHAT_RATE_CONNECTS: '1', CHAT_RATE_CONNECT_BURST: '4'},
  }).start();
  sys.chatctl(['user', 'add', 'ann', '--password-stdin'], 'ann-pass-1\n');
  sys.chatctl(['room', 'add', 'Lobby']);
  cookie = await loginCookie(sys.urls[0], 'ann', 'ann-pass-1');
});

after(async () => {
  await sys?.stop();
});

const isError = (m) => m.error !== undefined;
const isOwn = (m) => m.own === true;

test('a user over the limit is refused on every interface, recovers, then is closed for insisting', async () => {
  const a = new Socket('ann on A');
  const b = new Socket('ann on B');
  await a.open(sys.urls[0], cookie);
  await b.open(sys.urls[1], cookie);
  for (const c of [a, b]) await c.request({command: 'join', room: 1}, (m) => m.join === '1');
  for (let i = 0; i < 3; i++) {
    await a.request({command: 'send', room: 1, message: `burst ${i}`}, isOwn);
  }
  // The bucket is the user's, whichever interface and worker: b is refused too.
  const refused = await b.request({command: 'send', room: 1, message: 'too fast'}, isError);
  assert.deepEqual(refused, {error: 'RATE_LIMITED', room: '1', command: 'send'});
  assert.equal(sys.sql("SELECT count(*) FROM messages WHERE body = 'too fast'"), '0');

  // The bucket refills at RATE a second: after one token's time, allowed again.
  await new Promise((r) => setTimeout(r, 1000 / RATE + 200));
  const sent = await b.request({command: 'send', room: 1, message: 'later'}, isOwn);
  assert.equal(sent.message, 'later');

  // Keep sending regardless: refused, and closed with 1008 at the fifth refusal in a row.
  for (let i = 0; i < 8; i++) a.send({command: 'send', room: 1, message: `flood ${i}`});
  assert.equal((await a.whenClosed()).code, 1008);
  assert.ok(Number(sys.sql("SELECT count(*) FROM messages WHERE body LIKE 'flood%'")) <= 1);
  await b.close();
});

test('too many new sockets of one user are refused with 403', async () => {
  const opened = [];
  let status;
  for (let i = 0; i < 6 && status === undefined; i++) {
    try {
      const c = new Socket(`ann ${i}`);
      await c.open(sys.urls[i % 2], cookie);
      opened.push(c);
    } catch (e) {
      status = e.status;
    }
  }
  assert.equal(status, 403);
  for (const c of opened) await c.close();
});
