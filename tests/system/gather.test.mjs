// A busy worker gathers (CHAT_WORKER_GATHER_US): what comes while it waits
// for the next batch is popped, stored and published as one batch, and every
// member still sees each message once, in the order it was sent.
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {System, freePort, waitPort} from '../lib/system.mjs';
import {login, Socket} from '../lib/client.mjs';

let sys, port;
const sockets = [];

before(async () => {
  port = await freePort();
  // 0.3 s: far longer than five sends take, however slow the machine;
  // and the interface lets a socket have all five unanswered.
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

async function scrape() {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const samples = new Map();
  for (const line of text.split('\n')) {
    const m = line.match(/^([a-z_]+(?:\{[^}]*\})?) (\S+)$/);
    if (m) samples.set(m[1], Number(m[2]));
  }
  return samples;
}

const RECEIVED = 'chat_worker_envelopes_total{type="websocket.receive"}';

// The worker publishes its counts after each batch: polls until pred holds.
async function scrapeUntil(pred, what) {
  const deadline = Date.now() + 10000;
  for (;;) {
    const s = await scrape();
    if (pred(s)) return s;
    if (Date.now() > deadline) throw new Error(`metrics never showed ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function member(name) {
  const s = new Socket(name);
  sockets.push(s);
  await s.open(sys.url, await login(sys.url, name, `${name}-pass-1`));
  await s.join(1);
  return s;
}

test('a burst sent while the worker gathers is one batch, seen once and in order', async () => {
  const ann = await member('ann'), bob = await member('bob');
  const before = await scrapeUntil((m) => m.get(RECEIVED) === 2, 'the two joins');
  // One message, then five more at once: the first is a batch of its own,
  // the five come while the worker waits out its gathering time after it.
  const from = bob.mark();
  await ann.request({command: 'send', room: 1, message: 'first'}, (d) => d.msg_type === 0 && d.own);
  for (let i = 0; i < 5; i++) ann.send({command: 'send', room: 1, message: `burst ${i}`});
  await bob.waitFor((d) => d.message === 'burst 4', {from});
  const seen = bob.frames.slice(from).filter((f) => f.data?.msg_type === 0).map((f) => f.data.message);
  assert.deepEqual(seen, ['first', 'burst 0', 'burst 1', 'burst 2', 'burst 3', 'burst 4']);
  const after = await scrapeUntil((m) => m.get(RECEIVED) === 8, 'the six messages');
  assert.equal(after.get('chat_worker_batches_total') - before.get('chat_worker_batches_total'), 2);
  const own = ann.frames.filter((f) => f.data?.own && /^burst/.test(f.data.message));
  assert.equal(own.length, 5);
});

test('no process reported a memory error, and all stop cleanly', async () => {
  for (const s of sockets) s.close();
  assert.ok(sys.running(), 'a process died');
  assert.deepEqual(await sys.stop(), []);
});
