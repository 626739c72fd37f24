// A worker that stops answering (SIGSTOP) in the middle of a batch, holding
// a room's order lock, on PostgreSQL: the database server ends its idle
// connection, the lock goes to the other worker within seconds and the room
// goes on; the stopped worker's batch, never committed, is redone once by the
// other worker when its heartbeat expires. Woken up, it stores nothing twice.
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {spawn} from 'node:child_process';
import {System} from '../lib/system.mjs';
import {login, Member, until} from '../lib/client.mjs';

const IDLE_MS = 2000; // the server ends a worker's idle connection after this
const HEARTBEAT_MS = 3000; // a worker silent this long is dead to the others

let sys, room, annCookie, bobCookie;
const members = [];

before(async () => {
  sys = await new System({db: 'postgresql', workers: 1, workerEnv: {
    CHAT_RATE_MESSAGES: '0',
    CHAT_DB_IDLE_TIMEOUT_MS: String(IDLE_MS),
    CHAT_HEARTBEAT_TTL_MS: String(HEARTBEAT_MS),
  }}).start();
  sys.chatctl(['user', 'import'], 'ann ann-pass-1\nbob bob-pass-1\n');
  room = sys.chatctl(['room', 'add', 'Lobby']);
  annCookie = await login(sys.url, 'ann', 'ann-pass-1');
  bobCookie = await login(sys.url, 'bob', 'bob-pass-1');
});

after(async () => {
  for (const m of members) m.close();
  for (const w of sys?.workers ?? []) w.kill('SIGCONT');
  assert.deepEqual(await sys?.stop(), []);
});

async function member(name, cookie) {
  const m = new Member(name, [sys.url], cookie);
  members.push(m);
  await m.start();
  await m.enter(room);
  return m;
}

// A psql session that holds the room's row (FOR UPDATE) until release():
// a message stored meanwhile waits inside its batch, at its foreign key.
async function holdRoomRow() {
  const psql = spawn('psql', ['-qAtX', sys.db], {stdio: ['pipe', 'pipe', 'inherit']});
  const held = new Promise((resolve) => psql.stdout.once('data', resolve));
  psql.stdin.write(`BEGIN; SELECT id FROM rooms WHERE id = ${room} FOR UPDATE;\n`);
  await held;
  return () => new Promise((resolve) => {
    psql.once('exit', resolve);
    psql.stdin.end('COMMIT;\n');
  });
}

test('a worker stopped mid-batch holding a room: the room goes on within seconds, and its message is redone once', async () => {
  const ann = await member('ann', annCookie);
  const bob = await member('bob', bobCookie);

  // The only worker takes ann's message, and the room's order lock, and
  // waits inside its batch for the row that psql holds.
  const release = await holdRoomRow();
  ann.send({command: 'send', room: Number(room), message: 'stuck', client_id: 'stuck-1'});
  await sys.waitSql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'multichat' " +
    "AND wait_event_type = 'Lock'", '1');
  const stopped = sys.workers[0];
  stopped.kill('SIGSTOP');
  await release();
  sys.startWorker(1);

  // The room goes on: its lock came free when the server ended the stopped
  // worker's connection, not when that worker came back.
  const after = [];
  for (let k = 0; k < 5; k++) {
    after.push(`after ${k}`);
    bob.send({command: 'send', room: Number(room), message: `after ${k}`, client_id: `after-${k}`});
  }
  await until(() => after.every((t) => bob.ownTexts.has(t)), 20000, "bob's messages while a worker is stopped");
  await until(() => ann.seen(room) >= 5, 10000, "ann to see bob's messages");

  // The stopped worker's batch was undone with its connection; the other
  // worker redoes it once the stopped one's heartbeat is old enough.
  await until(() => ann.ownTexts.has('stuck'), 20000, "ann's message, redone");
  await until(() => bob.seen(room) >= 6, 10000, "bob to see ann's message");
  assert.equal(stopped.signalCode, null, 'the stopped worker is still there');

  // Woken up, the stopped worker finds its batch undone and says so to the
  // sender, rather than storing it a second time; then it works again.
  stopped.kill('SIGCONT');
  await until(() => ann.errors.some((e) => e.error === 'SERVER_BUSY'), 20000, 'the woken worker to give up its batch');
  const last = await bob.request({command: 'send', room: Number(room), message: 'last', client_id: 'last'},
    (d) => d.own && d.message === 'last');
  await ann.waitFor((d) => d.id === last.id);

  const rows = sys.stored(room);
  assert.deepEqual(rows.map((r) => r.body), [...after, 'stuck', 'last']);
  for (const m of [ann, bob]) {
    const c = m.check(room, rows.map((r) => r.id));
    assert.deepEqual(c.twice, [], `${m.name} was shown ids more than once`);
    assert.deepEqual(c.missing, [], `${m.name} never got these ids`);
    assert.deepEqual(c.unknown, [], `${m.name} got ids that are not stored`);
    assert.ok(c.increasing, `${m.name} got messages out of order`);
  }
  assert.deepEqual(bob.errors, []);
  assert.ok(sys.running(), 'a process died');
});
