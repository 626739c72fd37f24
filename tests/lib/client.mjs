// A chat client without a browser: logs in through the real form with fetch
// and talks to /chat/stream/ with the ws package, for tests that need many
// sockets or exact frames. Every wait is bounded.
import WebSocket from 'ws';

// Logs in as a browser would; resolves to the Cookie header to send after.
export async function loginCookie(baseUrl, username, password) {
  const page = await fetch(`${baseUrl}/accounts/login/`, {redirect: 'manual'});
  const csrf = /csrftoken=([^;]+)/.exec(page.headers.getSetCookie().join('\n'))[1];
  const body = new URLSearchParams({username, password, next: '/', csrfmiddlewaretoken: csrf});
  const r = await fetch(`${baseUrl}/accounts/login/`, {
    method: 'POST', body, redirect: 'manual',
    headers: {cookie: `csrftoken=${csrf}`, 'content-type': 'application/x-www-form-urlencoded'},
  });
  const cookies = r.headers.getSetCookie().join('\n');
  const session = /sessionid=([^;]+)/.exec(cookies);
  if (r.status !== 302 || !session) throw new Error(`login of ${username}: ${r.status}`);
  const token = /csrftoken=([^;]+)/.exec(cookies)?.[1] ?? csrf;
  return `csrftoken=${token}; sessionid=${session[1]}`;
}

export class Client {
  // Resolves once the socket is open, or rejects with the HTTP status of a
  // refused handshake (error.status).
  static open(baseUrl, cookie) {
    const c = new Client();
    c.received = [];
    c.waiters = [];
    c.ws = new WebSocket(`${baseUrl.replace(/^http/, 'ws')}/chat/stream/`,
      {headers: {cookie, origin: baseUrl}});
    c.closed = new Promise((resolve) => c.ws.on('close', (code) => resolve(code)));
    c.ws.on('message', (data) => {
      c.received.push(JSON.parse(String(data)));
      c.wake();
    });
    return new Promise((resolve, reject) => {
      c.ws.once('open', () => resolve(c));
      c.ws.once('unexpected-response', (req, res) => {
        const e = new Error(`handshake refused: ${res.statusCode}`);
        e.status = res.statusCode;
        reject(e);
      });
      c.ws.once('error', reject);
    });
  }

  send(obj) {
    this.ws.send(JSON.stringify(obj));
  }

  wake() {
    for (const w of [...this.waiters]) w();
  }

  // Resolves with (and consumes) the first unread frame for which pred is
  // true; rejects after timeoutMs, naming what did come.
  next(pred, timeoutMs = 10000, what = String(pred)) {
    return new Promise((resolve, reject) => {
      const look = () => {
        const i = this.received.findIndex(pred);
        if (i < 0) return false;
        const [m] = this.received.splice(i, 1);
        done();
        resolve(m);
        return true;
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no frame ${what} in ${timeoutMs} ms; got ${JSON.stringify(this.received)}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== look);
      };
      if (!look()) this.waiters.push(look);
    });
  }

  // Sends a command and resolves with the first frame pred accepts.
  async ask(obj, pred, timeoutMs) {
    const p = this.next(pred, timeoutMs, JSON.stringify(obj));
    this.send(obj);
    return p;
  }

  // Whether an unread frame satisfies pred now.
  has(pred) {
    return this.received.some(pred);
  }

  close() {
    this.ws.close();
    return this.closed;
  }
}
