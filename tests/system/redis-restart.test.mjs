// The Redis server dies and comes back, empty, on the same port: every
// process reconnects by itself and the chat works again, with no process
// restarted. Logins survive (sessions are in sqlite); sockets may be dropped
// and reconnect as the page does. All of it twice: the processes reach
// Redis over loopback TCP, then over its Unix socket (the same path again
// after the restart).
import {describe, test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {System, redisCli} from '../lib/system.mjs';
import {login, Socket, Member, until} from '../lib/client.mjs';

const transports = [[false, 'port'], [true, 'Unix socket']];
for (const [redisSocket, where] of transports) describe(`Redis over its ${where}`, () => {
  let sys, lobby;
  const cookies = {};
  const sockets = [];

  before(async () => {
    sys = await new System({interfaces: 2, workers: 2, separatePorts: true, redisSocket}).start();
    sys.chatctl(['user', 'import'], 'ann ann-pass-1\nbob bob-pass-1\n');
    lobby = sys.chatctl(['room', 'add', 'Lobby']);
    cookies.ann = await login(sys.urls[0], 'ann', 'ann-pass-1');
    cookies.bob = await login(sys.urls[1], 'bob', 'bob-pass-1');
  });

  after(async () => {
    for (const s of sockets) s.close();
    await sys?.stop();
  });

  // Sends text from one member until another shows it, with the same
  // client_id each time (stored once however often it is sent), for at most
  // timeoutMs. Resolves with the message as the receiver got it.
  async function getThrough(from, to, text, timeoutMs) {
    const deadline = Date.now() + timeoutMs;
    const mark = to.mark();
    for (let attempt = 0; ; attempt++) {
      if (from.ws.readyState === 1) from.send({command: 'send', room: Number(lobby), message: text, client_id: text});
      try {
        // Live, or in the history of the join that follows a reconnection: a
        // retried send with the same client_id is stored and delivered once.
        const d = await to.waitFor(
          (d) => d?.message === text || d?.history?.some?.((m) => m.message === text),
          {from: mark, timeoutMs: 1000});
        return d.message === text ? d : d.history.find((m) => m.message === text);
      } catch (err) {
        if (Date.now() > deadline) throw err;
      }
    }
  }

  test(`after Redis restarts empty on its ${where}, every process reconnects and the chat works again`, async () => {
    const ann = new Member('ann', [sys.urls[0]], cookies.ann);
    const bob = new Member('bob', [sys.urls[1]], cookies.bob);
    sockets.push(ann, bob);
    await ann.start();
    await bob.start();
    await ann.enter(lobby);
    await bob.enter(lobby);
    await getThrough(ann, bob, 'before the restart', 5000);
    if (redisSocket) { // every worker and interface came in through the socket
      const clients = redisCli(sys.redisPort, 'CLIENT', 'LIST');
      const onSocket = clients.filter((c) => c.includes(` addr=${sys.redisSocketPath(0)}:`));
      assert.ok(onSocket.length >= 4, clients.join('\n'));
    }
    const pids = [...sys.workers, ...sys.interfaces].map((p) => p.pid);

    await sys.killRedis(0);
    await sys.startRedis(0);

    // Both ways, on the sockets the clients have now (the same or new ones).
    const there = await getThrough(ann, bob, 'after the restart, from A', 30000);
    const back = await getThrough(bob, ann, 'after the restart, from B', 30000);
    assert.ok(back.id > there.id);
    // Nobody was restarted.
    assert.ok(sys.running(), 'a process died');
    assert.deepEqual([...sys.workers, ...sys.interfaces].map((p) => p.pid), pids);
    // Logins survived, and a new login and socket work on either interface.
    for (const url of sys.urls) {
      const s = new Socket('ann again');
      sockets.push(s);
      await s.open(url, cookies.ann);
      await s.join(lobby);
      const fresh = await login(url, 'bob', 'bob-pass-1');
      assert.match(fresh, /sessionid=/);
      s.close();
    }
    // Each message stored once, whatever the retries (a retried send with the
    // same client_id may be shown again, with the same id).
    const history = await ann.request({command: 'history', room: Number(lobby), before: back.id + 1, limit: 100},
      (d) => d.history !== undefined);
    assert.deepEqual(history.messages.map((m) => m.message),
      ['before the restart', 'after the restart, from A', 'after the restart, from B']);
  });

  test('no process reported a memory error, and all stop cleanly', async () => {
    for (const s of sockets) s.close();
    assert.ok(sys.running(), 'a process died');
    assert.deepEqual(await sys.stop(), []);
  });
});
