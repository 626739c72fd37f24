// What a person sees, at a desktop size and a phone width: screenshots of
// the login, chat and admin pages (into the build tree), and checks, with
// the pages' own geometry, that nothing spills out of its box, that an
// error toast leaves the message field and its Send button uncovered, that
// a one-line message takes one line, that one's own name reads as present,
// that the login page is a card in the middle, and that no page logs an
// error or fails a request (/favicon.ico included).
import {describe, test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {mkdirSync} from 'node:fs';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {System} from '../lib/system.mjs';
import {launch, login, pane, joinRoom, say, seeMessage} from '../lib/browser.mjs';

const shots = path.join(process.env.MC_BUILD || fileURLToPath(new URL('../../build/asan', import.meta.url)),
  'screenshots', 'layout');
mkdirSync(shots, {recursive: true});

const SIZES = [{name: '1280', width: 1280, height: 800}, {name: '390', width: 390, height: 844}];
const LONG_TITLE = 'Releaseplanningandannouncementsforthewholecompany2025';
let sys, browser, bobPage;

before(async () => {
  sys = await new System().start();
  sys.chatctl(['user', 'add', 'admin', '--staff', '--password-stdin'], 'admin-pass-1\n');
  sys.chatctl(['user', 'add', 'bob', '--password-stdin'], 'bob-pass-1\n');
  for (const title of ['Lobby', LONG_TITLE]) sys.chatctl(['room', 'add', title]);
  sys.chatctl(['room', 'add', 'Staff room', '--staff-only']);
  browser = await launch();
  bobPage = await (await browser.newContext()).newPage();
  await login(bobPage, sys.url, 'bob', 'bob-pass-1');
  await joinRoom(bobPage, 'Lobby');
});

after(async () => {
  await browser?.close();
  await sys?.stop();
});

// Collects what a person with the console open would see go wrong.
function watch(page) {
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`script error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`failed: ${r.url()} (${r.failure()?.errorText})`));
  page.on('response', (r) => { if (r.status() >= 400) problems.push(`${r.status()}: ${r.url()}`); });
  return problems;
}

async function newPage({width, height}) {
  const context = await browser.newContext({viewport: {width, height}});
  const page = await context.newPage();
  return {page, problems: watch(page)};
}

// Elements matching `inner` that reach sideways outside the nearest
// ancestor matching `outer` or past the window's right edge, or whose own
// content spills out of them, unclipped. Sideways only: what reaches past
// a box's top or bottom is scrolled, not spilled.
function spills(page, inner, outer) {
  return page.evaluate(([inner, outer]) => {
    const out = [];
    for (const el of document.querySelectorAll(inner)) {
      if (!el.getClientRects().length) continue; // not rendered
      const name = `${inner} "${el.textContent.trim().slice(0, 30)}"`;
      const box = el.closest(outer);
      const a = el.getBoundingClientRect();
      const b = box ? box.getBoundingClientRect() : {left: 0, right: innerWidth};
      if (a.left < b.left - .5 || a.right > b.right + .5 || a.right > innerWidth + .5) {
        out.push(`${name} [${Math.round(a.left)}..${Math.round(a.right)}] outside ${outer} ` +
                 `[${Math.round(b.left)}..${Math.round(b.right)}]`);
      }
      const s = getComputedStyle(el);
      if (s.display !== 'inline' && s.overflowX === 'visible' && el.scrollWidth > el.clientWidth + 1) {
        out.push(`${name}: its content is ${el.scrollWidth} px wide in a box of ${el.clientWidth} px`);
      }
    }
    return out;
  }, [inner, outer]);
}

// Table headers that wrap: taller than 1.5 times one line of their font.
function multiline(page, sel) {
  return page.evaluate((sel) => [...document.querySelectorAll(sel)].flatMap((el) => {
    const s = getComputedStyle(el);
    const line = parseFloat(s.lineHeight) || 1.2 * parseFloat(s.fontSize);
    const height = el.getBoundingClientRect().height - parseFloat(s.paddingTop) - parseFloat(s.paddingBottom) -
      parseFloat(s.borderTopWidth) - parseFloat(s.borderBottomWidth);
    return height > 1.5 * line ? [`"${el.textContent.trim()}" is ${Math.round(height)} px high, ` +
                                  `one line is ${Math.round(line)} px`] : [];
  }, sel));
}

// Messages with an empty line: taller than the lines their words take (a
// one-line message is one line high), by more than half a line.
function emptyLines(page) {
  return page.evaluate(() => [...document.querySelectorAll('.message')].flatMap((li) => {
    const s = getComputedStyle(li);
    const line = parseFloat(s.lineHeight) || 1.2 * parseFloat(s.fontSize);
    const words = [...li.querySelectorAll('.meta, .author, .text, .edited')].flatMap((el) => [...el.getClientRects()]);
    const wordsHeight = Math.max(...words.map((r) => r.bottom)) - Math.min(...words.map((r) => r.top));
    const height = li.getBoundingClientRect().height - parseFloat(s.paddingTop) - parseFloat(s.paddingBottom);
    return height - wordsHeight > line / 2 ? [`"${li.textContent.trim().slice(0, 40)}" is ${Math.round(height)} ` +
                                              `px high, its words ${Math.round(wordsHeight)} px`] : [];
  }));
}

// What the browser shows in its tab and asks for: every page names an icon
// that loads (without one, the browser asks for /favicon.ico, a 404), and
// nothing went wrong while the page was used.
async function assertClean(page, problems) {
  const icons = await page.locator('link[rel~=icon]').evaluateAll((links) => links.map((l) => l.href));
  assert.notEqual(icons.length, 0, 'no icon link: the browser asks for /favicon.ico');
  for (const href of icons) {
    const response = await page.request.get(href);
    assert.equal(response.status(), 200, href);
    assert.match(response.headers()['content-type'], /^image\//, href);
  }
  assert.deepEqual(problems, []);
}

// The contrast ratio (WCAG) of an element's text against the colour behind
// it, with the text's opacity blended in.
function contrast(page, sel) {
  return page.locator(sel).first().evaluate((el) => {
    const rgba = (c) => c.match(/[\d.]+/g).map(Number).concat(1).slice(0, 4);
    let bg = null;
    for (let e = el; e && !bg; e = e.parentElement) {
      const c = rgba(getComputedStyle(e).backgroundColor);
      if (c[3] > 0) bg = c;
    }
    bg = bg || [255, 255, 255, 1];
    const fg = rgba(getComputedStyle(el).color);
    const alpha = fg[3] * parseFloat(getComputedStyle(el).opacity);
    const mixed = fg.slice(0, 3).map((v, i) => v * alpha + bg[i] * (1 - alpha));
    const lum = (c) => c.map((v) => v / 255).map((v) => v <= .03928 ? v / 12.92 : ((v + .055) / 1.055) ** 2.4)
      .reduce((sum, v, i) => sum + v * [.2126, .7152, .0722][i], 0);
    const [hi, lo] = [lum(mixed), lum(bg.slice(0, 3))].sort((x, y) => y - x);
    return (hi + .05) / (lo + .05);
  });
}

function overlap(a, b) {
  return a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
}


for (const size of SIZES) {
  describe(`the login page at ${size.name} px`, () => {
    let page, problems;
    before(async () => {
      ({page, problems} = await newPage(size));
      await page.goto(`${sys.url}/`);
      await page.waitForURL(/\/accounts\/login\//);
      await page.screenshot({path: path.join(shots, `login-${size.name}.png`)});
    });
    after(() => page.context().close());

    test('is a card in the middle of the page, with the product name', async () => {
      const card = await page.locator('.login-box').boundingBox();
      assert.ok(Math.abs(card.x + card.width / 2 - size.width / 2) <= 1, `not centred: ${JSON.stringify(card)}`);
      assert.ok(card.x >= 8 && card.x + card.width <= size.width - 8, `touches the edges: ${JSON.stringify(card)}`);
      const [pageColour, cardColour] = await page.evaluate(() => [document.body, document.querySelector('.login-box')]
        .map((el) => getComputedStyle(el).backgroundColor));
      assert.notEqual(cardColour, 'rgba(0, 0, 0, 0)', 'the card has no background of its own');
      assert.notEqual(cardColour, pageColour, 'the card does not stand out from the page');
      assert.equal(await page.locator('.login-box h1').textContent(), 'Multichat');
      assert.deepEqual(await spills(page, '.login-box *', '.login-box'), []);
    });

    test('shows which field has the focus', async () => {
      await page.locator('#id_username').focus();
      const ring = (sel) => page.locator(sel).evaluate((el) => {
        const s = getComputedStyle(el);
        return `${s.outlineStyle} ${s.outlineWidth} ${s.outlineColor} ${s.boxShadow} ${s.borderColor}`;
      });
      assert.notEqual(await ring('#id_username'), await ring('#id_password'));
    });

    test('shows a refused login as an error that stands out, inside the card', async () => {
      await page.fill('#id_username', 'admin');
      await page.fill('#id_password', 'not-the-password');
      await page.click('[type=submit]');
      const error = page.locator('.login-box .error');
      await error.getByText(/correct username and password/).waitFor();
      await page.screenshot({path: path.join(shots, `login-error-${size.name}.png`)});
      const errorColour = await error.evaluate((el) => getComputedStyle(el).color);
      const labelColour = await page.locator('label[for=id_username]').evaluate((el) => getComputedStyle(el).color);
      assert.notEqual(errorColour, labelColour, 'the error looks like any other text');
      const ratio = await contrast(page, '.login-box .error');
      assert.ok(ratio >= 4.5, `the error text has a contrast of ${ratio.toFixed(1)}`);
      assert.deepEqual(await spills(page, '.login-box *', '.login-box'), []);
    });

    test('names its icon, logs no error and fails no request', () => assertClean(page, problems));
  });

  describe(`the chat page at ${size.name} px`, () => {
    const rooms = size.width > 1000 ? ['Lobby', LONG_TITLE, 'Staff room'] : ['Lobby', LONG_TITLE];
    let page, problems;
    before(async () => {
      ({page, problems} = await newPage(size));
      await login(page, sys.url, 'admin', 'admin-pass-1');
      await page.locator('.room-link', {hasText: LONG_TITLE}).waitFor();
      for (const room of rooms) await joinRoom(page, room);
      await say(page, 'Lobby', 'see you all at noon');
      await say(bobPage, 'Lobby', `hi (${size.name})`);
      await seeMessage(page, 'Lobby', `hi (${size.name})`);
      for (const room of rooms.slice(1)) {
        await say(page, room, `short (${size.name})`);
        await seeMessage(page, room, `short (${size.name})`);
      }
      await pane(page, 'Lobby').locator('.member[data-username=bob]').waitFor();
      // As a person reads it: the pointer and the focus away from the messages.
      await page.mouse.move(size.width / 2, 10);
      await page.locator('.topbar h1').click();
      await page.screenshot({path: path.join(shots, `chat-${size.name}.png`)});
    });
    after(() => page.context().close());

    test('a message is as high as its words: no empty line kept for hidden buttons', async () => {
      assert.deepEqual(await emptyLines(page), []);
    });

    test('a long room title stays inside the room list and its pane', async () => {
      assert.deepEqual(await spills(page, '.room-link > *', '.room-link'), []);
      assert.deepEqual(await spills(page, '.room-link', '.rooms'), []);
      assert.deepEqual(await spills(page, '.pane-head > *', '.pane-head'), []);
      assert.deepEqual(await spills(page, '.topbar > *', '.topbar'), []);
    });

    test('member chips stay in their pane, and one\'s own name reads as present', async () => {
      assert.deepEqual(await spills(page, '.member', '.members'), []);
      assert.deepEqual(await spills(page, '.message', '.messages'), []);
      const me = await contrast(page, '.member[data-username=admin]');
      const other = await contrast(page, '.member[data-username=bob]');
      assert.ok(me >= 4.5 && me >= .75 * other, `own name at contrast ${me.toFixed(1)}, others at ${other.toFixed(1)}`);
    });

    test('an error toast leaves every message field and Send button free', async () => {
      // An error while typing in the last pane, the one nearest the corner.
      const input = page.locator('.pane').last().locator('.send-text');
      await input.fill(' ');
      await input.press('Enter');
      const toast = page.locator('.notice-box');
      await toast.waitFor();
      // Measured at once: the toast goes away by itself after 6 s.
      const {toastBox, fields} = await page.evaluate(() => ({
        toastBox: document.querySelector('.notice-box').getBoundingClientRect().toJSON(),
        fields: [...document.querySelectorAll('.send-text, .send button')].map((el) => el.getBoundingClientRect().toJSON()),
      }));
      assert.deepEqual(fields.filter((b) => overlap(b, toastBox)), [],
        `the toast at ${JSON.stringify(toastBox)} covers them`);
      // Nor does it push the field being typed in out of sight.
      const typed = await input.evaluate((el) => {
        const box = el.getBoundingClientRect();
        const scroller = el.closest('.panes').getBoundingClientRect();
        return box.top >= scroller.top && box.bottom <= Math.min(scroller.bottom, innerHeight);
      });
      assert.ok(typed, 'the field being typed in is out of sight');
      await page.screenshot({path: path.join(shots, `chat-toast-${size.name}.png`)});
    });

    test('names its icon, logs no error and fails no request', () => assertClean(page, problems));
  });

  describe(`the admin page at ${size.name} px`, () => {
    let page, problems;
    before(async () => {
      ({page, problems} = await newPage(size));
      await login(page, sys.url, 'admin', 'admin-pass-1');
      await page.goto(`${sys.url}/admin/`);
      await page.locator('#user-rows tr[data-username=bob]').waitFor();
      await page.locator('#room-rows tr', {hasText: LONG_TITLE}).waitFor();
      await page.screenshot({path: path.join(shots, `admin-${size.name}.png`), fullPage: true});
    });
    after(() => page.context().close());

    test('a row\'s actions stay on one line, and so does each column header', async () => {
      const wrapped = await page.evaluate(() => [...document.querySelectorAll('.grid td')]
        .filter((td) => new Set([...td.querySelectorAll('button')]
          .map((b) => Math.round(b.getBoundingClientRect().top))).size > 1)
        .map((td) => td.parentElement.textContent.slice(0, 40)));
      assert.deepEqual(wrapped, [], 'action buttons wrap onto a second line');
      assert.deepEqual(await multiline(page, '.grid th'), []);
    });

    test('every cell stays inside its table\'s section', async () => {
      assert.deepEqual(await spills(page, '.grid td, .grid th', 'section'), []);
      assert.deepEqual(await spills(page, '.grid td > *', 'td'), []);
      assert.deepEqual(await spills(page, '.topbar > *', '.topbar'), []);
    });

    test('names its icon, logs no error and fails no request', () => assertClean(page, problems));
  });
}
