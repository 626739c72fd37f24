// The client protocol of docs/protocol.md, through the real interface server
// and worker, with WebSocket clients logged in as a browser logs in: what
// two people in a room see, staff-only rooms, bad input, the live room list.
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {System} from '../lib/system.mjs';
import {login, Socket} from '../lib/client.mjs';

let sys, lobby, staffRoom, annCookie, bobCookie, bossCookie;
const sockets = [];

async function connect(name, cookie) {
  const s = new Socket(name);
  sockets.push(s);
  await s.open(sys.url, cookie);
  return s;
}

// The frames of s from index `from` on, as raw text.
const raws = (s, from = 0) => s.frames.slice(from).map((f) => f.raw);

before(async () => {
  sys = await new System({interfaces: 1, workers: 1}).start();
  sys.chatctl(['user', 'add', 'ann', '--password-stdin'], 'ann-pass-1\n');
  sys.chatctl(['user', 'add', 'bob', '--password-stdin'], 'bob-pass-1\n');
  sys.chatctl(['user', 'add', 'boss', '--staff', '--password-stdin'], 'boss-pass-1\n');
  lobby = sys.chatctl(['room', 'add', 'Lobby']);
  staffRoom = sys.chatctl(['room', 'add', 'Staff room', '--staff-only']);
  annCookie = await login(sys.url, 'ann', 'ann-pass-1');
  bobCookie = await login(sys.url, 'bob', 'bob-pass-1');
  bossCookie = await login(sys.url, 'boss', 'boss-pass-1');
});

after(async () => {
  for (const s of sockets) s.close();
  await sys?.stop();
});

test('two sockets in a room see each other, and the enter and leave notices, as the example sends them', async () => {
  const ann = await connect('ann', annCookie);
  const bob = await connect('bob', bobCookie);
  assert.equal(ann.frames[0].raw, `{"rooms":[{"id":"${lobby}","title":"Lobby","staff_only":false}]}`);

  const annJoin = await ann.request({command: 'join', room: Number(lobby)}, (d) => d.join !== undefined, {raw: true});
  assert.ok(annJoin.startsWith(`{"join":"${lobby}","title":"Lobby"`), annJoin);
  assert.deepEqual(JSON.parse(annJoin).history, []);
  assert.deepEqual(JSON.parse(annJoin).members, ['ann']);

  // The room id may be a numeric string, as the example's client sends it.
  const annSeen = ann.mark();
  const bobJoin = await bob.request({command: 'join', room: lobby}, (d) => d.join !== undefined, {raw: true});
  assert.ok(bobJoin.startsWith(`{"join":"${lobby}","title":"Lobby"`), bobJoin);
  assert.deepEqual(JSON.parse(bobJoin).members, ['ann', 'bob']);
  assert.equal(await ann.waitFor((d) => d.msg_type === 4, {from: annSeen, raw: true}),
    `{"room":"${lobby}","message":null,"username":"bob","msg_type":4}`);

  const bobSeen = bob.mark();
  const own = await ann.request({command: 'send', room: Number(lobby), message: 'hello bob'},
    (d) => d.msg_type === 0, {raw: true});
  const other = await bob.waitFor((d) => d.msg_type === 0, {from: bobSeen, raw: true});
  const prefix = `{"room":"${lobby}","message":"hello bob","username":"ann","msg_type":0,`;
  assert.ok(own.startsWith(prefix), own);
  assert.ok(other.startsWith(prefix), other);
  assert.equal(JSON.parse(own).own, true);
  assert.equal(JSON.parse(other).own, undefined);
  assert.equal(JSON.parse(own).id, JSON.parse(other).id);
  assert.ok(Number.isInteger(JSON.parse(other).id) && Number.isInteger(JSON.parse(other).ts));
  assert.ok(Math.abs(JSON.parse(other).ts - Date.now()) < 60000);

  const reply = await bob.request({command: 'send', room: lobby, message: 'hi ann'},
    (d) => d.msg_type === 0, {raw: true});
  assert.equal(JSON.parse(reply).own, true);
  await ann.waitFor((d) => d.msg_type === 0 && d.message === 'hi ann' && d.username === 'bob');

  // The leaver hears its own leave notice, then the leave reply; the room
  // hears the notice once.
  const annBefore = ann.mark();
  const bobBefore = bob.mark();
  await bob.request({command: 'leave', room: Number(lobby)}, (d) => d.leave !== undefined);
  assert.deepEqual(raws(bob, bobBefore), [
    `{"room":"${lobby}","message":null,"username":"bob","msg_type":5}`,
    `{"leave":"${lobby}"}`,
  ]);
  await ann.waitFor((d) => d.msg_type === 5, {from: annBefore});
  // Bob is no longer in the room: ann's next message does not reach him.
  await ann.request({command: 'send', room: lobby, message: 'are you there?'}, (d) => d.msg_type === 0);
  const who = await ann.request({command: 'who', room: lobby}, (d) => d.who !== undefined);
  assert.deepEqual(who.members, ['ann']);
  assert.deepEqual(raws(ann, annBefore).slice(0, 1),
    [`{"room":"${lobby}","message":null,"username":"bob","msg_type":5}`]);
  assert.equal(bob.frames.slice(bobBefore).filter((f) => f.data.message === 'are you there?').length, 0);

  // Joining again returns the room's history, oldest first.
  const again = await bob.join(lobby);
  assert.deepEqual(again.history.map((m) => m.message), ['hello bob', 'hi ann', 'are you there?']);
  ann.close();
  bob.close();
});

test('a non-staff user is refused a staff-only room at join and at send; staff is not', async () => {
  const bob = await connect('bob', bobCookie);
  const boss = await connect('boss', bossCookie);
  // The room list shows bob only the rooms he may join.
  assert.deepEqual(bob.frames[0].data.rooms.map((r) => r.id), [lobby]);
  assert.deepEqual(boss.frames[0].data.rooms.map((r) => r.id), [lobby, staffRoom]);

  const from = bob.mark();
  const denied = await bob.request({command: 'join', room: Number(staffRoom)}, (d) => d.error !== undefined, {raw: true});
  assert.ok(denied.startsWith('{"error":"ROOM_ACCESS_DENIED"'), denied);
  assert.equal(JSON.parse(denied).room, staffRoom);
  // Sending to the staff room without having joined it.
  const bossSeen = boss.mark();
  await boss.join(staffRoom);
  const refused = await bob.request({command: 'send', room: Number(staffRoom), message: 'let me in'},
    (d) => d.error !== undefined);
  assert.equal(refused.error, 'ROOM_ACCESS_DENIED');
  // Staff may: and nothing bob tried reached the room.
  const said = await boss.request({command: 'send', room: staffRoom, message: 'staff only'}, (d) => d.msg_type === 0);
  assert.equal(said.own, true);
  assert.equal(boss.frames.slice(bossSeen).filter((f) => f.data.message === 'let me in').length, 0);
  assert.equal(bob.frames.slice(from).filter((f) => f.data.msg_type === 0).length, 0);

  // A room bob is in becomes staff-only: he is told he left, the room
  // leaves his list, and a send is refused.
  const open = sys.chatctl(['room', 'add', 'Soon closed']);
  await bob.waitFor((d) => d.rooms?.some((r) => r.id === open), {from});
  await bob.join(open);
  const before = bob.mark();
  sys.chatctl(['room', 'staff-only', open, 'on']);
  assert.equal(await bob.waitFor((d) => d.leave !== undefined, {from: before, raw: true}), `{"leave":"${open}"}`);
  await bob.waitFor((d) => d.rooms && !d.rooms.some((r) => r.id === open), {from: before});
  const late = await bob.request({command: 'send', room: Number(open), message: 'still here?'},
    (d) => d.error !== undefined || d.msg_type === 0);
  assert.equal(late.error, 'ROOM_ACCESS_DENIED');
  assert.equal(late.room, open);
  const rejoin = await bob.request({command: 'join', room: open}, (d) => d.error !== undefined || d.join);
  assert.equal(rejoin.error, 'ROOM_ACCESS_DENIED');
  // Staff still joins it and sees nothing from bob.
  const hist = await boss.join(open);
  assert.deepEqual(hist.history, []);
  sys.chatctl(['room', 'rm', open]);
  bob.close();
  boss.close();
});

test('every bad input is answered with its error code and the socket stays usable', async () => {
  const ann = await connect('ann', annCookie);
  await ann.join(lobby);
  const cases = [
    ['not JSON', 'hello', 'BAD_REQUEST'],
    ['truncated JSON', '{"command":"send"', 'BAD_REQUEST'],
    ['an array', '[1,2]', 'BAD_REQUEST'],
    ['a string', '"join"', 'BAD_REQUEST'],
    ['null', 'null', 'BAD_REQUEST'],
    ['no command', '{"room":1}', 'BAD_REQUEST'],
    ['a command that is not a string', '{"command":7,"room":1}', 'BAD_REQUEST'],
    ['an unknown command', '{"command":"dance","room":1}', 'UNKNOWN_COMMAND'],
    ['join without a room', '{"command":"join"}', 'BAD_REQUEST'],
    ['send without a message', `{"command":"send","room":${lobby}}`, 'BAD_REQUEST'],
    ['a message that is a number', `{"command":"send","room":${lobby},"message":5}`, 'BAD_REQUEST'],
    ['a room that is an object', '{"command":"send","room":{},"message":"x"}', 'ROOM_INVALID'],
    ['a negative room', '{"command":"join","room":-3}', 'ROOM_INVALID'],
    ['a room that is not a number', '{"command":"send","room":"abc","message":"x"}', 'ROOM_INVALID'],
    ['a join of a room that is not a number', '{"command":"join","room":"1x"}', 'ROOM_INVALID'],
    ['an unknown room', '{"command":"join","room":9999}', 'ROOM_INVALID'],
    ['a send to an unknown room', '{"command":"send","room":"9999","message":"x"}', 'ROOM_INVALID'],
    ['an empty message', `{"command":"send","room":${lobby},"message":""}`, 'MESSAGE_EMPTY'],
    ['a message over 4 KiB', JSON.stringify({command: 'send', room: Number(lobby), message: 'y'.repeat(4097)}),
      'MESSAGE_TOO_LONG'],
  ];
  for (const [what, text, code] of cases) {
    const answer = await ann.request(text, (d) => d !== undefined && (d.error !== undefined || d.msg_type === 0));
    assert.equal(answer.error, code, `${what}: ${JSON.stringify(answer)}`);
  }
  // Nothing of that was stored, the socket is still open and still works:
  // 4 KiB exactly is allowed.
  assert.equal(ann.closed, null);
  const full = 'z'.repeat(4096);
  const ok = await ann.request({command: 'send', room: Number(lobby), message: full}, (d) => d.msg_type === 0 || d.error);
  assert.equal(ok.message, full);
  const stored = sys.chatctl(['room', 'list']); // still answers: the database is fine
  assert.match(stored, /Lobby/);
  const page = await ann.request({command: 'history', room: Number(lobby), before: ok.id + 1, limit: 100},
    (d) => d.history !== undefined);
  assert.equal(page.messages.filter((m) => m.message === 'x' || m.message === '' || m.message.startsWith('y')).length, 0);
  ann.close();
});

test('the room list follows rooms added, renamed and deleted; members of a deleted room are told they left', async () => {
  const ann = await connect('ann', annCookie);
  const boss = await connect('boss', bossCookie);
  const from = ann.mark();
  const bossFrom = boss.mark();
  const garden = sys.chatctl(['room', 'add', 'Garden']);
  const listed = (s, id) => (d) => d.rooms?.some((r) => r.id === id);
  const entry = (await ann.waitFor(listed(ann, garden), {from})).rooms.find((r) => r.id === garden);
  assert.deepEqual(entry, {id: garden, title: 'Garden', staff_only: false});
  await boss.waitFor(listed(boss, garden), {from: bossFrom});

  // A staff-only room is listed for staff only.
  const secret = sys.chatctl(['room', 'add', 'Secret', '--staff-only']);
  const bossList = await boss.waitFor(listed(boss, secret), {from: bossFrom});
  assert.deepEqual(bossList.rooms.find((r) => r.id === secret), {id: secret, title: 'Secret', staff_only: true});

  await ann.join(garden);
  const renamed = ann.mark();
  sys.chatctl(['room', 'rename', garden, 'Rose garden']);
  const list = await ann.waitFor((d) => d.rooms?.some((r) => r.id === garden && r.title === 'Rose garden'),
    {from: renamed});
  assert.ok(!list.rooms.some((r) => r.id === secret), 'ann sees a staff-only room');
  assert.ok(!ann.frames.some((f) => f.data.rooms?.some((r) => r.id === secret)), 'ann was shown a staff-only room');

  const removed = ann.mark();
  sys.chatctl(['room', 'rm', garden]);
  assert.equal(await ann.waitFor((d) => d.leave !== undefined, {from: removed, raw: true}), `{"leave":"${garden}"}`);
  const after = await ann.waitFor((d) => d.rooms && !d.rooms.some((r) => r.id === garden), {from: removed});
  assert.ok(after.rooms.some((r) => r.id === lobby));
  const gone = await ann.request({command: 'send', room: Number(garden), message: 'anyone?'}, (d) => d.error || d.msg_type === 0);
  assert.ok(['ROOM_INVALID', 'ROOM_ACCESS_DENIED'].includes(gone.error), JSON.stringify(gone));
  const nojoin = await ann.request({command: 'join', room: Number(garden)}, (d) => d.error || d.join);
  assert.equal(nojoin.error, 'ROOM_INVALID');
  sys.chatctl(['room', 'rm', secret]);
  ann.close();
  boss.close();
});

test('logging out ends that session only: its socket closes, the same user chats on in another', async () => {
  const phoneCookie = await login(sys.url, 'ann', 'ann-pass-1');
  const deskCookie = await login(sys.url, 'ann', 'ann-pass-1');
  const phone = await connect('ann-phone', phoneCookie);
  const desk = await connect('ann-desk', deskCookie);
  const csrf = phoneCookie.match(/csrftoken=([^;]+)/)[1];
  const r = await fetch(`${sys.url}/accounts/logout/`, {
    method: 'POST',
    redirect: 'manual',
    headers: {'content-type': 'application/x-www-form-urlencoded', cookie: phoneCookie, origin: sys.url},
    body: new URLSearchParams({csrfmiddlewaretoken: csrf}),
  });
  await r.text();
  assert.equal(r.status, 302);
  assert.deepEqual(await phone.whenClosed(), {code: 4001, reason: 'session ended'});
  // A close of all ann's sockets would have reached the desktop before this reply.
  const joined = await desk.join(lobby);
  assert.equal(joined.join, lobby);
  assert.equal(desk.closed, null);
  const page = await fetch(`${sys.url}/`, {redirect: 'manual', headers: {cookie: deskCookie}});
  await page.text();
  assert.equal(page.status, 200);
  desk.close();
});

test('no process reported a memory error, and all stop cleanly', async () => {
  for (const s of sockets) s.close();
  assert.ok(sys.running(), 'a process died');
  assert.deepEqual(await sys.stop(), []);
});
