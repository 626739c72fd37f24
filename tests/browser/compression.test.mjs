// Chromium offers permessage-deflate on every WebSocket: the interface takes
// it, and two users chat through it both ways, a room's history included,
// while /metrics counts what was inflated and what went out compressed.
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {System} from '../lib/system.mjs';
import {launch, login, pane, joinRoom, say, seeMessage} from '../lib/browser.mjs';

let sys, browser, ann, bob;

// Runs in every page before its own code: keeps the page's WebSockets, so
// that the test can read what each negotiated (WebSocket.extensions).
function keepSockets() {
  const Native = window.WebSocket;
  window.openedSockets = [];
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      window.openedSockets.push(this);
    }
  };
}

async function newUser(name, password) {
  const context = await browser.newContext();
  await context.addInitScript(keepSockets);
  const page = await context.newPage();
  await login(page, sys.url, name, password);
  return page;
}

// /metrics is on the interface's metrics address, not on sys.url.
async function metric(name) {
  return sys.metric(0, name);
}

before(async () => {
  sys = await new System().start();
  sys.chatctl(['user', 'add', 'ann', '--password-stdin'], 'ann-pass-1\n');
  sys.chatctl(['user', 'add', 'bob', '--password-stdin'], 'bob-pass-1\n');
  sys.chatctl(['room', 'add', 'Lobby']);
  browser = await launch();
  ann = await newUser('ann', 'ann-pass-1');
  bob = await newUser('bob', 'bob-pass-1');
});

after(async () => {
  await browser?.close();
  await sys?.stop();
});

test('Chromium negotiates permessage-deflate and chats through it both ways', async () => {
  for (const page of [ann, bob]) {
    const extensions = await page.evaluate(() => window.openedSockets.map((s) => s.extensions));
    assert.deepEqual(extensions,
      ['permessage-deflate; server_no_context_takeover; client_no_context_takeover']);
  }
  const inflated = await metric('chat_interface_messages_inflated_total');
  const deflated = await metric('chat_interface_frames_deflated_total');
  await joinRoom(ann, 'Lobby');
  await joinRoom(bob, 'Lobby');
  // Long enough to be compressed on the way out.
  const fromAnn = `from ann, long enough to be worth compressing: ${'la '.repeat(40)}end`;
  const fromBob = `from bob, as long and as repetitive: ${'do re mi '.repeat(15)}end`;
  await say(ann, 'Lobby', fromAnn);
  await seeMessage(bob, 'Lobby', fromAnn);
  await say(bob, 'Lobby', fromBob);
  await seeMessage(ann, 'Lobby', fromBob);

  // A third tab of bob's joins later: both come back in the room's history.
  const later = await bob.context().newPage();
  await later.goto(`${sys.url}/`);
  await later.waitForSelector('#connection.online');
  await joinRoom(later, 'Lobby');
  await seeMessage(later, 'Lobby', fromAnn);
  await seeMessage(later, 'Lobby', fromBob);
  assert.equal(await pane(later, 'Lobby').locator('.message .text', {hasText: fromAnn}).count(), 1);

  // Chromium compresses what it sends; the server compressed what it sent.
  assert.ok(await metric('chat_interface_messages_inflated_total') >= inflated + 2,
            'both messages came compressed');
  assert.ok(await metric('chat_interface_frames_deflated_total') >= deflated + 3,
            'each message went out compressed to the other user, and the history');
  assert.ok(await metric('chat_interface_upgrades_deflate_total') >= 3);
});
