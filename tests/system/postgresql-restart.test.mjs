// PostgreSQL stops under load, as `pg_ctl stop -m fast` stops it (every
// session ends), and starts again on its folder and port. Two interfaces,
// two workers, people typing in two rooms with clients that behave like the
// page (tests/lib/client.mjs, Typist: a send answered SERVER_BUSY goes again,
// with its client_id, a moment later). No process is restarted by hand: the
// workers reconnect by themselves. Afterwards every send went through, every
// message typed is stored once, none whose own copy came back is lost, and
// every member was shown each message of its room, none twice live.
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {System} from '../lib/system.mjs';
import {login, Typist, until} from '../lib/client.mjs';

const PEOPLE = 6;
const ROOMS = 2;
const EVERY_MS = 100; // each person types a message this often

let sys;
const rooms = [];
const cookies = {};
const typists = [];
const names = Array.from({length: PEOPLE}, (_, i) => `p${i}`);
const roomOf = (i) => rooms[i % ROOMS];

before(async () => {
  sys = await new System({db: 'postgresql', interfaces: 2, workers: 2, separatePorts: true,
                          workerEnv: {CHAT_RATE_MESSAGES: '0'}}).start();
  sys.chatctl(['user', 'import'], names.map((n) => `${n} ${n}-pass-1`).join('\n') + '\n');
  for (let r = 0; r < ROOMS; r++) rooms.push(sys.chatctl(['room', 'add', `Room ${r}`]));
  for (const [i, n] of names.entries()) cookies[n] = await login(sys.urls[i % 2], n, `${n}-pass-1`);
});

after(async () => {
  for (const t of typists) t.close();
  await sys?.stop();
});

test('PostgreSQL restarted under load: the workers reconnect, every send goes through, nothing acknowledged is lost or doubled', async (t) => {
  for (const [i, n] of names.entries()) {
    const p = new Typist(n, i % 2 ? [sys.urls[1], sys.urls[0]] : sys.urls, cookies[n]);
    typists.push(p);
    await p.start();
    await p.enter(roomOf(i));
  }
  const pids = [...sys.workers, ...sys.interfaces].map((p) => p.pid);

  let k = 0;
  const texts = [];
  const typing = setInterval(() => {
    for (const [i, p] of typists.entries()) {
      const text = `${p.name} ${k}`;
      texts.push({room: roomOf(i), text});
      p.type(roomOf(i), text);
    }
    k++;
  }, EVERY_MS);

  try {
    await until(() => k >= 15, 10000, 'the load to be under way');
    await sys.stopPostgres();
    const stoppedAt = Date.now();
    // Down for a second of typing, then up again on its port.
    const atStop = k;
    await until(() => k >= atStop + 10, 10000, 'the load to go on without PostgreSQL');
    await sys.startPostgresAgain();
    const startedAt = Date.now();
    await until(() => typists.some((p) => [...p.outbox.values()].some(
      (e) => e.firstSent >= startedAt && e.ackedAt)), 30000, 'a message typed after the restart to come back');
    const resumed = k;
    await until(() => k >= resumed + 15, 10000, 'the load to go on after the restart');
    clearInterval(typing);
    await until(() => typists.every((p) => p.pending() === 0), 60000, 'every send to go through');

    const entries = typists.flatMap((p) => [...p.outbox.values()]);
    const busy = typists.reduce((n, p) => n + (p.busy || 0), 0);
    t.diagnostic(`${texts.length} messages typed by ${PEOPLE} people in ${ROOMS} rooms; PostgreSQL ` +
      `down for ${startedAt - stoppedAt} ms; ${entries.filter((e) => e.sends > 1).length} sends ` +
      `needed the client's retry (${busy} SERVER_BUSY answers)`);
    assert.ok(busy > 0, 'no send met the stopped server: the test did not test it');

    // Each message typed is stored once; so each one whose own copy came
    // back (all of them, by now) is kept.
    for (const room of rooms) {
      const bodies = sys.stored(room).map((m) => m.body).sort();
      const want = texts.filter((m) => m.room === room).map((m) => m.text).sort();
      assert.deepEqual(bodies, want, `room ${room}: stored is not what was typed, once each`);
    }
    // Every member was shown each message of its room, none twice live.
    for (const [i, p] of typists.entries()) {
      const ids = sys.stored(roomOf(i)).map((m) => m.id);
      await until(() => p.checkOnce(roomOf(i), ids).missing.length === 0, 30000,
        `${p.name} to be shown every message of its room`);
      const c = p.checkOnce(roomOf(i), ids);
      assert.deepEqual(c.liveTwice, [], `${p.name} was shown messages live twice`);
      assert.deepEqual(c.unknown, [], `${p.name} was shown messages that are not stored`);
    }
    // Nobody was restarted.
    assert.ok(sys.running(), 'a process died');
    assert.deepEqual([...sys.workers, ...sys.interfaces].map((p) => p.pid), pids);
  } finally {
    clearInterval(typing);
  }
});

test('no process reported a memory error, and all stop cleanly', async () => {
  for (const p of typists) p.close();
  assert.ok(sys.running(), 'a process died');
  assert.deepEqual(await sys.stop(), []);
});
