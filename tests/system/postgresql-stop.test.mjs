// A worker that stops answering (SIGSTOP) in the middle of a batch, holding
// a room's order lock, on PostgreSQL: the database server ends its idle
// connection, the lock goes to the other worker within seconds and the room
// goes on. The stopped worker's batch had been sent whole (its transaction
// commits on the server while the worker sleeps), so its message is stored
// but was never published: the next holder of the room's lock finds it left
// and publishes it before its own, to its sender too. Woken up, the stopped
// worker delivers nothing twice, and works on.
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

test('a worker stopped mid-batch holding a room: the room goes on within seconds, its message first, once', async () => {
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
  // worker's connection, not when that worker came back; the message it
  // stored comes first.
  const after = [];
  for (let k = 0; k < 5; k++) {
    after.push(`after ${k}`);
    bob.send({command: 'send', room: Number(room), message: `after ${k}`, client_id: `after-${k}`});
  }
  await until(() => after.every((t) => bob.ownTexts.has(t)), 20000, "bob's messages while a worker is stopped");
  await until(() => ann.ownTexts.has('stuck'), 10000, "ann's own copy of the message left unpublished");
  await until(() => ann.seen(room) >= 6 && bob.seen(room) >= 6, 10000, 'both to see all six messages');
  assert.equal(stopped.signalCode, null, 'the stopped worker is still there');
  // Its envelope, requeued once its heartbeat is old enough, is handled
  // again (and stores and delivers nothing new: checked at the end).
  await sys.until(() => sys.inFlight() === 0, "the stopped worker's envelope to be handled again");

  // Woken up, the stopped worker finds its batch committed and published;
  // with the other worker gone, it alone handles what comes next.
  stopped.kill('SIGCONT');
  await sys.stopWorker(1);
  const last = await bob.request({command: 'send', room: Number(room), message: 'last', client_id: 'last'},
    (d) => d.own && d.message === 'last', {timeoutMs: 20000});
  await ann.waitFor((d) => d.id === last.id);

  const rows = sys.stored(room);
  assert.deepEqual(rows.map((r) => r.body), ['stuck', ...after, 'last']);
  for (const m of [ann, bob]) {
    const c = m.check(room, rows.map((r) => r.id));
    assert.deepEqual(c.twice, [], `${m.name} was shown ids more than once`);
    assert.deepEqual(c.missing, [], `${m.name} never got these ids`);
    assert.deepEqual(c.unknown, [], `${m.name} got ids that are not stored`);
    assert.ok(c.increasing, `${m.name} got messages out of order`);
    assert.deepEqual(m.errors, [], `${m.name} got errors`);
  }
  assert.equal(stopped.exitCode, null, 'the woken worker died');
});
