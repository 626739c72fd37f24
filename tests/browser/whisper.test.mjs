// Whispers across two interface processes: opened from a member's name,
// delivered to every open tab of both users, kept for a user who was away.
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {System} from '../lib/system.mjs';
import {launch, login, pane, joinRoom} from '../lib/browser.mjs';
import {Socket, login as loginCookie} from '../lib/client.mjs';

let sys, browser, ann, bobContext, bob1, bob2;

before(async () => {
  sys = await new System({interfaces: 2, separatePorts: true}).start();
  sys.chatctl(['user', 'add', 'ann', '--password-stdin'], 'ann-pass-1\n');
  sys.chatctl(['user', 'add', 'bob', '--password-stdin'], 'bob-pass-1\n');
  sys.chatctl(['user', 'add', 'carl', '--password-stdin'], 'carl-pass-1\n');
  sys.chatctl(['room', 'add', 'Lobby']);
  browser = await launch();
  ann = await (await browser.newContext()).newPage();
  await login(ann, sys.urls[0], 'ann', 'ann-pass-1');
  bobContext = await browser.newContext();
  bob1 = await bobContext.newPage();
  await login(bob1, sys.urls[0], 'bob', 'bob-pass-1');
  bob2 = await bobContext.newPage();
  await bob2.goto(`${sys.urls[1]}/`);
  await bob2.waitForSelector('#connection.online');
  for (const page of [ann, bob1]) await joinRoom(page, 'Lobby');
});

after(async () => {
  await browser?.close();
  await sys?.stop();
});

function whisperText(page, withName, text) {
  return pane(page, `Whispers with ${withName}`).locator('.message .text', {hasText: text});
}

async function whisper(page, toName, text) {
  const p = pane(page, `Whispers with ${toName}`);
  await p.locator('.send-text').fill(text);
  await p.locator('.send-text').press('Enter');
}

test('a whisper opened from a member name reaches every tab of both users', async () => {
  await pane(ann, 'Lobby').locator('.member[data-username="bob"]').click();
  await pane(ann, 'Whispers with bob').waitFor();
  await whisper(ann, 'bob', 'just between us');
  await whisperText(ann, 'bob', 'just between us').waitFor();
  await whisperText(bob1, 'ann', 'just between us').waitFor(); // same interface
  await whisperText(bob2, 'ann', 'just between us').waitFor(); // the other one
  // bob answers from the other interface; ann's pane shows it, as do both of bob's.
  await whisper(bob2, 'ann', 'agreed');
  for (const [page, other] of [[ann, 'bob'], [bob1, 'ann'], [bob2, 'ann']]) {
    await whisperText(page, other, 'agreed').waitFor();
  }
  assert.equal(await whisperText(ann, 'bob', 'just between us').count(), 1);
  // Nothing of it in the room.
  assert.equal(await pane(bob1, 'Lobby').locator('.message .text', {hasText: 'agreed'}).count(), 0);
});

test('whispers sent while away are shown on coming back', async () => {
  await bob1.close();
  await bob2.close();
  await whisper(ann, 'bob', 'while you were away');
  await whisperText(ann, 'bob', 'while you were away').waitFor();
  const back = await bobContext.newPage();
  await back.goto(`${sys.urls[1]}/`);
  await back.waitForSelector('#connection.online');
  await whisperText(back, 'ann', 'while you were away').waitFor();
  await whisperText(back, 'ann', 'agreed').waitFor();
});

test('the whispers command answers those after an id; unknown and inactive users are refused', async () => {
  const cookie = await loginCookie(sys.urls[1], 'carl', 'carl-pass-1');
  const carl = new Socket('carl');
  await carl.open(sys.urls[1], cookie);
  const first = await carl.request({command: 'whisper', to: 'ann', message: 'one'},
    (m) => m.whisper !== undefined);
  const second = await carl.request({command: 'whisper', to: 'ann', message: 'two'},
    (m) => m.whisper !== undefined);
  assert.ok(second.whisper > first.whisper);
  assert.deepEqual(Object.keys(second), ['whisper', 'from', 'to', 'message', 'ts']);
  const since = await carl.request({command: 'whispers', since: first.whisper},
    (m) => m.whispers !== undefined);
  assert.deepEqual(since.whispers, [second]);
  const none = await carl.request({command: 'whisper', to: 'nobody', message: 'x'},
    (m) => m.error !== undefined);
  assert.deepEqual(none, {error: 'USER_INVALID', command: 'whisper'});
  sys.chatctl(['user', 'deactivate', 'bob']);
  const inactive = await carl.request({command: 'whisper', to: 'bob', message: 'x'},
    (m) => m.error !== undefined);
  assert.equal(inactive.error, 'USER_INVALID');
  await whisperText(ann, 'carl', 'two').waitFor();
  await carl.close();
});
