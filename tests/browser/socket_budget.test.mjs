// The page over its socket's budget of frames at the interface (here 2 a
// second, bursts of 4): the interface drops what follows the first refused
// frame and says RATE_LIMITED once; the page then sends nothing for a
// moment and asks again as after a resync, which sends what is still
// pending. Every message typed in a hurry is shown once and stored once,
// none is left "sending…", and the socket is never closed for it.
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {System} from '../lib/system.mjs';
import {launch, login, joinRoom, pane} from '../lib/browser.mjs';

const TYPED = 12;
let sys, browser, page;

before(async () => {
  sys = await new System({
    interfaceEnv: {CHAT_SOCKET_RATE: '2', CHAT_SOCKET_BURST: '4'},
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

test('a page over its socket budget pauses and sends again what was dropped', async () => {
  const input = pane(page, 'Lobby').locator('.send-text');
  for (let i = 0; i < TYPED; i++) {
    await input.fill(`hurry ${i}`);
    await input.press('Enter');
  }
  await page.locator('.notice-box', {hasText: 'You are sending too fast'}).first().waitFor();
  await page.waitForFunction((n) => document.querySelectorAll('.message.own').length >= n &&
    document.querySelectorAll('.message.pending').length === 0, TYPED, {timeout: 30000});
  const texts = await pane(page, 'Lobby').locator('.message .text').allTextContents();
  for (let i = 0; i < TYPED; i++) {
    assert.equal(texts.filter((t) => t === `hurry ${i}`).length, 1, `hurry ${i} shown once`);
  }
  assert.equal(sys.sql("SELECT count(*) FROM messages WHERE body LIKE 'hurry %'"), String(TYPED));
  assert.equal(sys.sql("SELECT count(DISTINCT body) FROM messages WHERE body LIKE 'hurry %'"),
    String(TYPED));
  assert.ok(await sys.metric(0, 'chat_interface_rate_limited_total') > 0, 'the budget was passed');
  assert.equal(await sys.metric(0, 'chat_interface_closed_rate_total'), 0);
  assert.equal(await page.locator('#connection.online').count(), 1);
});
