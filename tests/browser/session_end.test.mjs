// A session that ends while pages are open brings every one of them to the
// login page, whatever ended it: a logout in another tab (here another
// browser context holding the same cookie) or a change made on the server
// with chatctl. The page asks the server before it reconnects; a page
// whose interface merely restarts reconnects instead (reconnect.test.mjs).
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {System} from '../lib/system.mjs';
import {launch, login, pane, joinRoom} from '../lib/browser.mjs';

let sys, browser;

before(async () => {
  sys = await new System().start();
  sys.chatctl(['user', 'add', 'ann', '--password-stdin'], 'ann-pass-1\n');
  sys.chatctl(['user', 'add', 'bob', '--password-stdin'], 'bob-pass-1\n');
  sys.chatctl(['room', 'add', 'Lobby']);
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await sys?.stop();
});

// Waits for the login page (bounded: a page that keeps retrying never gets
// there) and returns the `next` it carries.
async function loginPageNext(page) {
  await page.waitForURL(/\/accounts\/login\/\?next=/, {timeout: 15000});
  return new URL(page.url()).searchParams.get('next');
}

test('a logout in one tab takes the other tab of that session to the login page, and back', async () => {
  const first = await browser.newContext();
  const firstPage = await first.newPage();
  await login(firstPage, sys.url, 'ann', 'ann-pass-1');
  const second = await browser.newContext();
  await second.addCookies(await first.cookies());
  const secondPage = await second.newPage();
  await secondPage.goto(`${sys.url}/`);
  await secondPage.waitForSelector('#connection.online');
  await joinRoom(secondPage, 'Lobby');

  await Promise.all([firstPage.waitForURL(/\/accounts\/login\//), firstPage.click('.logout [type=submit]')]);
  const next = await loginPageNext(secondPage);
  assert.match(next, /^\/#room=\d+$/, 'next= leads back to the open rooms');

  // Logging in again leads back to the chat with the same room open.
  await secondPage.fill('input[name=username]', 'ann');
  await secondPage.fill('input[name=password]', 'ann-pass-1');
  await secondPage.click('[type=submit]');
  await pane(secondPage, 'Lobby').waitFor();
  await secondPage.waitForSelector('#connection.online');
  await first.close();
  await second.close();
});

test('a user deactivated with chatctl: every open page of theirs goes to the login page', async () => {
  const pages = [];
  for (let i = 0; i < 2; i++) {
    const page = await (await browser.newContext()).newPage();
    await login(page, sys.url, 'bob', 'bob-pass-1');
    pages.push(page);
  }
  sys.chatctl(['user', 'deactivate', 'bob']);
  for (const page of pages) assert.equal(await loginPageNext(page), '/');
  // The session is gone: the chat itself sends the page to the login form.
  await pages[0].goto(`${sys.url}/`);
  assert.match(pages[0].url(), /\/accounts\/login\//);
});
