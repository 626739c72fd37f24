// Debian's Chromium driven by playwright-core: never a downloaded browser.
import {chromium} from 'playwright-core';

export function launch() {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
           '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
}

// Logs in through the real form, as a person would, and waits for the chat.
export async function login(page, baseUrl, username, password) {
  await page.goto(`${baseUrl}/`);
  await page.waitForURL(/\/accounts\/login\//);
  await page.fill('input[name=username]', username);
  await page.fill('input[name=password]', password);
  await Promise.all([page.waitForURL(`${baseUrl}/`), page.click('[type=submit]')]);
  await page.waitForSelector('#connection.online');
}

export function pane(page, title) {
  return page.locator('.pane', {has: page.locator('.pane-title', {hasText: title})});
}

export async function joinRoom(page, title) {
  await page.locator('.room-link', {hasText: title}).click();
  await pane(page, title).waitFor();
}

export async function say(page, title, text) {
  const p = pane(page, title);
  await p.locator('.send-text').fill(text);
  await p.locator('.send-text').press('Enter');
}

// Resolves once a message with exactly this text is shown in the room's pane.
export function seeMessage(page, title, text) {
  return pane(page, title).locator('.message .text', {hasText: text}).first().waitFor();
}
