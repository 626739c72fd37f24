// The page's outbox matches each answer to the very entry it is about, by
// its client_id: an error refuses the message it names, and a message that
// waits in the same room (here, over the rate limit, to be sent again in a
// moment) is left waiting, then stored and shown once.
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {System} from '../lib/system.mjs';
import {launch, login, pane, joinRoom, say} from '../lib/browser.mjs';

let sys, browser, page;

before(async () => {
  sys = await new System({
    workerEnv: {CHAT_RATE_MESSAGES: '1', CHAT_RATE_BURST: '1', CHAT_MESSAGE_MAX: '24'},
  }).start();
  sys.chatctl(['user', 'add', 'ann', '--password-stdin'], 'ann-pass-1\n');
  sys.chatctl(['room', 'add', 'Lobby']);
  browser = await launch();
  page = await (await browser.newContext()).newPage();
  await login(page, sys.url, 'ann', 'ann-pass-1');
  await joinRoom(page, 'Lobby');
});

after(async () => {
  await browser?.close();
  await sys?.stop();
});

test('an error marks the message it names, not an older one waiting in the room', async () => {
  const lobby = pane(page, 'Lobby');
  const line = (text) => lobby.locator('.message', {has: page.locator('.text', {hasText: text})});
  // One token a second: the first is stored, the second refused for now
  // (kept, sent again in a moment), the third too long for good.
  await say(page, 'Lobby', 'first');
  await say(page, 'Lobby', 'second');
  await say(page, 'Lobby', 'third, far too long for it');
  await line('third, far too long for it').and(lobby.locator('.failed')).waitFor();
  assert.equal(await line('second').and(lobby.locator('.failed')).count(), 0, 'the waiting message was refused');

  await lobby.locator('.message:not(.pending) .text', {hasText: 'second'}).waitFor({timeout: 15000});
  for (const text of ['first', 'second']) {
    assert.equal(await line(text).count(), 1, `"${text}" shown ${await line(text).count()} times`);
    assert.equal(sys.sql(`SELECT count(*) FROM messages WHERE body = '${text}'`), '1');
  }
  assert.equal(await line('third, far too long for it').count(), 1);
  assert.equal(sys.sql("SELECT count(*) FROM messages WHERE body LIKE 'third%'"), '0');
});
