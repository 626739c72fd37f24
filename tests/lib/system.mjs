// Starts a whole Multichat for one test file: a private redis-server on a free
// loopback port, a fresh database (a sqlite file, or with db: 'postgresql' a
// database on a private PostgreSQL server, tests/support/postgres.sh), N
// workers and N interfaces built under $MC_BUILD/bin. Every process dies
// with the test (stop() and an exit hook). With sentinel, Redis is a master,
// its replica and three redis-sentinel processes (quorum 2, a master is down
// after 1 s, failover timeout 2 s), and every process reaches it through the
// Sentinel URL.
import assert from 'node:assert/strict';
import {spawn, spawnSync} from 'node:child_process';
import {mkdtempSync, rmSync, openSync, readdirSync, readFileSync, writeFileSync} from 'node:fs';
import {createServer, connect} from 'node:net';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {Hosts} from './hosts.mjs';

const source = process.env.MC_SOURCE || fileURLToPath(new URL('../..', import.meta.url));
const bin = path.join(process.env.MC_BUILD || path.join(source, 'build/asan'), 'bin');

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const {port} = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// Resolves once a TCP connection to the port succeeds (polling a condition,
// bounded by timeoutMs).
export async function waitPort(port, timeoutMs = 10000, address = '127.0.0.1') {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise((resolve) => {
      const s = connect(port, address, () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`port ${port} did not open`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// One command with redis-cli; its output lines ([] when it fails).
export function redisCli(port, ...args) {
  const r = spawnSync('redis-cli', ['-p', String(port), ...args], {encoding: 'utf8', timeout: 2000});
  return r.status === 0 ? r.stdout.trim().split('\n') : [];
}

// SIGKILL, as a crash would; resolves once the process is gone.
async function killed(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

export class System {
  // With separatePorts, interface i listens on ports[i] (urls[i]); otherwise
  // all share one port through SO_REUSEPORT. With shards > 1, that many
  // redis-servers shard the channel layer (every process gets all URLs).
  // env adds settings (CHAT_* variables) to every process; workerEnv and
  // interfaceEnv to those processes only. db is 'sqlite' or 'postgresql'.
  // With hosts > 0, worker i and interface i run on simulated host i % hosts
  // (tests/lib/hosts.mjs), and reach PostgreSQL and Redis, which stay here,
  // over its link; interfaces then listen on their own ports at their
  // hosts' addresses (urls). With redisSocket, the chat processes reach each
  // redis-server over a Unix socket in the system's folder (its port stays,
  // for redisCli).
  constructor({interfaces = 1, workers = 1, separatePorts = false, shards = 1, sentinel = false,
               env = {}, workerEnv = {}, interfaceEnv = {}, db = 'sqlite', pgEnv = {},
               hosts = 0, redisSocket = false} = {}) {
    this.backend = db;
    this.redisSocket = redisSocket;
    this.nHosts = hosts;
    this.pgEnv = pgEnv;
    this.sentinel = sentinel;
    this.nodes = []; // with sentinel: the master and the replica, {port, child}
    this.sentinels = [];
    this.workerEnv = workerEnv;
    this.interfaceEnv = interfaceEnv;
    this.nInterfaces = interfaces;
    this.nShards = shards;
    this.extraEnv = env;
    this.redisPorts = [];
    this.redises = [];
    this.workers = [];
    this.separatePorts = separatePorts;
    this.ports = [];
    this.metricsPorts = [];
    this.nWorkers = workers;
    this.procs = new Set();
    this.dir = mkdtempSync(path.join(tmpdir(), 'mc-system-'));
    this.db = path.join(this.dir, 'chat.sqlite3');
    this.interfaces = [];
    process.on('exit', () => this.killAll());
  }

  env(extra = {}) {
    return {
      ...process.env,
      CHAT_DB: this.db,
      CHAT_REDIS_URL: this.sentinel ? this.sentinelUrl :
        this.redisPorts.map((p, i) => this.redisSocket ? `unix://${this.redisSocketPath(i)}` :
          `redis://127.0.0.1:${p}`).join(','),
      CHAT_WEB_ROOT: path.join(source, 'web'),
      CHAT_ARGON2_MEMORY_KIB: '8192', // fast hashing for tests
      ...this.extraEnv,
      ...extra,
    };
  }

  // The host a worker or interface i runs on (undefined: this one).
  hostOf(i) {
    return this.nHosts ? i % this.nHosts : undefined;
  }

  // What differs for a process on host h: where it finds the servers.
  hostEnv(h) {
    if (h === undefined) return {};
    const at = this.hosts.hosts[h].outside;
    return {CHAT_DB: this.db.replace('@127.0.0.1:', `@${at}:`),
            CHAT_REDIS_URL: this.redisPorts.map((p) => `redis://${at}:${p}`).join(',')};
  }

  // Starts program on host (undefined: this one), its output in NAME.log.
  spawn(name, program, args = [], extraEnv = {}, host = undefined) {
    const log = openSync(path.join(this.dir, `${name}.log`), 'a');
    const [cmd, argv] = host === undefined ? [program, args] : this.hosts.wrap(host, program, args);
    const child = spawn(cmd, argv, {env: this.env({...extraEnv, ...this.hostEnv(host)}),
                                    stdio: ['ignore', log, log]});
    child.name = name;
    this.procs.add(child);
    child.on('exit', () => this.procs.delete(child));
    return child;
  }

  chatctl(args, input) {
    const r = spawnSync(path.join(bin, 'chatctl'), args, {env: this.env(), input, encoding: 'utf8'});
    if (r.status !== 0) throw new Error(`chatctl ${args.join(' ')}: ${r.stderr}`);
    return r.stdout.trim();
  }

  // One query on the database, with the sqlite3 shell or psql; its output
  // trimmed, columns separated by '|'.
  sql(query) {
    const [shell, args] = this.backend === 'postgresql' ? ['psql', ['-qAtX', this.db, '-c', query]]
      : ['sqlite3', [this.db, query]];
    const r = spawnSync(shell, args, {encoding: 'utf8'});
    if (r.status !== 0) throw new Error(`${shell}: ${r.stderr}`);
    return r.stdout.trim();
  }

  // A private PostgreSQL server (its script prints the server's URL once it
  // answers, and stops it when its stdin closes) and a database on it.
  // pgEnv adds settings of the script (MC_PG_LISTEN, MC_PG_TRUST).
  async startPostgres() {
    const log = openSync(path.join(this.dir, 'postgres.log'), 'a');
    const child = spawn(path.join(source, 'tests/support/postgres.sh'), [],
      {stdio: ['pipe', 'pipe', log], env: {...process.env, ...this.pgEnv}});
    this.postgres = child;
    this.procs.add(child);
    child.on('exit', () => this.procs.delete(child));
    this.pgLines = [];
    let out = '';
    child.stdout.on('data', (b) => {
      out += b;
      const lines = out.split('\n');
      out = lines.pop();
      this.pgLines.push(...lines);
    });
    const url = await this.pgLine();
    this.pgUrl = url;
    const r = spawnSync('psql', ['-qX', url, '-c', 'CREATE DATABASE chat'], {encoding: 'utf8'});
    if (r.status !== 0) throw new Error(`psql: ${r.stderr}`);
    this.db = url.replace(/\/[^/]*$/, '/chat');
  }

  // The next line the PostgreSQL script prints.
  async pgLine() {
    await this.until(() => this.pgLines.length || this.postgres.exitCode !== null,
      'the PostgreSQL script to answer');
    if (!this.pgLines.length) throw new Error(`postgres.sh exited: see ${this.dir}/postgres.log`);
    return this.pgLines.shift();
  }

  // Stops the PostgreSQL server as pg_ctl stop -m fast does (every session
  // ends), and starts it again on its folder and port.
  async stopPostgres() {
    this.postgres.stdin.write('stop\n');
    assert.equal(await this.pgLine(), 'stopped');
  }

  async startPostgresAgain() {
    this.postgres.stdin.write('start\n');
    assert.equal(await this.pgLine(), 'started');
  }

  // The messages of a room as stored: [{id, body}] in id order.
  stored(room) {
    return this.sql(`SELECT id, body FROM messages WHERE room_id = ${Number(room)} ORDER BY id`)
      .split('\n').filter(Boolean).map((l) => {
        const bar = l.indexOf('|');
        return {id: Number(l.slice(0, bar)), body: l.slice(bar + 1)};
      });
  }

  // Polls sql(query) until it prints want (bounded by timeoutMs).
  async waitSql(query, want, timeoutMs = 10000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const got = this.sql(query);
      if (got === want) return;
      if (Date.now() > deadline) throw new Error(`${query}: ${got}, not ${want}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async start() {
    if (this.nHosts) {
      this.hosts = new Hosts(this.nHosts, [bin, source]);
      this.pgEnv = {...this.pgEnv, MC_PG_LISTEN: this.hosts.outsides.join(' '),
                    MC_PG_TRUST: this.hosts.nets.join(' ')};
    }
    if (this.backend === 'postgresql') await this.startPostgres();
    if (this.sentinel) {
      await this.startSentinels();
    } else {
      for (let i = 0; i < this.nShards; i++) {
        this.redisPorts[i] = await freePort();
        await this.startRedis(i);
      }
      this.redisPort = this.redisPorts[0];
    }
    this.chatctl(['migrate']);
    for (let i = 0; i < this.nWorkers; i++) this.startWorker(i);
    this.port = await freePort();
    for (let i = 0; i < this.nInterfaces; i++) {
      this.ports[i] = this.separatePorts && i > 0 ? await freePort() : this.port;
      this.metricsPorts[i] = await freePort();
      await this.startInterface(i);
    }
    this.urls = this.ports.map((p, i) => `http://${this.interfaceAddress(i)}:${p}`);
    this.url = this.urls[0];
    return this;
  }

  // Where shard i's server listens with redisSocket.
  redisSocketPath(i) {
    return path.join(this.dir, `redis-${i}.sock`);
  }

  // Redis shard i on its port (and socket); an empty server, as after a crash.
  async startRedis(i) {
    this.redises[i] = this.spawn(`redis-${i}`, 'redis-server', ['--port', String(this.redisPorts[i]),
      '--bind', '127.0.0.1', ...(this.hosts ? [...this.hosts.outsides, '--protected-mode', 'no'] : []),
      ...(this.redisSocket ? ['--unixsocket', this.redisSocketPath(i), '--unixsocketperm', '700'] : []),
      '--dir', this.dir, '--save', '', '--appendonly', 'no']);
    this.redis = this.redises[0];
    await waitPort(this.redisPorts[i]);
    return this.redises[i];
  }

  async killRedis(i) {
    await killed(this.redises[i]);
  }

  // The master "mc" and its replica, then three sentinels that watch it;
  // resolves once a failover could happen (the replica is in sync, each
  // sentinel knows it and the two others).
  async startSentinels() {
    for (let i = 0; i < 2; i++) {
      const port = await freePort();
      const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', this.dir, '--save', '',
        '--appendonly', 'no', '--repl-diskless-sync-delay', '0', '--dbfilename', `node-${i}.rdb`];
      if (i === 1) args.push('--replicaof', '127.0.0.1', String(this.nodes[0].port));
      this.nodes[i] = {port, child: this.spawn(`redis-node-${i}`, 'redis-server', args)};
      await waitPort(port);
    }
    await this.until(() => /connected/.test(redisCli(this.nodes[1].port, 'ROLE').join(' ')),
      'the replica syncs');
    for (let k = 0; k < 3; k++) {
      const port = await freePort();
      const conf = path.join(this.dir, `sentinel-${k}.conf`);
      writeFileSync(conf, [`port ${port}`, 'bind 127.0.0.1', `dir ${this.dir}`,
        `sentinel monitor mc 127.0.0.1 ${this.nodes[0].port} 2`,
        'sentinel down-after-milliseconds mc 1000', 'sentinel failover-timeout mc 2000',
        'sentinel parallel-syncs mc 1', ''].join('\n'));
      this.sentinels[k] = {port, child: this.spawn(`sentinel-${k}`, 'redis-sentinel', [conf])};
      await waitPort(port);
    }
    await this.until(() => this.sentinels.every(({port}) => {
      const m = redisCli(port, 'SENTINEL', 'MASTER', 'mc');
      const field = (k) => m[m.indexOf(k) + 1];
      return field('num-slaves') === '1' && field('num-other-sentinels') === '2';
    }), 'the sentinels know each other and the replica');
    this.sentinelUrl = 'redis+sentinel://' +
      this.sentinels.map(({port}) => `127.0.0.1:${port}`).join(',') + '/mc';
  }

  // The port of the node that every sentinel names as master and that says
  // so itself, or 0 while they do not agree.
  sentinelMaster() {
    const named = new Set(this.sentinels.map(({port}) =>
      redisCli(port, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', 'mc')[1]));
    if (named.size !== 1) return 0;
    const port = Number([...named][0]);
    return redisCli(port, 'ROLE')[0] === 'master' ? port : 0;
  }

  // kill -9 of the master; resolves with its port once it is gone.
  async killMaster() {
    const port = this.sentinelMaster();
    const node = this.nodes.find((n) => n.port === port);
    node.killed = true;
    await killed(node.child);
    return port;
  }

  // A failover by hand: SENTINEL FAILOVER on the first sentinel. The master
  // stays up (the sentinels make it a replica some seconds after they
  // announce the new one); resolves with its port.
  async failOverByHand() {
    const port = this.sentinelMaster();
    const said = redisCli(this.sentinels[0].port, 'SENTINEL', 'FAILOVER', 'mc');
    if (said[0] !== 'OK') throw new Error(`SENTINEL FAILOVER: ${said.join(' ')}`);
    return port;
  }

  // What process name (e.g. "worker-0", "interface-1") has logged so far.
  log(name) {
    return readFileSync(path.join(this.dir, `${name}.log`), 'utf8');
  }

  // Resolves with the new master's port once the sentinels promoted another
  // node than oldPort.
  async failedOver(oldPort, timeoutMs = 30000) {
    let port = 0;
    await this.until(() => (port = this.sentinelMaster()) && port !== oldPort, 'a failover',
      timeoutMs);
    return port;
  }

  // Polls cond until it holds (bounded by timeoutMs).
  async until(cond, what, timeoutMs = 30000) {
    const deadline = Date.now() + timeoutMs;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  startWorker(i) {
    this.workers[i] = this.spawn(`worker-${i}`, path.join(bin, 'chat-worker'), [], this.workerEnv,
      this.hostOf(i));
    return this.workers[i];
  }

  async killWorker(i) {
    await killed(this.workers[i]);
  }

  // SIGTERM, as systemd stops a worker: it finishes its batch and exits.
  async stopWorker(i) {
    const w = this.workers[i];
    if (w.exitCode !== null || w.signalCode !== null) return;
    const exited = new Promise((r) => w.once('exit', r));
    w.kill('SIGTERM');
    await exited;
  }

  // Envelopes that workers took and have not finished (their in-flight
  // lists on the first Redis).
  inFlight() {
    return Number(redisCli(this.redisPorts[0], 'EVAL', "local n = 0 for _, k in ipairs(" +
      "redis.call('KEYS', 'mc:inflight:*')) do n = n + redis.call('LLEN', k) end return n", '0')[0]);
  }

  // Where interface i listens: its host's address, or loopback.
  interfaceAddress(i) {
    const h = this.hostOf(i);
    return h === undefined ? '127.0.0.1' : this.hosts.hosts[h].inside;
  }

  async startInterface(i) {
    const at = this.interfaceAddress(i);
    const child = this.spawn(`interface-${i}`, path.join(bin, 'chat-interface'),
      [], {...this.interfaceEnv, CHAT_LISTEN: `${at}:${this.ports[i]}`,
        CHAT_METRICS_LISTEN: `${at}:${this.metricsPorts[i]}`}, this.hostOf(i));
    this.interfaces[i] = child;
    await waitPort(this.ports[i], 10000, at);
    await waitPort(this.metricsPorts[i], 10000, at);
    return child;
  }

  // Interface i's /metrics text (on its own address and port).
  async metricsText(i) {
    return (await fetch(`http://${this.interfaceAddress(i)}:${this.metricsPorts[i]}/metrics`)).text();
  }

  // The value of counter name in interface i's /metrics.
  async metric(i, name) {
    const text = await this.metricsText(i);
    const m = text.match(new RegExp(`^${name} (\\d+)$`, 'm'));
    if (!m) throw new Error(`interface ${i}: no ${name} in /metrics`);
    return Number(m[1]);
  }

  // SIGKILL, as a crash would.
  async killInterface(i) {
    await killed(this.interfaces[i]);
  }

  // Whether every process started is still running (none crashed).
  running() {
    const nodes = this.nodes.filter((n) => !n.killed).map((n) => n.child);
    return [...this.redises, ...nodes, ...this.sentinels.map((s) => s.child), ...this.workers,
      ...this.interfaces].every((p) => p.exitCode === null && p.signalCode === null);
  }

  // The PostgreSQL script gets SIGTERM, so that it takes its server along.
  killAll() {
    for (const p of this.procs) p.kill(p === this.postgres ? 'SIGTERM' : 'SIGKILL');
  }

  // Lines of the processes' logs where a sanitizer reported an error.
  sanitizerReports() {
    const found = [];
    for (const f of readdirSync(this.dir).filter((n) => n.endsWith('.log'))) {
      for (const line of readFileSync(path.join(this.dir, f), 'utf8').split('\n')) {
        if (/ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:/.test(line)) found.push(`${f}: ${line}`);
      }
    }
    return found;
  }

  // Stops every process (SIGTERM, as systemd would; the database last) and
  // returns the sanitizer reports of all of them, then removes the files.
  async stop() {
    if (this.stopped) return [];
    this.stopped = true;
    const chat = [...this.procs].filter((p) => p !== this.postgres);
    const exits = chat.map((p) => new Promise((r) => p.once('exit', r)));
    for (const p of chat) p.kill('SIGTERM');
    const timer = setTimeout(() => this.killAll(), 5000);
    await Promise.all(exits);
    clearTimeout(timer);
    if (this.postgres && this.procs.has(this.postgres)) {
      const gone = new Promise((r) => this.postgres.once('exit', r));
      this.postgres.stdin.end();
      await gone;
    }
    this.hosts?.down();
    const reports = this.sanitizerReports();
    if (!process.env.MC_KEEP_LOGS && reports.length === 0) rmSync(this.dir, {recursive: true, force: true});
    return reports;
  }
}
