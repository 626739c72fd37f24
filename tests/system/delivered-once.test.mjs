// A chat message sent again (a client's retry with its client_id, as after
// a lost answer; a worker's replay after a crash goes the same way) is
// published again with its id. Each interface hands a room's sockets only
// ids above the last it handed there, or above the room's newest when a
// socket joined: so it reaches nobody twice, not even a socket that joined
// in between on an interface where the room had nobody.
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {System} from '../lib/system.mjs';
import {login, Socket} from '../lib/client.mjs';

let sys, lobby;
const sockets = [];

before(async () => {
  sys = await new System({interfaces: 2, workers: 1, separatePorts: true}).start();
  for (const name of ['ann', 'bob']) sys.chatctl(['user', 'add', name, '--password-stdin'], `${name}-pass-1\n`);
  lobby = Number(sys.chatctl(['room', 'add', 'Lobby']));
});

after(async () => {
  for (const s of sockets) s.close();
  await sys?.stop();
});

async function connect(name, url) {
  const s = new Socket(name);
  sockets.push(s);
  await s.open(url, await login(url, name, `${name}-pass-1`));
  return s;
}

const chat = (s, from) => s.frames.slice(from).filter((f) => f.data?.msg_type === 0).map((f) => f.data.message);

test('a message sent again reaches nobody twice, not even a socket that joined on another interface since', async () => {
  const ann = await connect('ann', sys.urls[0]);
  await ann.join(lobby);
  const first = {command: 'send', room: lobby, message: 'first', client_id: 'once-1'};
  await ann.request(first, (d) => d.own && d.message === 'first');

  // bob's interface has nobody in the room until he joins; his history
  // has the message.
  const bob = await connect('bob', sys.urls[1]);
  const join = await bob.join(lobby);
  assert.deepEqual(join.history.map((m) => m.message), ['first']);

  const annFrom = ann.mark(), bobFrom = bob.mark();
  ann.send(first);
  ann.send({command: 'send', room: lobby, message: 'second', client_id: 'once-2'});
  await bob.waitFor((d) => d.message === 'second', {from: bobFrom});
  await ann.waitFor((d) => d.own && d.message === 'second', {from: annFrom});
  assert.deepEqual(chat(bob, bobFrom), ['second']);
  assert.deepEqual(chat(ann, annFrom), ['second']);
});

test('no process reported a memory error, and all stop cleanly', async () => {
  for (const s of sockets) s.close();
  assert.ok(sys.running(), 'a process died');
  assert.deepEqual(await sys.stop(), []);
});
