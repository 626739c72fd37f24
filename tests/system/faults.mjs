// Multichat run for real: 2 interfaces on their own ports, 3 workers (or
// another number), on one Redis or on Redis shards, on sqlite or on
// PostgreSQL, on this host or on simulated hosts (tests/lib/hosts.mjs).
// People on different interfaces chat; processes are killed with SIGKILL in
// the middle of traffic; nothing is lost, nothing is shown twice, and every
// member sees a room's messages in the order of their ids. faultTests()
// declares the tests for one such system.
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {existsSync, readlinkSync, writeFileSync} from 'node:fs';
import {System, redisCli} from '../lib/system.mjs';
import {login, Socket, Member, until} from '../lib/client.mjs';

export function faultTests({shards = 1, db = 'sqlite', hosts = 0, workers = 3} = {}) {
  let sys, lobby;
  const where = `${shards} Redis, ${db}${hosts ? `, ${hosts} hosts` : ''}`;
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

  const stored = (room) => sys.stored(room);

  before(async () => {
    // Bursts from a few users: the per-user rate limit is not what this
    // tests, nor the budget of a socket.
    sys = await new System({interfaces: 2, workers, separatePorts: true, shards, db, hosts,
                            workerEnv: {CHAT_RATE_MESSAGES: '0'},
                            interfaceEnv: {CHAT_SOCKET_RATE: '0'}}).start();
    const names = ['ann', 'bob', 'cat', 'dan', 'eve'];
    sys.chatctl(['user', 'import'], names.map((n) => `${n} ${n}-pass-1`).join('\n') + '\n');
    lobby = sys.chatctl(['room', 'add', 'Lobby']);
    for (const [i, n] of names.entries()) cookies[n] = await login(sys.urls[i % 2], n, `${n}-pass-1`);
  });

  after(async () => {
    for (const s of sockets) s.close();
    await sys?.stop();
  });

  if (hosts) {
    test(`each host is its own: namespaces, files, and a link to the servers (${where})`, async () => {
      const ns = (pid, kind) => readlinkSync(`/proc/${pid}/ns/${kind}`);
      const pids = [...sys.workers, ...sys.interfaces].map((p) => p.pid);
      for (const kind of ['mnt', 'net', 'uts']) {
        const here = ns(process.pid, kind);
        for (const [i, pid] of pids.entries()) {
          const same = pids.filter((q, j) => sys.hostOf(j % workers) === sys.hostOf(i % workers));
          assert.notEqual(ns(pid, kind), here, `process ${pid} shares the test's ${kind} namespace`);
          for (const q of pids) {
            if (same.includes(q)) continue;
            assert.notEqual(ns(pid, kind), ns(q, kind), `processes of two hosts share a ${kind} namespace`);
          }
        }
      }
      // A file a worker could write in its folder is nowhere for the other.
      const [a, b] = [sys.workers[0].pid, sys.workers[1].pid];
      writeFileSync(`/proc/${a}/cwd/written-on-a`, 'a');
      assert.ok(existsSync(`/proc/${a}/cwd/written-on-a`));
      assert.ok(!existsSync(`/proc/${b}/cwd/written-on-a`), 'host b sees the files of host a');
      assert.ok(!existsSync('/tmp/work/written-on-a'), 'this host sees the files of host a');
      // Each host reaches PostgreSQL and Redis from its own address.
      const insides = sys.hosts.hosts.map((h) => h.inside);
      const pg = sys.sql("SELECT DISTINCT host(client_addr) FROM pg_stat_activity WHERE " +
        "application_name = 'multichat' AND client_addr IS NOT NULL ORDER BY 1").split('\n');
      assert.deepEqual(pg, [...insides].sort());
      const redis = redisCli(sys.redisPort, 'CLIENT', 'LIST').join('\n');
      for (const at of insides) assert.match(redis, new RegExp(`addr=${at.replaceAll('.', '\\.')}:`));
    });
  }

  test(`sockets on two interfaces in one room see each other's messages (${where})`, async () => {
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

  // Each sender sends n messages to room as fast as it can, each with a
  // client_id; returns the texts, once every sender got its own copy of each
  // (within timeoutMs).
  function blast(senders, room, n) {
    const texts = [];
    for (const s of senders) {
      for (let k = 0; k < n; k++) {
        const text = `${s.name} ${k}`;
        texts.push(text);
        s.send({command: 'send', room: Number(room), message: text, client_id: `${s.name}-${room}-${k}`});
      }
    }
    return texts;
  }

  // What every member must have seen: each stored message of room exactly
  // once (live or as history), nothing else; stored = the texts, once each.
  // A worker killed between publishing a message and acknowledging its
  // envelope leaves it to be handled again: it is stored once (client_id)
  // and its group send, named by the message id, pushes nothing the second
  // time. One killed between storing its batch and publishing it leaves the
  // batch's rooms marked: the next batch there publishes it first.
  function assertDelivered(room, members, texts, {ordered = false} = {}) {
    const rows = stored(room);
    const bodies = rows.map((r) => r.body);
    assert.equal(rows.length, texts.length, `${rows.length} messages stored, ${texts.length} sent`);
    assert.deepEqual([...bodies].sort(), [...texts].sort());
    const ids = rows.map((r) => r.id);
    for (const m of members) {
      const c = m.check(room, ids);
      assert.deepEqual(c.twice, [], `${m.name} was shown ids more than once`);
      assert.deepEqual(c.missing, [], `${m.name} never got these ids`);
      assert.deepEqual(c.unknown, [], `${m.name} got ids that are not stored`);
      if (ordered) assert.ok(c.increasing, `${m.name} got messages out of order`);
      assert.deepEqual(m.errors, [], `${m.name} got errors`);
    }
  }

  const allSent = (senders, n) => () => senders.every((s) => s.ownTexts.size >= n);
  const allSeen = (members, room, total) => () => members.every((m) => m.seen(room) >= total);

  test(`${workers} workers serve one busy room: every message stored once, delivered to all in order (${where})`, async () => {
    const room = sys.chatctl(['room', 'add', 'Busy']);
    const members = [
      await memberOn([A(), B()], 'ann', room), await memberOn([A(), B()], 'bob', room),
      await memberOn([B(), A()], 'cat', room), await memberOn([B(), A()], 'dan', room),
    ];
    const senders = members.slice(0, 3);
    const texts = blast(senders, room, 100);
    await until(allSent(senders, 100), 60000, 'the senders\' own copies');
    await until(allSeen(members, room, 300), 30000, 'every member to see 300 messages');
    assertDelivered(room, members, texts, {ordered: true});
    for (const m of members) m.close();
  });

  test(`a worker killed during a burst of 1,000 messages: each stored once, delivered once to every member, in order (${where})`, async () => {
    const room = sys.chatctl(['room', 'add', 'Burst']);
    const members = [
      await memberOn([A(), B()], 'ann', room), await memberOn([A(), B()], 'bob', room),
      await memberOn([B(), A()], 'cat', room), await memberOn([B(), A()], 'dan', room),
      await memberOn([A(), B()], 'eve', room),
    ];
    const senders = members.slice(0, 4);
    const texts = blast(senders, room, 250);
    const eve = members[4];
    await until(() => eve.seen(room) >= 150, 30000, 'the burst to be under way');
    await sys.killWorker(0);
    try {
      assert.ok(eve.seen(room) < 1000, 'the burst was over before the kill');
      await until(allSent(senders, 250), 60000, 'the senders\' own copies');
      await until(allSeen(members, room, 1000), 30000, 'every member to see 1,000 messages');
      assertDelivered(room, members, texts, {ordered: true});
    } finally {
      sys.startWorker(0);
      for (const m of members) m.close();
    }
  });

  test(`an interface killed: its clients reconnect to the other one and get what they missed, once (${where})`, async () => {
    const room = sys.chatctl(['room', 'add', 'Crash']);
    const ann = await memberOn([A(), B()], 'ann', room);
    const eve = await memberOn([A(), B()], 'eve', room);
    const cat = await memberOn([B(), A()], 'cat', room);
    const bob = await memberOn([B(), A()], 'bob', room);
    const texts = [];
    for (let k = 0; k < 150; k++) {
      const text = `bob ${k}`;
      texts.push(text);
      bob.send({command: 'send', room: Number(room), message: text, client_id: `crash-${k}`});
      await until(() => bob.ownTexts.has(text), 20000, `bob's own copy of ${text}`);
      if (k === 30) await sys.killInterface(0);
    }
    try {
    await until(allSeen([ann, eve, cat, bob], room, 150), 30000, 'every member to see 150 messages');
    assert.ok(ann.reconnections >= 1 && eve.reconnections >= 1, 'the clients of A did not reconnect');
    assert.equal(ann.baseUrl, B());
    assertDelivered(room, [ann, eve, cat, bob], texts);
    // On the other interface, ann talks and is heard.
    const from = cat.mark();
    await ann.request({command: 'send', room: Number(room), message: 'back on B'}, (d) => d.own);
    await cat.waitFor((d) => d.message === 'back on B', {from});
    } finally {
      for (const m of [ann, eve, cat, bob]) m.close();
      await sys.startInterface(0);
    }
  });

  test(`no process reported a memory error, and all stop cleanly (${where})`, async () => {
    for (const s of sockets) s.close();
    assert.ok(sys.running(), 'a process died');
    assert.deepEqual(await sys.stop(), []);
  });
}
