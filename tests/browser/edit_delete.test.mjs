// Editing and deleting messages, across two interface processes: the author
// changes its own, staff change anyone's, others are refused by the server,
// and every open pane (two tabs of one user on different interfaces) shows
// the change at once.
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {System} from '../lib/system.mjs';
import {launch, login, pane, joinRoom, say, seeMessage} from '../lib/browser.mjs';
import {Socket, login as loginCookie} from '../lib/client.mjs';

let sys, browser, ann1, ann2, bob, sue;

before(async () => {
  sys = await new System({interfaces: 2, separatePorts: true}).start();
  sys.chatctl(['user', 'add', 'ann', '--password-stdin'], 'ann-pass-1\n');
  sys.chatctl(['user', 'add', 'bob', '--password-stdin'], 'bob-pass-1\n');
  sys.chatctl(['user', 'add', 'sue', '--staff', '--password-stdin'], 'sue-pass-1\n');
  sys.chatctl(['room', 'add', 'Lobby']);
  browser = await launch();
  const annContext = await browser.newContext();
  ann1 = await annContext.newPage();
  await login(ann1, sys.urls[0], 'ann', 'ann-pass-1');
  ann2 = await annContext.newPage(); // the same session, on the other interface
  await ann2.goto(`${sys.urls[1]}/`);
  await ann2.waitForSelector('#connection.online');
  bob = await (await browser.newContext()).newPage();
  await login(bob, sys.urls[1], 'bob', 'bob-pass-1');
  sue = await (await browser.newContext()).newPage();
  await login(sue, sys.urls[0], 'sue', 'sue-pass-1');
  for (const page of [ann1, ann2, bob, sue]) await joinRoom(page, 'Lobby');
});

after(async () => {
  await browser?.close();
  await sys?.stop();
});

function message(page, text) {
  return pane(page, 'Lobby').locator('.message', {has: page.locator('.text', {hasText: text})});
}

async function clickAction(page, text, action) {
  const li = message(page, text);
  await li.hover();
  await li.locator(action).click();
}

async function gone(page, text) {
  await pane(page, 'Lobby').locator('.message .text', {hasText: text}).waitFor({state: 'detached'});
}

test('the author edits a message: every pane shows the new text, marked edited', async () => {
  await say(ann1, 'Lobby', 'a typpo here');
  for (const page of [ann1, ann2, bob, sue]) await seeMessage(page, 'Lobby', 'a typpo here');
  await clickAction(ann1, 'a typpo here', '.msg-edit');
  const field = pane(ann1, 'Lobby').locator('.edit-text');
  await field.fill('a typo fixed');
  await field.press('Enter');
  for (const page of [ann1, ann2, bob, sue]) {
    await seeMessage(page, 'Lobby', 'a typo fixed');
    await message(page, 'a typo fixed').locator('.edited').waitFor();
    await gone(page, 'a typpo here');
  }
});

test('others get no edit or delete buttons on messages not theirs; staff get them', async () => {
  await say(bob, 'Lobby', 'bob was here');
  for (const page of [ann1, sue]) await seeMessage(page, 'Lobby', 'bob was here');
  assert.equal(await message(ann1, 'bob was here').locator('.msg-edit, .msg-delete').count(), 0);
  assert.equal(await message(bob, 'a typo fixed').locator('.msg-edit, .msg-delete').count(), 0);
  assert.equal(await message(sue, 'bob was here').locator('.msg-delete').count(), 1);
});

test('staff delete anyone\'s message: it leaves every pane, and history', async () => {
  await clickAction(sue, 'bob was here', '.msg-delete');
  for (const page of [ann1, ann2, bob, sue]) await gone(page, 'bob was here');
  await ann1.reload();
  await ann1.waitForSelector('#connection.online');
  await joinRoom(ann1, 'Lobby');
  await seeMessage(ann1, 'Lobby', 'a typo fixed');
  await message(ann1, 'a typo fixed').locator('.edited').waitFor();
  assert.equal(await pane(ann1, 'Lobby').locator('.message .text', {hasText: 'bob was here'}).count(), 0);
});

test('the author deletes its own message in every pane', async () => {
  await clickAction(ann2, 'a typo fixed', '.msg-delete');
  for (const page of [ann1, ann2, bob, sue]) await gone(page, 'a typo fixed');
});

test('the server refuses edits and deletes of other people\'s messages', async () => {
  const bobWs = new Socket('bob');
  await bobWs.open(sys.urls[0], await loginCookie(sys.urls[0], 'bob', 'bob-pass-1'));
  const joined = await bobWs.request({command: 'join', room: 1}, (m) => m.join === '1');
  const from = bobWs.mark();
  await say(ann2, 'Lobby', 'ann only');
  const sent = await bobWs.waitFor((m) => m.message === 'ann only', {from});
  for (const command of ['edit', 'delete']) {
    const reply = await bobWs.request({command, room: 1, id: sent.id, message: 'mine'},
      (m) => m.error !== undefined);
    assert.deepEqual(reply, {error: 'NOT_ALLOWED', room: '1', command});
  }
  const missing = await bobWs.request({command: 'delete', room: 1, id: sent.id + 1000},
    (m) => m.error !== undefined);
  assert.equal(missing.error, 'MESSAGE_INVALID');
  assert.ok(Array.isArray(joined.history));
  await seeMessage(ann1, 'Lobby', 'ann only');
  await bobWs.close();
});
