// A busy worker gathers (CHAT_WORKER_GATHER_US): what comes while it waits
// for the next batch is popped, stored and published as one batch (the
// channel layer's sync_queue_test shows that it does), and every member
// still sees each message once, in the order it was sent.
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {System, freePort, waitPort} from '../lib/system.mjs';
import {login, Socket} from '../lib/client.mjs';
import {scrapeUntil, moved} from '../lib/metrics.mjs';

let sys, port;
const sockets = [];

before(async () => {
  port = await freePort();
  // 0.3 s: far longer than five sends take, however slow the machine;
  // and the interface lets a socket have five unanswered.
  sys = await new System({workerEnv: {CHAT_WORKER_GATHER_US: '300000',
                                      CHAT_METRICS_LISTEN: `127.0.0.1:${port}`},
                          interfaceEnv: {CHAT_SOCKET_IN_FLIGHT: '8'}}).start();
  for (const name of ['ann', 'bob']) sys.chatctl(['user', 'add', name, '--password-stdin'], `${name}-pass-1\n`);
  sys.chatctl(['room', 'add', 'Lobby']);
  await waitPort(port);
});

after(async () => {
  for (const s of sockets) s.close();
  await sys?.stop();
});

const RECEIVED = 'chat_worker_envelopes_total{type="websocket.receive"}';
async function member(name) {
  const s = new Socket(name);
  sockets.push(s);
  await s.open(sys.url, await login(sys.url, name, `${name}-pass-1`));
  await s.join(1);
  return s;
}

test('bursts sent while the worker gathers are seen once and in order, and counted', async () => {
  const ann = await member('ann'), bob = await member('bob');
  const before = await scrapeUntil(port, (m) => m.get(RECEIVED) === 2, 'the two joins');
  // Two bursts of five, the second once the first is seen: the worker
  // gathers after a batch of two or more, or an envelope pushed with
  // others behind it, and the second comes meanwhile.
  const from = bob.mark(), sent = [];
  for (const burst of ['a', 'b']) {
    for (let i = 0; i < 5; i++) {
      sent.push(`${burst} ${i}`);
      ann.send({command: 'send', room: 1, message: `${burst} ${i}`});
    }
    await bob.waitFor((d) => d.message === `${burst} 4`, {from});
  }
  const seen = bob.frames.slice(from).filter((f) => f.data?.msg_type === 0).map((f) => f.data.message);
  assert.deepEqual(seen, sent);
  await ann.waitFor((d) => d.own && d.message === 'b 4');
  assert.deepEqual(ann.frames.filter((f) => f.data?.own).map((f) => f.data.message), sent);
  const after = await scrapeUntil(port, (m) => m.get(RECEIVED) === 12, 'the ten messages');
  const batches = moved(before, after, 'chat_worker_batches_total');
  assert.ok(batches >= 1 && batches <= 10, `${batches} batches for ten envelopes`);
});

test('no process reported a memory error, and all stop cleanly', async () => {
  for (const s of sockets) s.close();
  assert.ok(sys.running(), 'a process died');
  assert.deepEqual(await sys.stop(), []);
});
