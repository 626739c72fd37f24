// Rights end when they end, through the real interface, worker and Redis:
// a session that ends closes its sockets with 4001 "session ended" (the
// page goes to the login form; a logout: protocol.test.mjs), a change of
// staff closes them with 4002 "rights changed" (the page reconnects with a
// fresh scope), and the database never holds a session's token.
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {createHash} from 'node:crypto';
import {System} from '../lib/system.mjs';
import {login, Socket} from '../lib/client.mjs';

let sys;
const sockets = [];

before(async () => {
  sys = await new System().start();
  for (const name of ['ann', 'bob', 'cid']) sys.chatctl(['user', 'add', name, '--password-stdin'], `${name}-pass-1\n`);
  sys.chatctl(['room', 'add', 'Lobby']);
  sys.chatctl(['room', 'add', 'Staff room', '--staff-only']);
});

after(async () => {
  for (const s of sockets) s.close();
  await sys?.stop();
});

async function connect(name, cookie) {
  const s = new Socket(name);
  sockets.push(s);
  await s.open(sys.url, cookie);
  return s;
}

const cookieValue = (cookie, name) => cookie.match(new RegExp(`(?:^|; )${name}=([^;]+)`))[1];

test('a new password set by an admin ends every session of the user', async () => {
  const cookie = await login(sys.url, 'bob', 'bob-pass-1');
  const s = await connect('bob', cookie);
  sys.chatctl(['user', 'passwd', 'bob'], 'bob-pass-2\n');
  assert.deepEqual(await s.whenClosed(), {code: 4001, reason: 'session ended'});
  await assert.rejects(connect('bob-again', cookie), (e) => e.status === 403);
});

test('a user made staff reconnects with a staff scope: 4002 "rights changed"', async () => {
  const cookie = await login(sys.url, 'cid', 'cid-pass-1');
  const s = await connect('cid', cookie);
  assert.equal(s.frames[0].data.rooms.length, 1);
  sys.chatctl(['user', 'staff', 'cid', 'on']);
  assert.deepEqual(await s.whenClosed(), {code: 4002, reason: 'rights changed'});
  const again = await connect('cid-again', cookie);
  assert.deepEqual(again.frames[0].data.rooms.map((r) => r.title), ['Lobby', 'Staff room']);
});

test('the database holds the SHA-256 of each session token, never the token', async () => {
  const cookie = await login(sys.url, 'ann', 'ann-pass-1');
  const token = cookieValue(cookie, 'sessionid');
  const hash = createHash('sha256').update(token).digest('hex');
  assert.equal(sys.sql(`SELECT count(*) FROM sessions WHERE token_hash = '${hash}'`), '1');
  assert.doesNotMatch(sys.sql('SELECT * FROM sessions'), new RegExp(token));
});

test('no process reported a memory error, and all stop cleanly', async () => {
  for (const s of sockets) s.close();
  assert.ok(sys.running(), 'a process died');
  assert.deepEqual(await sys.stop(), []);
});
