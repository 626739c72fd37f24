// The multichat example's own walk-through, in a real browser against the
// real interface, worker and Redis: a staff user makes rooms (one staff-only)
// and a second user on the admin page; both chat in several rooms at once;
// the second user is refused the staff-only room by the server.
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {mkdirSync} from 'node:fs';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {System} from '../lib/system.mjs';
import {launch, login, pane, joinRoom, say, seeMessage} from '../lib/browser.mjs';

// Screenshots go to the build tree; `make screenshots` points this at docs/.
const shots = process.env.MC_SCREENSHOTS ||
  path.join(process.env.MC_BUILD || fileURLToPath(new URL('../../build/asan', import.meta.url)), 'screenshots');
mkdirSync(shots, {recursive: true});
let sys, browser, admin, bob, adminPage, bobPage;

before(async () => {
  sys = await new System().start();
  sys.chatctl(['user', 'add', 'admin', '--staff', '--password-stdin'], 'admin-pass-1\n');
  browser = await launch();
  admin = await browser.newContext();
  bob = await browser.newContext();
  adminPage = await admin.newPage();
  bobPage = await bob.newPage();
});

after(async () => {
  await browser?.close();
  await sys?.stop();
});

test('the chat sends a visitor without a session to the login page', async () => {
  const response = await adminPage.goto(`${sys.url}/`);
  assert.match(adminPage.url(), /\/accounts\/login\/\?next=\/$/);
  assert.equal(response.status(), 200);
});

test('a wrong password is refused with a message on the form', async () => {
  await adminPage.fill('input[name=username]', 'admin');
  await adminPage.fill('input[name=password]', 'not-the-password');
  await adminPage.click('[type=submit]');
  await adminPage.getByText(/correct username and password|invalid/i).waitFor();
  assert.match(adminPage.url(), /\/accounts\/login\//);
});

test('the staff user makes rooms and a user on the admin page', async () => {
  await login(adminPage, sys.url, 'admin', 'admin-pass-1');
  await adminPage.goto(`${sys.url}/admin/`);
  for (const [title, staffOnly] of [['Lobby', false], ['Staff room', true], ['Games', false],
                                    ['Music', false]]) {
    await adminPage.fill('#room-form input[name=title]', title);
    await adminPage.setChecked('#room-form input[name=staff_only]', staffOnly);
    await adminPage.click('#room-form [type=submit]');
    await adminPage.locator('#room-rows tr', {hasText: title}).waitFor();
  }
  await adminPage.fill('#user-form input[name=username]', 'bob');
  await adminPage.fill('#user-form input[name=password]', 'bob-pass-1');
  await adminPage.click('#user-form [type=submit]');
  await adminPage.locator('#user-rows tr[data-username=bob]').waitFor();
  await adminPage.screenshot({path: path.join(shots, 'admin.png'), fullPage: true});
});

test('a non-staff user is refused the admin page', async () => {
  await login(bobPage, sys.url, 'bob', 'bob-pass-1');
  const response = await bobPage.goto(`${sys.url}/admin/`);
  assert.equal(response.status(), 403);
});

test('both users chat in the same room, both ways', async () => {
  await adminPage.goto(`${sys.url}/`);
  await adminPage.waitForSelector('#connection.online');
  await bobPage.goto(`${sys.url}/`);
  await bobPage.waitForSelector('#connection.online');
  await joinRoom(adminPage, 'Lobby');
  await joinRoom(bobPage, 'Lobby');
  await say(adminPage, 'Lobby', 'hello from admin');
  await seeMessage(bobPage, 'Lobby', 'hello from admin');
  await say(bobPage, 'Lobby', 'hello from bob');
  await seeMessage(adminPage, 'Lobby', 'hello from bob');
  // Your own messages look different.
  const own = pane(adminPage, 'Lobby').locator('.message.own .text', {hasText: 'hello from admin'});
  assert.equal(await own.count(), 1);
  const others = pane(adminPage, 'Lobby').locator('.message.own .text', {hasText: 'hello from bob'});
  assert.equal(await others.count(), 0);
});

test('the staff-only room is not offered to the non-staff user, and the server refuses it', async () => {
  await adminPage.locator('.room-link', {hasText: 'Staff room'}).waitFor();
  assert.equal(await bobPage.locator('.room-link', {hasText: 'Staff room'}).count(), 0);
  const staffId = await adminPage.locator('.room-link', {hasText: 'Staff room'})
    .getAttribute('data-room-id');
  // Asking for it anyway, by a link: the server answers ROOM_ACCESS_DENIED.
  await bobPage.goto(`${sys.url}/#room=${staffId}`);
  await bobPage.getByText('You may not enter that room.').waitFor();
  assert.equal(await pane(bobPage, 'Staff room').count(), 0);
});

test('three rooms open at once: each message lands in its own pane only', async () => {
  await bobPage.goto(`${sys.url}/`);
  await bobPage.waitForSelector('#connection.online');
  for (const room of ['Lobby', 'Games', 'Music']) {
    if (!(await pane(adminPage, room).count())) await joinRoom(adminPage, room);
    await joinRoom(bobPage, room);
  }
  for (const room of ['Lobby', 'Games', 'Music']) await say(adminPage, room, `only in ${room}`);
  for (const room of ['Lobby', 'Games', 'Music']) {
    await seeMessage(bobPage, room, `only in ${room}`);
    for (const other of ['Lobby', 'Games', 'Music'].filter((r) => r !== room)) {
      const stray = pane(bobPage, other).locator('.message .text', {hasText: `only in ${room}`});
      assert.equal(await stray.count(), 0, `"only in ${room}" showed in ${other}`);
    }
  }
  await bobPage.screenshot({path: path.join(shots, 'chat.png')});
});

test('a message with HTML in it is shown as text and runs nothing', async () => {
  const payload = '<img src=x onerror="window.__xss=1">';
  await say(adminPage, 'Lobby', payload);
  await seeMessage(bobPage, 'Lobby', payload);
  assert.equal(await bobPage.evaluate(() => window.__xss), undefined);
  assert.equal(await pane(bobPage, 'Lobby').locator('.messages img').count(), 0);
});

test('a room created on the admin page appears in the other list without a reload', async () => {
  const page = await admin.newPage();
  await page.goto(`${sys.url}/admin/`);
  await page.fill('#room-form input[name=title]', 'Fresh room');
  await page.click('#room-form [type=submit]');
  await bobPage.locator('.room-link', {hasText: 'Fresh room'}).waitFor();
  await page.close();
});
