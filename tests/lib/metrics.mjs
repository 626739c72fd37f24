// Scraping a process's Prometheus endpoint (CHAT_METRICS_LISTEN) in tests.
import assert from 'node:assert/strict';

// The samples of one scrape of the endpoint on port: "name{labels}" -> value.
export async function scrape(port) {
  const r = await fetch(`http://127.0.0.1:${port}/metrics`);
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  const samples = new Map();
  for (const line of (await r.text()).split('\n')) {
    const m = line.match(/^([a-z_]+(?:\{[^}]*\})?) (\S+)$/);
    if (m) samples.set(m[1], Number(m[2]));
  }
  return samples;
}

// How much key moved from samples a to samples b.
export const moved = (a, b, key) => (b.get(key) ?? 0) - (a.get(key) ?? 0);

// Polls the endpoint until pred(samples) holds (a worker publishes its
// counts after each batch, and each second when idle).
export async function scrapeUntil(port, pred, what) {
  const deadline = Date.now() + 10000;
  for (;;) {
    const s = await scrape(port);
    if (pred(s)) return s;
    if (Date.now() > deadline) throw new Error(`metrics never showed ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
