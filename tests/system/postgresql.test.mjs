// The chat on PostgreSQL: a private PostgreSQL server, Redis, a worker and an
// interface, driven as browsers drive them: log in, join, send, read history,
// see what chatctl changes; and what they did is in PostgreSQL.
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {System} from '../lib/system.mjs';
import {login, Member} from '../lib/client.mjs';

let sys, lobby, annCookie, bobCookie;
const sockets = [];

// A page of the chat, logged in as name; closed after the tests.
const connect = (name, cookie) => {
  const m = new Member(name, [sys.url], cookie);
  sockets.push(m);
  return m.start().then(() => m);
};

before(async () => {
  sys = await new System({db: 'postgresql'}).start();
  assert.match(sys.db, /^postgresql:\/\//);
  sys.chatctl(['user', 'add', 'ann', '--password-stdin'], 'ann-pass-1\n');
  sys.chatctl(['user', 'add', 'bob', '--password-stdin'], 'bob-pass-1\n');
  lobby = sys.chatctl(['room', 'add', 'Lobby']);
  annCookie = await login(sys.url, 'ann', 'ann-pass-1');
  bobCookie = await login(sys.url, 'bob', 'bob-pass-1');
});

after(async () => {
  for (const s of sockets) s.close();
  assert.deepEqual(await sys?.stop(), []);
});

test('logins are checked against PostgreSQL', async () => {
  await assert.rejects(login(sys.url, 'ann', 'wrong'), /status 200/);
  assert.equal(sys.sql("SELECT count FROM login_failures WHERE key = 'ann'"), '1');
  assert.equal(sys.sql('SELECT count(*) FROM sessions'), '2');
});

test('people join, send, and read the history, from PostgreSQL', async () => {
  const ann = await connect('ann', annCookie);
  const bob = await connect('bob', bobCookie);
  assert.deepEqual((await ann.join(lobby)).history, []);
  await bob.join(lobby);

  const sent = [];
  for (const [who, other, text] of [[ann, bob, 'hello bob'], [bob, ann, 'hi ann'], [ann, bob, 'bye']]) {
    const from = other.mark();
    const own = await who.request({command: 'send', room: lobby, message: text}, (d) => d.msg_type === 0);
    assert.equal(own.own, true);
    const seen = await other.waitFor((d) => d.msg_type === 0 && d.id === own.id, {from});
    assert.equal(seen.message, text);
    sent.push(own);
  }
  assert.ok(sent[0].id < sent[1].id && sent[1].id < sent[2].id);
  assert.equal(sys.sql(`SELECT string_agg(body, ',' ORDER BY id) FROM messages WHERE room_id = ${lobby}`),
    'hello bob,hi ann,bye');

  // A third socket joins: the last messages, oldest first; after an id, those after it.
  const late = await connect('ann again', annCookie);
  const joined = await late.join(lobby);
  assert.deepEqual(joined.history.map((m) => [m.id, m.username, m.message]),
    sent.map((m) => [m.id, m.username, m.message]));
  assert.deepEqual(joined.members, ['ann', 'bob']);
  await late.request({command: 'leave', room: lobby}, (d) => d.leave !== undefined);
  const since = await late.join(lobby, {since: sent[0].id});
  assert.deepEqual(since.history.map((m) => m.id), [sent[1].id, sent[2].id]);
  const older = await late.request({command: 'history', room: lobby, before: sent[2].id, limit: 1},
    (d) => d.history !== undefined);
  assert.deepEqual(older.messages.map((m) => m.message), ['hi ann']);

  // Edits and deletions are stored there too.
  const from = bob.mark();
  await ann.request({command: 'edit', room: lobby, id: sent[2].id, message: 'goodbye'},
    (d) => d.edited === sent[2].id);
  await bob.waitFor((d) => d.edited === sent[2].id && d.message === 'goodbye', {from});
  await ann.request({command: 'delete', room: lobby, id: sent[0].id}, (d) => d.deleted === sent[0].id);
  assert.equal(sys.sql(`SELECT deleted, body FROM messages WHERE id = ${sent[0].id}`), '1|');
});

test('a room added with chatctl reaches the open pages through the change log', async () => {
  const bob = await connect('bob', bobCookie);
  const from = bob.mark();
  const id = sys.chatctl(['room', 'add', 'Garden']);
  const rooms = await bob.waitFor((d) => d.rooms && d.rooms.some((r) => r.id === id), {from});
  assert.deepEqual(rooms.rooms.map((r) => r.title), ['Lobby', 'Garden']);
});

test('whispers are kept in PostgreSQL for both users', async () => {
  const ann = await connect('ann', annCookie);
  const bob = await connect('bob', bobCookie);
  const from = bob.mark();
  const own = await ann.request({command: 'whisper', to: 'bob', message: 'psst'}, (d) => d.whisper !== undefined);
  const got = await bob.waitFor((d) => d.whisper === own.whisper, {from});
  assert.deepEqual([got.from, got.to, got.message], ['ann', 'bob', 'psst']);
  assert.equal(sys.sql(`SELECT body FROM whispers WHERE id = ${own.whisper}`), 'psst');
});
