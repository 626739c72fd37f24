// Starts a whole Multichat for one test file: a private redis-server on a free
// loopback port, a fresh sqlite file, N workers and N interfaces built under
// $MC_BUILD/bin. Every process dies with the test (stop() and an exit hook).
import {spawn, spawnSync} from 'node:child_process';
import {mkdtempSync, rmSync, openSync} from 'node:fs';
import {createServer, connect} from 'node:net';
import {tmpdir} from 'node:os';
import path from 'node:path';

const source = process.env.MC_SOURCE || path.resolve(import.meta.dirname, '../..');
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
export async function waitPort(port, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise((resolve) => {
      const s = connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`port ${port} did not open`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export class System {
  // With separatePorts, interface i listens on ports[i] (urls[i]); otherwise
  // all share one port through SO_REUSEPORT.
  // workerEnv and interfaceEnv add settings (CHAT_* variables) to those processes.
  constructor({interfaces = 1, workers = 1, separatePorts = false, workerEnv = {},
               interfaceEnv = {}} = {}) {
    this.workerEnv = workerEnv;
    this.interfaceEnv = interfaceEnv;
    this.nInterfaces = interfaces;
    this.separatePorts = separatePorts;
    this.ports = [];
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
      CHAT_REDIS_URL: `redis://127.0.0.1:${this.redisPort}`,
      CHAT_WEB_ROOT: path.join(source, 'web'),
      CHAT_PASSWORD_MEMORY_KIB: '8192', // fast hashing for tests
      ...extra,
    };
  }

  spawn(name, program, args = [], extraEnv = {}) {
    const log = openSync(path.join(this.dir, `${name}.log`), 'a');
    const child = spawn(program, args, {env: this.env(extraEnv), stdio: ['ignore', log, log]});
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

  // One query on the database, with the sqlite3 shell; its output trimmed.
  sql(query) {
    const r = spawnSync('sqlite3', [this.db, query], {encoding: 'utf8'});
    if (r.status !== 0) throw new Error(`sqlite3: ${r.stderr}`);
    return r.stdout.trim();
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
    this.redisPort = await freePort();
    this.redis = this.spawn('redis', 'redis-server', ['--port', String(this.redisPort), '--bind',
      '127.0.0.1', '--dir', this.dir, '--save', '', '--appendonly', 'no']);
    await waitPort(this.redisPort);
    this.chatctl(['migrate']);
    for (let i = 0; i < this.nWorkers; i++) this.startWorker(i);
    this.port = await freePort();
    for (let i = 0; i < this.nInterfaces; i++) {
      this.ports[i] = this.separatePorts && i > 0 ? await freePort() : this.port;
      await this.startInterface(i);
    }
    this.url = `http://127.0.0.1:${this.port}`;
    this.urls = this.ports.map((p) => `http://127.0.0.1:${p}`);
    return this;
  }

  startWorker(i) {
    return this.spawn(`worker-${i}`, path.join(bin, 'chat-worker'), [], this.workerEnv);
  }

  async startInterface(i) {
    const child = this.spawn(`interface-${i}`, path.join(bin, 'chat-interface'),
      [], {...this.interfaceEnv, CHAT_LISTEN: `127.0.0.1:${this.ports[i]}`});
    this.interfaces[i] = child;
    await waitPort(this.ports[i]);
    return child;
  }

  // SIGKILL, as a crash would.
  async killInterface(i) {
    const child = this.interfaces[i];
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }

  killAll() {
    for (const p of this.procs) p.kill('SIGKILL');
  }

  async stop() {
    const exits = [...this.procs].map((p) => new Promise((r) => p.once('exit', r)));
    for (const p of this.procs) p.kill('SIGTERM');
    const timer = setTimeout(() => this.killAll(), 5000);
    await Promise.all(exits);
    clearTimeout(timer);
    if (!process.env.MC_KEEP_LOGS) rmSync(this.dir, {recursive: true, force: true});
  }
}
