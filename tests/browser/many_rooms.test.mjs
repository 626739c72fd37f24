// A page that opens many rooms at once (a link to 90 of them; a reconnect
// with them open does the same) sends a join for each: more than the
// socket's budget takes in one burst (60 by default; 20 more refused frames
// close the socket, and the page, reconnecting, would send them all again).
// The page paces what it sends: every room opens, and the interface never
// refuses it a frame.
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {System} from '../lib/system.mjs';
import {launch, login} from '../lib/browser.mjs';

const ROOMS = 90;
let sys, browser, page;
const ids = [];

before(async () => {
  sys = await new System().start();
  sys.chatctl(['user', 'add', 'ann', '--password-stdin'], 'ann-pass-1\n');
  for (let i = 0; i < ROOMS; i++) ids.push(sys.chatctl(['room', 'add', `Room ${i}`]).trim());
  browser = await launch();
  page = await (await browser.newContext()).newPage();
  await login(page, sys.url, 'ann', 'ann-pass-1');
});

after(async () => {
  await browser?.close();
  await sys?.stop();
});

test('a page that opens 90 rooms at once keeps within its budget and is in all of them', async () => {
  await page.evaluate((hash) => { location.hash = hash; }, `#room=${ids.join(',')}`);
  await page.waitForFunction((n) => document.querySelectorAll('.pane').length === n, ROOMS,
    {timeout: 30000});
  assert.equal(await sys.metric(0, 'chat_interface_rate_limited_total'), 0);
  assert.equal(await sys.metric(0, 'chat_interface_closed_rate_total'), 0);
  assert.equal(await page.locator('#connection.online').count(), 1);
});
