// The interface process a page is connected to dies and comes back: the page
// reconnects by itself and shows, once each, the messages sent meanwhile;
// and a message typed into a page whose interface froze, and then died
// before it read the message, is shown as pending, kept, and sent again
// after the reconnect: it appears once, to the person and to the room,
// with no action by the person. So do an edit and a whisper.
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {System} from '../lib/system.mjs';
import {launch, login, pane, joinRoom, say, seeMessage} from '../lib/browser.mjs';

let sys, browser, annPage, bobPage;

before(async () => {
  sys = await new System({interfaces: 2, separatePorts: true}).start();
  sys.chatctl(['user', 'add', 'ann', '--password-stdin'], 'ann-pass-1\n');
  sys.chatctl(['user', 'add', 'bob', '--password-stdin'], 'bob-pass-1\n');
  sys.chatctl(['room', 'add', 'Lobby']);
  browser = await launch();
  annPage = await (await browser.newContext()).newPage();
  bobPage = await (await browser.newContext()).newPage();
  await login(annPage, sys.urls[0], 'ann', 'ann-pass-1');  // on interface 0
  await login(bobPage, sys.urls[1], 'bob', 'bob-pass-1');  // on interface 1
});

after(async () => {
  await browser?.close();
  await sys?.stop();
});

test('the page reconnects after its interface is killed and shows what it missed, once', async () => {
  await joinRoom(annPage, 'Lobby');
  await joinRoom(bobPage, 'Lobby');
  await say(bobPage, 'Lobby', 'before the crash');
  await seeMessage(annPage, 'Lobby', 'before the crash');

  await sys.killInterface(0);
  await annPage.waitForSelector('#connection:not(.online)');
  for (const text of ['missed one', 'missed two', 'missed three']) {
    await say(bobPage, 'Lobby', text);
    await seeMessage(bobPage, 'Lobby', text);
  }
  await sys.startInterface(0);

  await annPage.waitForSelector('#connection.online', {timeout: 30000});
  for (const text of ['missed one', 'missed two', 'missed three']) {
    await seeMessage(annPage, 'Lobby', text);
  }
  // Once each: the history after `since` does not repeat what was shown.
  for (const text of ['before the crash', 'missed one', 'missed two', 'missed three']) {
    const shown = pane(annPage, 'Lobby').locator('.message .text', {hasText: text});
    assert.equal(await shown.count(), 1, `"${text}" shown ${await shown.count()} times`);
  }
  // And the reconnected socket is live again, both ways.
  await say(annPage, 'Lobby', 'back again');
  await seeMessage(bobPage, 'Lobby', 'back again');
});

test('a message typed just before the interface dies is sent again after the reconnect, once', async () => {
  // Both are in the Lobby since the test above.

  // The interface stops reading: the message goes into its socket and no
  // further. The page shows it as pending.
  const text = 'typed as the server froze';
  sys.interfaces[0].kill('SIGSTOP');
  await say(annPage, 'Lobby', text);
  const pending = pane(annPage, 'Lobby').locator('.message.pending .text', {hasText: text});
  await pending.waitFor();
  assert.equal(await pane(annPage, 'Lobby').locator('.send-text').inputValue(), '');

  await sys.killInterface(0);
  await annPage.waitForSelector('#connection:not(.online)');
  await sys.startInterface(0);
  await annPage.waitForSelector('#connection.online', {timeout: 30000});

  await seeMessage(bobPage, 'Lobby', text);
  await pending.waitFor({state: 'detached', timeout: 30000});
  for (const page of [annPage, bobPage]) {
    const shown = pane(page, 'Lobby').locator('.message .text', {hasText: text});
    assert.equal(await shown.count(), 1, `"${text}" shown ${await shown.count()} times`);
  }
  assert.equal(sys.sql(`SELECT count(*) FROM messages WHERE body = '${text}'`), '1');
});

test('an edit and a whisper made as the interface froze are done once after the reconnect', async () => {
  // Both are in the Lobby since the tests above.
  const lobby = (page) => pane(page, 'Lobby');
  await say(annPage, 'Lobby', 'a draft to fix');
  await seeMessage(bobPage, 'Lobby', 'a draft to fix');
  await lobby(annPage).locator('.member[data-username="bob"]').click();
  const whispers = (page, other) => pane(page, `Whispers with ${other}`);
  await whispers(annPage, 'bob').waitFor();

  sys.interfaces[0].kill('SIGSTOP');
  const line = lobby(annPage).locator('.message', {has: annPage.locator('.text', {hasText: 'a draft to fix'})});
  await line.hover();
  await line.locator('.msg-edit').click();
  await lobby(annPage).locator('.edit-text').fill('a draft fixed');
  await lobby(annPage).locator('.edit-text').press('Enter');
  const pendingEdit = lobby(annPage).locator('.message.pending .text', {hasText: 'a draft fixed'});
  await pendingEdit.waitFor();
  await whispers(annPage, 'bob').locator('.send-text').fill('whispered as it froze');
  await whispers(annPage, 'bob').locator('.send-text').press('Enter');
  const pendingWhisper = whispers(annPage, 'bob').locator('.message.pending .text', {hasText: 'whispered as it froze'});
  await pendingWhisper.waitFor();

  await sys.killInterface(0);
  await annPage.waitForSelector('#connection:not(.online)');
  await sys.startInterface(0);
  await annPage.waitForSelector('#connection.online', {timeout: 30000});

  await seeMessage(bobPage, 'Lobby', 'a draft fixed');
  await whispers(bobPage, 'ann').locator('.message .text', {hasText: 'whispered as it froze'}).waitFor();
  await pendingEdit.waitFor({state: 'detached', timeout: 30000});
  await pendingWhisper.waitFor({state: 'detached', timeout: 30000});
  for (const [page, other] of [[annPage, 'bob'], [bobPage, 'ann']]) {
    const fixed = lobby(page).locator('.message', {has: page.locator('.text', {hasText: 'a draft fixed'})});
    assert.equal(await fixed.count(), 1);
    assert.equal(await fixed.locator('.edited').count(), 1);
    assert.equal(await lobby(page).locator('.message .text', {hasText: 'a draft to fix'}).count(), 0);
    assert.equal(await lobby(page).locator('.message.pending').count(), 0);
    const shown = whispers(page, other).locator('.message .text', {hasText: 'whispered as it froze'});
    assert.equal(await shown.count(), 1, `the whisper is shown ${await shown.count()} times`);
  }
  assert.equal(sys.sql("SELECT count(*) FROM messages WHERE body = 'a draft fixed'"), '1');
  assert.equal(sys.sql("SELECT count(*) FROM whispers WHERE body = 'whispered as it froze'"), '1');
});
