// Redis dies under steady load, and comes back: as a replica that the
// sentinels promote (sentinel: true), or as the same server restarted empty
// (sentinel: false). Or the sentinels fail over by hand (sentinel: true,
// byHand: true): the old master stays up, a master still for some seconds,
// and every process leaves it as soon as the sentinels announce the new
// one. Two interfaces and two workers, people typing in
// several rooms with clients that behave like the page (tests/lib
// client.mjs, Typist). No process is restarted by hand. Afterwards every
// message typed is stored once and shown to every member of its room, none
// twice live; every room gets new messages; a person who left during the
// outage is gone from the room's members. outageTests() declares the tests.
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {System, redisCli} from '../lib/system.mjs';
import {login, Member, Typist, until} from '../lib/client.mjs';

const PEOPLE = 8;
const ROOMS = 3;
const EVERY_MS = 150; // each person types a message this often

export function outageTests({sentinel, byHand = false}) {
  const what = byHand ? 'the sentinels fail over by hand'
    : sentinel ? 'the Redis master is killed and a replica promoted'
      : 'the only Redis is killed and restarted empty';
  let sys;
  const rooms = [];
  const cookies = {};
  const typists = [];
  const names = Array.from({length: PEOPLE}, (_, i) => `p${i}`);

  const stored = (room) => sys.stored(room);

  // Person i is in two rooms, i and i + 1 (mod ROOMS), on interface i % 2.
  const roomsOf = (i) => [rooms[i % ROOMS], rooms[(i + 1) % ROOMS]];

  before(async () => {
    sys = await new System({interfaces: 2, workers: 2, separatePorts: true, sentinel,
                            workerEnv: {CHAT_RATE_MESSAGES: '0'}}).start();
    sys.chatctl(['user', 'import'], [...names, 'zed'].map((n) => `${n} ${n}-pass-1`).join('\n') + '\n');
    for (let r = 0; r < ROOMS; r++) rooms.push(sys.chatctl(['room', 'add', `Room ${r}`]));
    for (const [i, n] of [...names, 'zed'].entries()) cookies[n] = await login(sys.urls[i % 2], n, `${n}-pass-1`);
  });

  after(async () => {
    for (const t of typists) t.close();
    await sys?.stop();
  });

  test(`${what}: nothing typed is lost or doubled, and every room goes on`, async (t) => {
    for (const [i, n] of names.entries()) {
      const urls = i % 2 ? [sys.urls[1], sys.urls[0]] : sys.urls;
      const p = new Typist(n, urls, cookies[n]);
      typists.push(p);
      await p.start();
      for (const room of roomsOf(i)) await p.enter(room);
    }
    // zed sits in room 0 and leaves while Redis is away.
    const zed = new Member('zed', sys.urls, cookies.zed);
    await zed.start();
    await zed.enter(rooms[0]);
    const pids = [...sys.workers, ...sys.interfaces].map((p) => p.pid);

    // Steady load: every person types into its rooms in turn.
    let k = 0;
    const texts = [];
    const typing = setInterval(() => {
      for (const [i, p] of typists.entries()) {
        const room = roomsOf(i)[k % 2];
        const text = `${p.name} ${k}`;
        texts.push({room, text});
        p.type(room, text);
      }
      k++;
    }, EVERY_MS);

    try {
      await until(() => k >= 15, 10000, 'the load to be under way');
      const killedAt = Date.now();
      if (byHand) {
        const old = await sys.failOverByHand();
        zed.close();
        const promoted = await sys.failedOver(old);
        t.diagnostic(`the sentinels announced port ${promoted} ${Date.now() - killedAt} ms after SENTINEL FAILOVER`);
        // The load goes on until the old master is a replica: what a process
        // still wrote there would be gone.
        await sys.until(() => redisCli(old, 'ROLE')[0] === 'slave', 'the old master to become a replica');
        t.diagnostic(`the old master became a replica ${Date.now() - killedAt} ms after SENTINEL FAILOVER`);
      } else if (sentinel) {
        const old = await sys.killMaster();
        zed.close();
        const promoted = await sys.failedOver(old);
        t.diagnostic(`the sentinels promoted port ${promoted} ${Date.now() - killedAt} ms after the kill`);
      } else {
        await sys.killRedis(0);
        zed.close();
        // Down while people type on for about as long as a failover takes.
        const atKill = k;
        await until(() => k >= atKill + 20, 20000, 'the load to go on without Redis');
        await sys.startRedis(0); // empty, on the same port
      }
      // Messages flow again: the first one typed after the kill that came
      // back to its sender.
      await until(() => typists.some((p) => [...p.outbox.values()].some(
        (e) => e.firstSent >= killedAt && e.ackedAt)), 30000, 'a message typed after the kill to come back');
      const flowing = Math.min(...typists.flatMap((p) => [...p.outbox.values()]
        .filter((e) => e.firstSent >= killedAt && e.ackedAt).map((e) => e.ackedAt))) - killedAt;
      // More load after the recovery, then everyone stops typing.
      const resumed = k;
      await until(() => k >= resumed + 20, 20000, 'the load to go on after the recovery');
      clearInterval(typing);
      await until(() => typists.every((p) => p.pending() === 0), 60000, 'every outbox to empty');

      const kind = byHand ? 'sentinel failover by hand' : sentinel ? 'sentinel failover' : 'redis restart';
      const cause = byHand ? 'SENTINEL FAILOVER' : 'the kill';
      const entries = typists.flatMap((p) => [...p.outbox.values()]);
      const retried = entries.filter((e) => e.sends > 1).length;
      t.diagnostic(`${texts.length} messages typed by ${PEOPLE} people in ${ROOMS} rooms at ` +
        `${Math.round(1000 * PEOPLE / EVERY_MS)}/s; messages flowed again ${flowing} ms after ${cause}; ` +
        `${retried} sends needed the client's retry (` +
        `${entries.reduce((n, e) => n + e.sends - 1, 0)} resends, ` +
        `${typists.reduce((n, p) => n + (p.busy || 0), 0)} SERVER_BUSY answers, ` +
        `${typists.reduce((n, p) => n + (p.limited || 0), 0)} RATE_LIMITED of the socket's budget, ` +
        `${typists.reduce((n, p) => n + p.resyncs, 0)} resyncs, ` +
        `${typists.reduce((n, p) => n + p.reconnections, 0)} reconnections)`);
      console.log(`# outage (${kind}): messages flowed again ` +
        `${flowing} ms after ${cause}; ${retried} of ${texts.length} sends needed the client's retry`);

      // Each message typed is stored once.
      for (const room of rooms) {
        const bodies = stored(room).map((m) => m.body).sort();
        const want = texts.filter((m) => m.room === room).map((m) => m.text).sort();
        assert.deepEqual(bodies, want, `room ${room}: stored is not what was typed, once each`);
      }
      // Every member is shown each message of its rooms, none twice live.
      for (const [i, p] of typists.entries()) {
        for (const room of roomsOf(i)) {
          const ids = stored(room).map((m) => m.id);
          await until(() => p.checkOnce(room, ids).missing.length === 0, 30000,
            `${p.name} to be shown every message of room ${room}`);
          const c = p.checkOnce(room, ids);
          assert.deepEqual(c.liveTwice, [], `${p.name} was shown messages of room ${room} live twice`);
          assert.deepEqual(c.unknown, [], `${p.name} was shown messages that are not stored`);
        }
      }
      // Every room got messages typed after the recovery, live.
      for (const [i, p] of typists.entries()) {
        for (const room of roomsOf(i)) {
          const last = stored(room).at(-1).id;
          assert.ok(p.live.get(String(room))?.has(last), `${p.name} did not get room ${room}'s last message live`);
        }
      }
      // zed, who left during the outage, is no longer a member of room 0.
      const watcher = typists[0];
      await until(async () => {
        const who = await watcher.request({command: 'who', room: Number(rooms[0])}, (d) => d && d.who !== undefined);
        return !who.members.includes('zed');
      }, 30000, 'zed to leave the member list of room 0');
      // Nobody was restarted, and each interface followed.
      assert.ok(sys.running(), 'a process died');
      assert.deepEqual([...sys.workers, ...sys.interfaces].map((p) => p.pid), pids);
      for (let i = 0; i < sys.interfaces.length; i++) {
        const metrics = await sys.metricsText(i);
        assert.match(metrics, /^chat_interface_redis_up 1$/m);
        assert.match(metrics, /^chat_interface_redis_losses_total [1-9]/m);
        if (sentinel) assert.match(metrics, /^chat_interface_redis_failovers_total 1$/m);
      }
      // After a failover by hand, each process left the old master because
      // the sentinels said so, not because it answered READONLY or dropped
      // the connection when it was made a replica.
      if (byHand) {
        for (const name of ['interface-0', 'interface-1', 'worker-0', 'worker-1']) {
          const log = sys.log(name);
          assert.match(log, /the sentinels moved (master mc )?to 127\.0\.0\.1:\d+|the sentinels moved the master to/,
            `${name} did not follow the sentinels' announcement`);
          assert.doesNotMatch(log, /no longer the master|lost shard/, `${name} waited for the old master to fail`);
        }
      }
    } finally {
      clearInterval(typing);
    }
  });

  test(`no process reported a memory error, and all stop cleanly (${sentinel ? 'Sentinel' : 'one Redis'})`, async () => {
    for (const p of typists) p.close();
    assert.ok(sys.running(), 'a process died');
    assert.deepEqual(await sys.stop(), []);
  });
}
