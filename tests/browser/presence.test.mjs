// The member list of a room, live, across two interface processes: a user
// with two tabs counts once, and is shown as gone only when the last tab
// has left, or when the interface process holding it is killed.
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {System} from '../lib/system.mjs';
import {launch, login, pane, joinRoom, say, seeMessage} from '../lib/browser.mjs';

let sys, browser, annContext, bob;

before(async () => {
  // A short heartbeat, so that a killed interface is found dead quickly.
  sys = await new System({interfaces: 2, separatePorts: true,
                          interfaceEnv: {CHAT_HEARTBEAT_TTL_MS: '1000'}}).start();
  sys.chatctl(['user', 'add', 'ann', '--password-stdin'], 'ann-pass-1\n');
  sys.chatctl(['user', 'add', 'bob', '--password-stdin'], 'bob-pass-1\n');
  sys.chatctl(['room', 'add', 'Lobby']);
  browser = await launch();
  annContext = await browser.newContext();
  bob = await (await browser.newContext()).newPage();
  await login(bob, sys.urls[1], 'bob', 'bob-pass-1');
  await joinRoom(bob, 'Lobby');
});

after(async () => {
  await browser?.close();
  await sys?.stop();
});

function member(page, name) {
  return pane(page, 'Lobby').locator(`.members .member[data-username="${name}"]`);
}

test('two tabs of one user count once, and leave only with the last', async () => {
  await member(bob, 'bob').waitFor();
  const ann1 = await annContext.newPage();
  await login(ann1, sys.urls[0], 'ann', 'ann-pass-1');
  await joinRoom(ann1, 'Lobby');
  await member(bob, 'ann').waitFor();
  await member(ann1, 'bob').waitFor(); // the join reply lists who is there
  await member(ann1, 'ann').waitFor();

  const ann2 = await annContext.newPage();
  await ann2.goto(`${sys.urls[1]}/`);
  await ann2.waitForSelector('#connection.online');
  await joinRoom(ann2, 'Lobby');
  await member(ann2, 'bob').waitFor();
  assert.equal(await member(ann2, 'ann').count(), 1);
  assert.equal(await member(bob, 'ann').count(), 1);
  const joined = pane(bob, 'Lobby').locator('.notice', {hasText: 'ann joined'});
  assert.equal(await joined.count(), 1, 'one arrival for two tabs');

  await ann1.close();
  // Once the worker has taken the closed tab out, a message from the other
  // tab is handled after it: no leave notice may come before that message.
  await sys.waitSql("SELECT count(*) FROM presence p JOIN users u ON u.id = p.user_id " +
                    "WHERE u.username = 'ann'", '1');
  await say(ann2, 'Lobby', 'still here');
  await seeMessage(bob, 'Lobby', 'still here');
  assert.equal(await pane(bob, 'Lobby').locator('.notice', {hasText: 'ann left'}).count(), 0);
  assert.equal(await member(bob, 'ann').count(), 1);

  await ann2.close();
  await member(bob, 'ann').waitFor({state: 'detached'});
  await pane(bob, 'Lobby').locator('.notice', {hasText: 'ann left'}).waitFor();
  assert.equal(await member(bob, 'bob').count(), 1);
});

test('the sockets of a killed interface leave their rooms', async () => {
  const ann = await annContext.newPage();
  await ann.goto(`${sys.urls[0]}/`);
  await ann.waitForSelector('#connection.online');
  await joinRoom(ann, 'Lobby');
  await member(bob, 'ann').waitFor();
  const started = Date.now();
  await sys.killInterface(0);
  await member(bob, 'ann').waitFor({state: 'detached', timeout: 30000});
  await pane(bob, 'Lobby').locator('.notice', {hasText: 'ann left'}).last().waitFor();
  assert.ok(Date.now() - started < 30000);
  assert.equal(sys.sql("SELECT count(*) FROM presence p JOIN users u ON u.id = p.user_id " +
                       "WHERE u.username = 'ann'"), '0');
  // bob, on the live interface, still chats.
  await say(bob, 'Lobby', 'anyone left?');
  await seeMessage(bob, 'Lobby', 'anyone left?');
});
