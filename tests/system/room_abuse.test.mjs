// What one client must not be able to do to a room, through the real
// interface, worker and Redis: make it unjoinable with messages whose
// history outgrows the channel layer's payload limit, flood its members
// with enter and leave notices, or put one socket in more rooms than an
// envelope can carry.
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {System} from '../lib/system.mjs';
import {login, Socket} from '../lib/client.mjs';

// As worker/command.h: what a reply listing messages may cost in its
// envelope, where its JSON is escaped a second time.
const REPLY_BUDGET = 512 * 1024;
const NOTICE_BURST = 4;
const SOCKET_ROOMS = 5;

let sys, annCookie, bobCookie, bossCookie;
const sockets = [];

async function connect(name, cookie) {
  const s = new Socket(name);
  sockets.push(s);
  await s.open(sys.url, cookie);
  return s;
}

// What a text costs as a JSON string (the envelope escapes as JSON does).
const cost = (raw) => JSON.stringify(raw).length;

// Sends each text to room and waits for its answer: the echo or an error.
async function sendAll(s, room, texts) {
  const answers = [];
  for (const message of texts) {
    answers.push(await s.request({command: 'send', room: Number(room), message},
      (d) => d && (d.error !== undefined || (d.msg_type === 0 && d.own))));
  }
  return answers;
}

before(async () => {
  sys = await new System({
    interfaces: 1,
    workers: 1,
    workerEnv: {
      CHAT_RATE_MESSAGES: '0', // one user fills the rooms here
      CHAT_RATE_NOTICES: '1',
      CHAT_RATE_NOTICE_BURST: String(NOTICE_BURST),
      CHAT_SOCKET_ROOMS: String(SOCKET_ROOMS),
    },
    // The interface's budget per socket would stop these floods before
    // the worker: what is tested here is what the worker makes of them.
    interfaceEnv: {CHAT_SOCKET_RATE: '0', CHAT_SOCKET_KIB_RATE: '0'},
  }).start();
  sys.chatctl(['user', 'add', 'ann', '--password-stdin'], 'ann-pass-1\n');
  sys.chatctl(['user', 'add', 'bob', '--password-stdin'], 'bob-pass-1\n');
  sys.chatctl(['user', 'add', 'boss', '--staff', '--password-stdin'], 'boss-pass-1\n');
  annCookie = await login(sys.url, 'ann', 'ann-pass-1');
  bobCookie = await login(sys.url, 'bob', 'bob-pass-1');
  bossCookie = await login(sys.url, 'boss', 'boss-pass-1');
});

after(async () => {
  for (const s of sockets) s.close();
  await sys?.stop();
});

test('a room flooded with control characters and quotes stays joinable, for staff and for anyone', async () => {
  const room = sys.chatctl(['room', 'add', 'Flooded']);
  const ann = await connect('ann', annCookie);
  await ann.join(room);
  // 40 messages of 4,096 U+0001 would cost 7 bytes a character in the
  // join reply's envelope: refused, nothing stored.
  const controls = await sendAll(ann, room, Array(40).fill('\u0001'.repeat(4096)));
  assert.deepEqual(new Set(controls.map((a) => a.error)), new Set(['BAD_REQUEST']));
  // Quotes are text, and cost 4 bytes each: 70 of them are over 1 MiB.
  const quotes = await sendAll(ann, room, Array(70).fill('"'.repeat(4096)));
  assert.ok(quotes.every((a) => a.own === true), JSON.stringify(quotes.find((a) => !a.own)));
  const newest = quotes.at(-1).id;

  for (const [name, cookie] of [['boss', bossCookie], ['bob', bobCookie]]) {
    const s = await connect(name, cookie);
    const raw = await s.request({command: 'join', room: Number(room), since: 0},
      (d) => d && (d.join === room || d.error !== undefined), {raw: true});
    const reply = JSON.parse(raw);
    assert.equal(reply.join, room, raw.slice(0, 200));
    assert.equal(reply.truncated, true);
    assert.ok(reply.history.length > 0 && reply.history.length < 70, String(reply.history.length));
    assert.equal(reply.history.at(-1).id, newest);
    assert.ok(reply.history.every((m) => m.message === '"'.repeat(4096)));
    assert.ok(cost(raw) <= REPLY_BUDGET, `${cost(raw)} bytes`);
    const who = await s.request({command: 'who', room: Number(room)}, (d) => d && d.who === room);
    assert.ok(who.members.includes(name));
  }
});

test('a reconnecting client\'s join since 0 in a room of 260 messages of 4 KB is answered and pages back', async () => {
  const room = sys.chatctl(['room', 'add', 'Busy']);
  const ann = await connect('ann', annCookie);
  await ann.join(room);
  const sent = await sendAll(ann, room, Array.from({length: 260}, (_, i) => `${i} `.padEnd(4000, 'x')));
  const ids = sent.map((a) => a.id);
  assert.equal(ids.length, 260);

  const bob = await connect('bob', bobCookie);
  const raw = await bob.request({command: 'join', room: Number(room), since: 0},
    (d) => d && (d.join === room || d.error !== undefined), {raw: true});
  assert.ok(cost(raw) <= REPLY_BUDGET, `${cost(raw)} bytes`);
  let reply = JSON.parse(raw);
  assert.equal(reply.truncated, true);
  assert.equal(reply.history.at(-1).id, ids.at(-1));
  const seen = new Map();
  let page = reply.history;
  // "truncated" says older messages remain: the client asks for the page
  // before the oldest it has, until none remain.
  for (let pages = 0; ; pages++) {
    assert.ok(pages < 10, 'paging does not end');
    for (const m of page) seen.set(m.id, (seen.get(m.id) || 0) + 1);
    if (!reply.truncated) break;
    const pageRaw = await bob.request({command: 'history', room: Number(room), before: page[0].id, limit: 100},
      (d) => d && d.history === room, {raw: true});
    assert.ok(cost(pageRaw) <= REPLY_BUDGET, `${cost(pageRaw)} bytes`);
    reply = JSON.parse(pageRaw);
    page = reply.messages;
  }
  assert.deepEqual([...seen.keys()].sort((x, y) => x - y), ids);
  assert.ok([...seen.values()].every((n) => n === 1));
});

test('a user flapping join and leave 100 times reaches the room a bounded number of times; a plain join and leave are announced', async () => {
  const room = sys.chatctl(['room', 'add', 'Flapping']);
  const ann = await connect('ann', annCookie);
  const bob = await connect('bob', bobCookie);
  const boss = await connect('boss', bossCookie);
  await ann.join(room);
  const from = ann.mark();
  for (let i = 0; i < 100; i++) {
    await bob.join(room);
    await bob.request({command: 'leave', room: Number(room)}, (d) => d && d.leave === room);
  }
  // Someone else comes and goes: both are announced, and behind them in
  // the room's order every notice of bob's has arrived.
  await boss.join(room);
  const enter = await ann.waitFor((d) => d && d.username === 'boss' && d.msg_type === 4, {from});
  assert.equal(enter.room, room);
  await boss.request({command: 'leave', room: Number(room)}, (d) => d && d.leave === room);
  await ann.waitFor((d) => d && d.username === 'boss' && d.msg_type === 5, {from});

  const types = ann.frames.slice(from).filter((f) => f.data?.username === 'bob' && f.data.msg_type >= 4)
    .map((f) => f.data.msg_type);
  // One token refills a minute: at most two notices for each token.
  assert.ok(types.length >= 2 && types.length <= 2 * (NOTICE_BURST + 1), `${types.length} notices`);
  assert.ok(types.every((t, i) => t === (i % 2 === 0 ? 4 : 5)), types.join(','));
  assert.equal(types.at(-1), 5);
});

test(`a socket in ${SOCKET_ROOMS} rooms is refused one more with TOO_MANY_ROOMS, and may join once it left one`, async () => {
  const rooms = Array.from({length: SOCKET_ROOMS + 1}, (_, i) => sys.chatctl(['room', 'add', `Many ${i}`]));
  const bob = await connect('bob', bobCookie);
  for (const room of rooms.slice(0, SOCKET_ROOMS)) assert.equal((await bob.join(room)).join, room);
  const last = rooms.at(-1);
  const refused = await bob.request({command: 'join', room: Number(last)},
    (d) => d && (d.join === last || d.error !== undefined), {raw: true});
  assert.equal(refused, `{"error":"TOO_MANY_ROOMS","room":"${last}","command":"join"}`);
  // Every room it is in still works, the refused one was not joined.
  for (const room of rooms.slice(0, SOCKET_ROOMS)) {
    const said = await bob.request({command: 'send', room: Number(room), message: `in ${room}`},
      (d) => d && (d.error !== undefined || (d.msg_type === 0 && d.own)));
    assert.equal(said.message, `in ${room}`);
  }
  const who = await bob.request({command: 'who', room: Number(last)}, (d) => d && d.who === last);
  assert.deepEqual(who.members, []);
  await bob.request({command: 'leave', room: Number(rooms[0])}, (d) => d && d.leave === rooms[0]);
  assert.equal((await bob.join(last)).join, last);
});

test('no process reported a memory error, and all stop cleanly', async () => {
  for (const s of sockets) s.close();
  assert.ok(sys.running(), 'a process died');
  assert.deepEqual(await sys.stop(), []);
});
