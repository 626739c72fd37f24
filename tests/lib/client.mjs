// A chat client as a browser is one: it logs in through the form (csrftoken
// cookie and csrfmiddlewaretoken field), keeps the sessionid cookie, and
// opens the chat WebSocket with that cookie and the page's Origin. Every
// frame received is kept, in order, so that tests wait for what they expect
// (with a deadline) and then look at everything that came.
import WebSocket from 'ws';
import http from 'node:http';
import https from 'node:https';

function cookieValue(setCookies, name) {
  for (const c of setCookies) {
    const m = c.match(new RegExp(`^${name}=([^;]*)`));
    if (m) return m[1];
  }
  return null;
}

// The cookie name and value of name as set: over HTTPS the server names
// it with the __Host- prefix. [name, value], or null.
function namedCookie(setCookies, name) {
  for (const n of [`__Host-${name}`, name]) {
    const v = cookieValue(setCookies, n);
    if (v !== null) return [n, v];
  }
  return null;
}

// One HTTP(S) request, with the options fetch lacks: localAddress (a client
// of its own, 127.0.0.2 say, on loopback) and a server certificate of the
// test's own making. Resolves with {status, headers, body}.
export function request(url, {method = 'GET', headers = {}, body, localAddress} = {}) {
  const u = new URL(url);
  const lib = u.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.request(u, {method, headers, localAddress, rejectUnauthorized: false,
      agent: false}, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({status: res.statusCode, headers: res.headers,
        body: Buffer.concat(chunks).toString()}));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

// Logs in at baseUrl and returns the Cookie header a browser would send.
// With localAddress, the client speaks from that address.
export async function login(baseUrl, username, password, {localAddress} = {}) {
  const page = await request(`${baseUrl}/accounts/login/?next=/`, {localAddress});
  const csrf = namedCookie(page.headers['set-cookie'] || [], 'csrftoken');
  const field = page.body.match(/name="csrfmiddlewaretoken" value="([^"]+)"/);
  if (!csrf || !field) throw new Error(`login page of ${baseUrl}: no CSRF token (${page.status})`);
  const r = await request(`${baseUrl}/accounts/login/`, {
    method: 'POST',
    localAddress,
    headers: {'content-type': 'application/x-www-form-urlencoded', cookie: csrf.join('='),
      origin: baseUrl, referer: `${baseUrl}/accounts/login/`},
    body: new URLSearchParams({username, password, csrfmiddlewaretoken: field[1], next: '/'}).toString(),
  });
  const session = namedCookie(r.headers['set-cookie'] || [], 'sessionid');
  if (r.status !== 302 || !session) {
    throw Object.assign(new Error(`login of ${username}: status ${r.status}, no session`),
      {status: r.status});
  }
  return `${csrf.join('=')}; ${session.join('=')}`;
}

export function wsUrl(baseUrl) {
  return `${baseUrl.replace(/^http/, 'ws')}/chat/stream/`;
}

// Resolves once cond() is true, polling every few ms; rejects at the deadline.
export async function until(cond, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

// One WebSocket. frames holds {raw, data} for every text frame received.
// A test takes mark() before it acts and waits for frames from there on, so
// an earlier frame is never taken for the answer; request() does both.
export class Socket {
  constructor(name) {
    this.name = name;
    this.frames = [];
    this.waiters = new Set();
    this.closed = null; // {code, reason} once closed
  }

  // Opens the socket and waits for the first room list, which the server
  // sends right after accepting. Rejects if the socket closes first, or if
  // the handshake is refused: then error.status is the HTTP status.
  // With localAddress, the socket speaks from that address; origin (the
  // page's, baseUrl by default) goes in the Origin header.
  open(baseUrl, cookie, timeoutMs = 10000, {localAddress, origin = baseUrl} = {}) {
    this.baseUrl = baseUrl;
    const ws = new WebSocket(wsUrl(baseUrl), {headers: {cookie, origin}, localAddress,
      rejectUnauthorized: false});
    this.ws = ws;
    this.closed = null;
    const start = this.frames.length;
    // Only the socket opened last speaks for this client: an older one that
    // lingers (closing, or given up on) is ignored.
    ws.on('message', (buf) => {
      if (ws !== this.ws) return;
      const raw = buf.toString();
      let data;
      try { data = JSON.parse(raw); } catch { data = undefined; }
      this.frames.push({raw, data});
      this.onFrame?.(data, raw);
      for (const w of [...this.waiters]) w();
    });
    ws.on('close', (code, reason) => {
      if (ws !== this.ws) return;
      this.closed = {code, reason: reason.toString()};
      this.onClose?.(code);
      for (const w of [...this.waiters]) w();
    });
    ws.on('error', () => {}); // unheard, ws would throw it; the 'close' after it counts
    const ended = new Promise((resolve, reject) => {
      ws.once('unexpected-response', (req, res) => reject(Object.assign(
        new Error(`${this.name}: ${baseUrl} refused the handshake (${res.statusCode})`), {status: res.statusCode})));
      ws.once('close', (code) =>
        reject(new Error(`${this.name}: ${baseUrl} closed the socket (${code}) before the room list`)));
    });
    ended.catch(() => {});
    return Promise.race([this.waitFor((d) => d && Array.isArray(d.rooms), {from: start, timeoutMs}), ended])
      .catch((err) => { ws.terminate(); throw err; });
  }

  send(obj) { this.ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj)); }

  mark() { return this.frames.length; }

  // Resolves with the data of the first frame at index >= from matching pred.
  waitFor(pred, {from = 0, timeoutMs = 10000, raw = false} = {}) {
    return new Promise((resolve, reject) => {
      let i = from;
      const check = () => {
        for (; i < this.frames.length; i++) {
          const f = this.frames[i];
          if (pred(f.data, f.raw)) {
            cleanup();
            resolve(raw ? f.raw : f.data);
            return;
          }
        }
        if (this.closed && !this.reconnects) {
          cleanup();
          reject(new Error(`${this.name}: closed (${this.closed.code}) while waiting`));
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`${this.name}: timed out after ${timeoutMs} ms; last frames:\n` +
          this.frames.slice(-5).map((f) => f.raw).join('\n')));
      }, timeoutMs);
      const cleanup = () => { clearTimeout(timer); this.waiters.delete(check); };
      this.waiters.add(check);
      check();
    });
  }

  // Sends a command and resolves with the first frame after it matching pred.
  async request(obj, pred, opts = {}) {
    const from = this.mark();
    this.send(obj);
    return this.waitFor(pred, {...opts, from});
  }

  async join(room, extra = {}) {
    return this.request({command: 'join', room, ...extra},
      (d) => d && (d.join === String(room) || (d.error && String(d.room) === String(room))));
  }

  // Closes the socket; resolves as whenClosed() does.
  close() {
    this.reconnects = false;
    if (this.ws.readyState <= WebSocket.OPEN) this.ws.close();
    return this.whenClosed();
  }

  // Resolves with {code, reason} once the socket is closed, by either side.
  whenClosed() {
    if (this.closed) return Promise.resolve(this.closed);
    return new Promise((resolve) => this.ws.once('close', () => resolve(this.closed)));
  }
}

// A member of rooms that behaves like the page: it counts every message id
// it is shown per room (live or as history), and when its socket closes it
// reconnects, to the next of its URLs, and joins its rooms again with
// since = the last id it saw there.
export class Member extends Socket {
  constructor(name, urls, cookie) {
    super(name);
    this.urls = urls;
    this.urlIndex = 0;
    this.cookie = cookie;
    this.rooms = new Map(); // room id (string) -> {lastId, counts: Map id -> times shown}
    this.reconnects = true;
    this.reconnections = 0;
    this.joinsDone = 0;
    this.ownTexts = new Set(); // texts of this socket's messages it got back (own:true)
    this.errors = [];
    this.onFrame = (d) => this.see(d);
    this.onClose = () => { if (this.reconnects && !this.reconnecting) this.reconnect(); };
  }

  see(d) {
    if (!d) return;
    if (d.join !== undefined && Array.isArray(d.history)) {
      for (const m of d.history) this.count(d.join, m);
      this.joinsDone++;
    } else if (d.history !== undefined && Array.isArray(d.messages)) {
      for (const m of d.messages) this.count(d.history, m);
    } else if (d.msg_type === 0 && d.id !== undefined) {
      this.count(d.room, d);
      if (d.own) this.ownTexts.add(d.message);
    } else if (d.error !== undefined) {
      this.errors.push(d);
    }
  }

  count(room, m) {
    const r = this.rooms.get(String(room));
    if (!r) return;
    r.counts.set(m.id, (r.counts.get(m.id) || 0) + 1);
    if (m.id > r.lastId) r.lastId = m.id;
    r.order.push(m.id);
  }

  async start() {
    await this.open(this.urls[this.urlIndex], this.cookie);
  }

  async enter(room) {
    this.rooms.set(String(room), {lastId: 0, counts: new Map(), order: []});
    const r = await this.join(room);
    if (r.error) throw new Error(`${this.name}: join ${room}: ${r.error}`);
    return r;
  }

  // Reconnects with a short bounded backoff, as the page does, trying the
  // URLs in turn, and rejoins every room with since.
  async reconnect() {
    this.reconnecting = true;
    try {
      await this.reconnectNow();
    } finally {
      this.reconnecting = false;
    }
    // Closed again while rejoining: start over.
    if (this.reconnects && this.closed) this.reconnect();
  }

  async reconnectNow() {
    for (let attempt = 0; this.reconnects && attempt < 200; attempt++) {
      this.urlIndex = (this.urlIndex + 1) % this.urls.length;
      try {
        await this.open(this.urls[this.urlIndex], this.cookie, 5000);
      } catch {
        await new Promise((r) => setTimeout(r, Math.min(50 * (attempt + 1), 500)));
        continue;
      }
      this.reconnections++;
      await this.rejoin();
      return;
    }
  }

  // Joins every room again with since = the last id seen there, and waits
  // for the replies (or gives up on them after a while).
  async rejoin() {
    const from = this.mark();
    const joins = [];
    for (const [room, r] of this.rooms) {
      this.send({command: 'join', room: Number(room), since: r.lastId});
      joins.push(this.waitFor((d) => d && d.join === room, {from}).catch(() => {}));
    }
    await Promise.all(joins);
  }

  // Ids shown in room more than once, ids of want never shown, ids shown
  // that are not in want, and whether ids came in increasing order.
  check(room, want) {
    const r = this.rooms.get(String(room));
    const wanted = new Set(want);
    const twice = [...r.counts].filter(([, n]) => n > 1).map(([id]) => id);
    const missing = want.filter((id) => !r.counts.has(id));
    const unknown = [...r.counts.keys()].filter((id) => !wanted.has(id));
    const increasing = r.order.every((id, i) => i === 0 || id > r.order[i - 1]);
    return {twice, missing, unknown, increasing};
  }

  seen(room) { return this.rooms.get(String(room)).counts.size; }
}

// A member that types like a person in the page: every message gets a
// client_id and stays in an outbox until its own copy comes back (live, or
// in the history of a join); it is sent again, with the same client_id,
// after a reconnect, after {"resync":true}, and a moment after a
// SERVER_BUSY that names it. It counts what it is shown live apart from
// history: a message shown live twice is a duplicate, one shown live and
// again in a join's history is the overlap the page shows once. Like the
// page it keeps within its socket's budget: at most PACE_FRAMES frames per
// PACE_MS, the rest queued in order, each text once; and after a
// RATE_LIMITED of the budget (no command named: what followed was dropped)
// it sends nothing for PACE_MS, then catches up as after a resync.
const PACE_FRAMES = 20;
const PACE_MS = 1500;

export class Typist extends Member {
  constructor(name, urls, cookie) {
    super(name, urls, cookie);
    this.outbox = new Map(); // client_id -> {room, text, firstSent, sends, ackedAt}
    this.byText = new Map(); // text -> client_id
    this.live = new Map(); // room -> Map id -> times shown live
    this.seq = 0;
    this.resyncs = 0;
    this.limited = 0;
    this.pace = {ws: null, queue: [], since: 0, sent: 0, timer: null};
    const see = this.onFrame;
    this.onFrame = (d) => {
      see(d);
      this.track(d);
    };
  }

  type(room, text) {
    const id = `${this.name}-${++this.seq}`;
    this.outbox.set(id, {room: Number(room), text, firstSent: Date.now(), sends: 0, ackedAt: 0});
    this.byText.set(text, id);
    this.post(id);
    return id;
  }

  post(id) {
    const e = this.outbox.get(id);
    if (!e || e.ackedAt || !this.ws || this.ws.readyState !== 1) return;
    e.sends++;
    this.send({command: 'send', room: e.room, message: e.text, client_id: id});
  }

  send(obj) {
    const p = this.pace;
    if (p.ws !== this.ws) {
      clearTimeout(p.timer);
      Object.assign(p, {ws: this.ws, queue: [], since: 0, sent: 0, timer: null});
    }
    const text = typeof obj === 'string' ? obj : JSON.stringify(obj);
    if (!p.queue.includes(text)) p.queue.push(text);
    this.drain();
  }

  drain() {
    const p = this.pace;
    const now = Date.now();
    if (now - p.since >= PACE_MS) {
      p.since = now;
      p.sent = 0;
    }
    while (p.queue.length && p.sent < PACE_FRAMES && p.ws.readyState === WebSocket.OPEN) {
      p.ws.send(p.queue.shift());
      p.sent++;
    }
    if (p.queue.length && !p.timer && p.ws.readyState === WebSocket.OPEN) {
      p.timer = setTimeout(() => {
        p.timer = null;
        this.drain();
      }, p.since + PACE_MS - now);
    }
  }

  rateLimited() {
    const p = this.pace;
    const ws = this.ws;
    if (p.ws !== ws) return;
    this.limited++;
    clearTimeout(p.timer);
    p.since = Date.now();
    p.sent = PACE_FRAMES;
    p.timer = setTimeout(() => {
      p.timer = null;
      this.drain();
      if (this.ws === ws && ws.readyState === WebSocket.OPEN) this.catchUp();
    }, PACE_MS);
  }

  ack(text) {
    const e = this.outbox.get(this.byText.get(text));
    if (e && !e.ackedAt) e.ackedAt = Date.now();
  }

  pending() {
    return [...this.outbox.values()].filter((e) => !e.ackedAt).length;
  }

  track(d) {
    if (!d) return;
    if (d.msg_type === 0 && d.id !== undefined) {
      const m = this.live.get(String(d.room)) || new Map();
      this.live.set(String(d.room), m);
      m.set(d.id, (m.get(d.id) || 0) + 1);
      if (d.own) this.ack(d.message);
    } else if (d.join !== undefined && Array.isArray(d.history)) {
      for (const m of d.history) if (m.username === this.name) this.ack(m.message);
    } else if (d.error === 'SERVER_BUSY' && d.client_id) {
      this.busy = (this.busy || 0) + 1;
      setTimeout(() => this.post(d.client_id), 200);
    } else if (d.error === 'RATE_LIMITED' && d.command === undefined) {
      this.rateLimited();
    } else if (d.resync === true) {
      this.resyncs++;
      this.catchUp();
    }
  }

  async catchUp() {
    await this.rejoin();
    for (const id of this.outbox.keys()) this.post(id);
  }

  async reconnectNow() {
    await super.reconnectNow();
    for (const id of this.outbox.keys()) this.post(id);
  }

  // Of the ids want of room: those never shown, those shown live twice,
  // and ids shown that are not in want.
  checkOnce(room, want) {
    const r = this.rooms.get(String(room));
    const wanted = new Set(want);
    const live = this.live.get(String(room)) || new Map();
    return {
      missing: want.filter((id) => !r.counts.has(id)),
      liveTwice: [...live].filter(([, n]) => n > 1).map(([id]) => id),
      unknown: [...r.counts.keys()].filter((id) => !wanted.has(id)),
    };
  }
}
