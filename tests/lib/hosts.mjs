// Simulated hosts for system tests. A host is a network namespace of its own,
// linked to the test's by a veth pair on a /30 of 198.18.0.0/15 (the range
// kept for benchmarks: no real network uses it): the test's side of the link
// is `outside` (where the servers of "host C", PostgreSQL and Redis, listen
// for it), the host's side `inside` (where its interfaces listen). Every
// process of a host also runs in a mount namespace of its own, with a
// hostname of its own and a fresh tmpfs over /tmp (its working folder is
// /tmp/work): a file, or a file lock, that a process of one host makes is
// nowhere for the processes of another. Needs root (CI runs as root): ip
// netns, unshare and mount.
import {spawnSync} from 'node:child_process';

function ip(...args) {
  const r = spawnSync('ip', args, {encoding: 'utf8'});
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr.trim()}`);
  return r.stdout;
}

// A third octet for a run's hosts: 198.18.T.0/24 unused on this machine.
function freeOctet() {
  const used = ip('-4', '-o', 'addr', 'show');
  for (let i = 0; i < 256; i++) {
    const t = (process.pid + i) % 256;
    if (!used.includes(` 198.18.${t}.`)) return t;
  }
  throw new Error('no free 198.18.T.0/24 for the hosts');
}

export class Hosts {
  // n hosts, named a, b, ...; down() (or the exit of the test) removes them.
  constructor(n) {
    const t = freeOctet();
    const tag = `mc${process.pid % 100000}`;
    this.hosts = [];
    process.on('exit', () => this.down());
    for (let i = 0; i < n; i++) {
      const letter = String.fromCharCode(97 + i);
      const h = {name: `host-${letter}`, netns: `${tag}-${letter}`, outside: `198.18.${t}.${8 * i + 1}`,
                 inside: `198.18.${t}.${8 * i + 2}`, net: `198.18.${t}.${8 * i}/30`};
      this.hosts.push(h);
      const [out, inn] = [`${tag}${letter}o`, `${tag}${letter}i`];
      ip('netns', 'add', h.netns);
      h.up = true;
      ip('link', 'add', out, 'type', 'veth', 'peer', 'name', inn);
      ip('link', 'set', inn, 'netns', h.netns);
      ip('addr', 'add', `${h.outside}/30`, 'dev', out);
      ip('link', 'set', out, 'up');
      ip('-n', h.netns, 'addr', 'add', `${h.inside}/30`, 'dev', inn);
      ip('-n', h.netns, 'link', 'set', inn, 'up');
      ip('-n', h.netns, 'link', 'set', 'lo', 'up');
    }
  }

  // The outside addresses (where the servers listen for the hosts) and the
  // networks of the hosts, space-separated.
  get outsides() { return this.hosts.map((h) => h.outside); }
  get nets() { return this.hosts.map((h) => h.net); }

  // [command, args] that run program with args on host i.
  wrap(i, program, args = []) {
    const h = this.hosts[i];
    const setup = `hostname ${h.name} && mount -t tmpfs -o size=64m,mode=1777 ${h.name} /tmp && ` +
      'mkdir /tmp/work && cd /tmp/work && exec "$@"';
    return ['ip', ['netns', 'exec', h.netns, 'unshare', '--mount', '--uts', '--', 'sh', '-c', setup,
      'sh', program, ...args]];
  }

  // Removes the hosts' namespaces (their links go with them).
  down() {
    for (const h of this.hosts) {
      if (h.up) spawnSync('ip', ['netns', 'del', h.netns]);
      h.up = false;
    }
  }
}
