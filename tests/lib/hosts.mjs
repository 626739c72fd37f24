// Simulated hosts for system tests. A host is a network namespace of its own,
// linked to the test's by a veth pair on a /30 of 198.18.0.0/15 (the range
// kept for benchmarks: no real network uses it): the test's side of the link
// is `outside` (where the servers of "host C", PostgreSQL and Redis, listen
// for it), the host's side `inside` (where its interfaces listen). Every
// process of a host also runs in a mount namespace of its own, with a
// hostname of its own and a fresh tmpfs over /tmp (its working folder is
// /tmp/work): a file, or a file lock, that a process of one host makes is
// nowhere for the processes of another. Only the folders the test names
// (the build and the source tree, when they are under /tmp) are bound back. Needs root (CI runs as root): ip
// netns, unshare and mount.
import {spawnSync} from 'node:child_process';
import path from 'node:path';

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
  // keep: folders the hosts' programs need (the build, the web root); those
  // under /tmp stay visible through the host's fresh /tmp.
  constructor(n, keep = []) {
    this.keep = keep.map((d) => path.resolve(d)).filter((d) => d.startsWith('/tmp/'))
      .filter((d, _, all) => !all.some((o) => o !== d && d.startsWith(`${o}/`)));
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
    // The old /tmp is held at /mnt while the kept folders are bound back.
    const quote = (s) => `'${s.replace(/'/g, "'\\''")}'`;
    const keep = this.keep.map((d) =>
      `mkdir -p ${quote(d)} && mount --bind ${quote(`/mnt${d.slice(4)}`)} ${quote(d)} && `).join('');
    const setup = `hostname ${h.name} && mount --bind /tmp /mnt && ` +
      `mount -t tmpfs -o size=64m,mode=1777 ${h.name} /tmp && ${keep}umount /mnt && ` +
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
