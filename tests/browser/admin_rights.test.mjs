// The admin page shows each viewer only what it may do: staff manage rooms
// and the users who are not staff (and their own password); superusers
// manage everyone, rights included. Whatever a page sends, the server
// refuses the rest.
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {System} from '../lib/system.mjs';
import {launch, login} from '../lib/browser.mjs';

let sys, browser;

before(async () => {
  sys = await new System().start();
  sys.chatctl(['user', 'add', 'ann', '--password-stdin'], 'ann-pass-1\n');
  sys.chatctl(['user', 'add', 'sue', '--staff', '--password-stdin'], 'sue-pass-1\n');
  sys.chatctl(['user', 'add', 'tom', '--staff', '--password-stdin'], 'tom-pass-1\n');
  sys.chatctl(['user', 'add', 'root', '--superuser', '--password-stdin'], 'root-pass-1\n');
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await sys?.stop();
});

async function adminPage(username, password) {
  const page = await (await browser.newContext()).newPage();
  await login(page, sys.url, username, password);
  await page.goto(`${sys.url}/admin/`);
  await page.locator('#user-rows tr[data-username=root]').waitFor();
  return page;
}

function row(page, username) {
  return page.locator(`#user-rows tr[data-username=${username}]`);
}

test('staff see no rights to give, and no actions on other staff', async () => {
  const page = await adminPage('sue', 'sue-pass-1');
  assert.equal(await page.locator('#user-form select[name=rights]').isVisible(), false);
  assert.equal(await page.locator('#user-rows select').count(), 0);
  assert.deepEqual(await row(page, 'ann').locator('button').allTextContents(), ['Set password', 'Deactivate']);
  assert.deepEqual(await row(page, 'sue').locator('button').allTextContents(), ['Set password']);
  assert.deepEqual(await row(page, 'tom').locator('button').allTextContents(), []);
  assert.deepEqual(await row(page, 'root').locator('button').allTextContents(), []);
  assert.match(await row(page, 'tom').textContent(), /staff/);
  assert.match(await row(page, 'root').textContent(), /superuser/);
  // What the page does not offer, the server refuses.
  const status = await page.evaluate(async () => {
    const r = await fetch('/admin/api/users', {method: 'GET'});
    const tom = (await r.json()).users.find((u) => u.username === 'tom');
    const post = await fetch(`/admin/api/users/${tom.id}`, {
      method: 'POST', credentials: 'same-origin',
      headers: {'Content-Type': 'application/json', 'X-CSRFToken': document.body.dataset.csrf},
      body: JSON.stringify({is_active: false}),
    });
    return post.status;
  });
  assert.equal(status, 403);
  assert.match(sys.chatctl(['user', 'list']), /\ttom\tstaff\tactive/);
  await page.context().close();
});

test('a superuser gives and takes rights on the page', async () => {
  const page = await adminPage('root', 'root-pass-1');
  assert.equal(await page.locator('#user-form select[name=rights]').isVisible(), true);
  assert.deepEqual(await row(page, 'tom').locator('button').allTextContents(), ['Set password', 'Deactivate']);
  await row(page, 'ann').locator('select').selectOption('staff');
  await page.getByText('ann is now staff.').waitFor();
  await row(page, 'tom').locator('select').selectOption('user');
  await page.getByText('tom is now a user.').waitFor();
  const list = sys.chatctl(['user', 'list']);
  assert.match(list, /\tann\tstaff\tactive/);
  assert.match(list, /\ttom\t-\tactive/);
  await page.fill('#user-form input[name=username]', 'max');
  await page.fill('#user-form input[name=password]', 'max-pass-1');
  await page.selectOption('#user-form select[name=rights]', 'superuser');
  await page.click('#user-form [type=submit]');
  await row(page, 'max').waitFor();
  assert.match(sys.chatctl(['user', 'list']), /\tmax\tsuperuser\tactive/);
  await page.context().close();
});
