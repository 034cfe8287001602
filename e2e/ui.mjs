// End-to-end tests of keel's web UI in Chromium (Playwright), with axe
// accessibility checks and screenshots. Run by crates/keel-cli/tests/browser.rs
// against a fresh `keel serve`; it can also be run by hand:
//
//   KEEL_URL=http://127.0.0.1:8080 KEEL_TOKEN=… KEEL_ADMIN_EMAIL=admin@localhost \
//   KEEL_ADMIN_PASSWORD=… KEEL_SCREENSHOTS=target/screenshots/manual node e2e/ui.mjs
//
// The JSON API (with the bootstrap token) is used for setup only; everything
// under test goes through the browser. Each step prints "ok - <step>" or
// "not ok - <step>" with the reason; a failed step skips the rest of its flow,
// other flows still run. The exit code is 1 when any step failed.
//
// KEEL_E2E_ONLY=<substring> runs only the flows whose name contains it.

import { chromium } from 'playwright-core';
import { readFileSync, mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';

const here = dirname(fileURLToPath(import.meta.url));

function env(name, fallback) {
  const value = process.env[name] ?? fallback;
  if (value === undefined || value === '') throw new Error(`environment variable ${name} is required`);
  return value;
}

const BASE = env('KEEL_URL').replace(/\/$/, '');
const TOKEN = env('KEEL_TOKEN');
const ADMIN_EMAIL = env('KEEL_ADMIN_EMAIL', 'admin@localhost');
const ADMIN_PASSWORD = env('KEEL_ADMIN_PASSWORD');
const SCREENSHOTS = env('KEEL_SCREENSHOTS', join(here, '..', 'target', 'screenshots', 'manual'));
const CHROMIUM = env('KEEL_CHROMIUM', '/usr/bin/chromium');
const ONLY = process.env.KEEL_E2E_ONLY ?? '';
const AXE_SOURCE = readFileSync(join(here, 'node_modules', 'axe-core', 'axe.min.js'), 'utf8');

const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const ACTION_TIMEOUT = 10_000;
const LIVE_TIMEOUT = 5_000;

const suffix = randomBytes(3).toString('hex');
const password = () => `pw-${randomBytes(12).toString('hex')}`;

// ---------------------------------------------------------------- reporting

const results = { ok: 0, failed: [], skipped: 0 };
const pageErrors = [];
const consoleErrors = [];
const dialogs = [];
let injecting = false;

class StepError extends Error {}

function fail(message) {
  throw new StepError(message);
}

function check(condition, message) {
  if (!condition) fail(message);
}

/** A flow: named steps in order; the first failure skips the rest of the flow. */
async function flow(name, body) {
  if (ONLY && !name.includes(ONLY)) return;
  console.log(`# ${name}`);
  let broken = null;
  // A soft step (axe, screenshots) records its failure but does not skip the rest.
  const step = async (title, fn, { soft = false } = {}) => {
    const label = `${name}: ${title}`;
    if (broken) {
      results.skipped++;
      console.log(`skip - ${label} (after "${broken}" failed)`);
      return undefined;
    }
    try {
      const value = await fn();
      results.ok++;
      console.log(`ok - ${label}`);
      return value;
    } catch (error) {
      if (!soft) broken = title;
      results.failed.push({ label, message: describe(error) });
      console.log(`not ok - ${label}`);
      console.log(indent(describe(error)));
      return undefined;
    }
  };
  try {
    await body(step);
  } catch (error) {
    results.failed.push({ label: `${name} (flow aborted)`, message: describe(error) });
    console.log(`not ok - ${name} (flow aborted)`);
    console.log(indent(describe(error)));
  }
}

function describe(error) {
  if (error instanceof StepError) return error.message;
  // Playwright's messages carry a call log; keep its first lines.
  const text = String(error?.stack ?? error);
  return text.split('\n').slice(0, 12).join('\n');
}

function indent(text) {
  return text
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');
}

// ---------------------------------------------------------------- API setup

async function api(method, path, body, token = TOKEN) {
  const response = await fetch(`${BASE}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  if (!response.ok) {
    fail(`setup call ${method} ${path} answered ${response.status}: ${text.slice(0, 500)}`);
  }
  return json;
}

const incidentPath = (key) => `/incidents/${key}`;

// ---------------------------------------------------------------- browser helpers

let browser;

async function newContext() {
  const context = await browser.newContext({ viewport: DESKTOP, baseURL: BASE });
  context.setDefaultTimeout(ACTION_TIMEOUT);
  context.setDefaultNavigationTimeout(15_000);
  context.on('page', watchPage);
  return context;
}

async function newPage(context) {
  const page = await context.newPage();
  return page;
}

function watchPage(page) {
  page.on('pageerror', (error) => pageErrors.push(`${page.url()}: ${error.message}`));
  page.on('console', (message) => {
    // Error statuses are expected where a step asks for them (wrong password, forged POST, 404).
    const expected = message.text().startsWith('Failed to load resource: the server responded with a status of');
    if (message.type() === 'error' && !injecting && !expected) consoleErrors.push(`${page.url()}: ${message.text().slice(0, 300)}`);
  });
  page.on('dialog', async (dialog) => {
    dialogs.push(`${page.url()}: ${dialog.type()} "${dialog.message()}"`);
    await dialog.dismiss().catch(() => {});
  });
}

/** The path (and query) of the page's URL. */
function pathOf(page) {
  const url = new URL(page.url());
  return url.pathname;
}

/**
 * The form control with this accessible label. Exact match first; if there is
 * none, a unique label that starts with the text (e.g. "Impact (1 = highest)")
 * is accepted with a note.
 */
const CONTROLS = 'input, select, textarea, [role="textbox"], [role="combobox"], [role="checkbox"], [role="listbox"]';

async function field(scope, label) {
  // Only form controls: a form or section may carry the same accessible name (aria-labelledby).
  const controls = scope.locator(CONTROLS);
  const exact = scope.getByLabel(label, { exact: true }).and(controls);
  const count = await exact.count();
  if (count === 1) return exact;
  if (count > 1) fail(`${count} controls are labelled "${label}"; expected one`);
  const loose = scope.getByLabel(label).and(controls);
  const looseCount = await loose.count();
  if (looseCount === 1) {
    const name = await loose.evaluate((el) => el.labels?.[0]?.textContent?.trim() ?? el.getAttribute('aria-label'));
    console.log(`# note: control for "${label}" is labelled "${name}" (not exactly "${label}")`);
    return loose;
  }
  fail(`no form control is labelled "${label}" on ${scope.url?.() ?? 'the page'} (found ${looseCount} partial matches)`);
}

async function tagOf(locator) {
  return locator.evaluate((el) => el.tagName.toLowerCase());
}

/** Sets a control by label: fills inputs and textareas, picks options of selects. */
async function set(scope, label, value) {
  const control = await field(scope, label);
  if ((await tagOf(control)) === 'select') {
    await pick(control, value, label);
  } else {
    await control.fill(value);
  }
  return control;
}

/** Picks an option by value, or else by a label that equals or starts with the text. */
async function pick(select, wanted, label) {
  const options = await select.evaluate((el) =>
    [...el.options].map((o) => ({ value: o.value, text: o.textContent.trim() })),
  );
  const lower = String(wanted).toLowerCase();
  const option =
    options.find((o) => o.value === String(wanted)) ??
    options.find((o) => o.text.toLowerCase() === lower) ??
    options.find((o) => o.text.toLowerCase().startsWith(lower)) ??
    options.find((o) => o.value.toLowerCase() === lower);
  if (!option) {
    fail(`select "${label}" has no option "${wanted}"; options: ${JSON.stringify(options)}`);
  }
  await select.selectOption(option.value);
}

/** Clicks and waits for the navigation (a form POST and its redirect) to finish. */
async function clickAndWait(page, locator) {
  const before = page.url();
  const navigated = page
    .waitForEvent('framenavigated', { predicate: (frame) => frame === page.mainFrame(), timeout: 15_000 })
    .then(
      () => true,
      () => false,
    );
  await locator.click();
  if (!(await navigated)) fail(`clicking ${locator} on ${before} loaded no page within 15 s`);
  await page.waitForLoadState('load');
  return before;
}

async function expectText(locator, text, what, timeout = ACTION_TIMEOUT) {
  try {
    await locator.filter({ hasText: text }).first().waitFor({ state: 'visible', timeout });
  } catch {
    const got = await locator
      .first()
      .innerText({ timeout: 1000 })
      .catch(() => '(element not found)');
    fail(`${what}: expected text ${JSON.stringify(text)}, got ${JSON.stringify(got.slice(0, 400))}`);
  }
}

async function visible(locator, what, timeout = ACTION_TIMEOUT) {
  try {
    await locator.first().waitFor({ state: 'visible', timeout });
  } catch {
    fail(`${what} is not on the page`);
  }
}

async function goto(page, path, { status = 200 } = {}) {
  const response = await page.goto(path);
  if (status !== null) {
    check(response, `no response for ${path}`);
    check(
      response.status() === status,
      `GET ${path} answered ${response.status()} (expected ${status}); ended at ${page.url()}` +
        (response.status() === 404 ? ' — page not implemented yet?' : ''),
    );
  }
  return response;
}

async function heading1(page) {
  const h1 = page.getByRole('heading', { level: 1 });
  await visible(h1, 'an h1 heading');
  return (await h1.first().innerText()).trim();
}

async function expectH1(page, text) {
  const got = await heading1(page);
  check(got.includes(text), `h1 on ${pathOf(page)}: expected it to contain ${JSON.stringify(text)}, got ${JSON.stringify(got)}`);
}

async function signIn(page, email, secret) {
  await goto(page, '/login');
  await set(page, 'Email', email);
  await set(page, 'Password', secret);
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/login'),
    page.getByRole('button', { name: 'Sign in', exact: true }).click(),
  ]);
  await page.waitForLoadState('load');
  return response;
}

async function signedIn(context, email, secret, landing) {
  const page = await newPage(context);
  await signIn(page, email, secret);
  check(
    pathOf(page) === landing,
    `signing in as ${email} should land on ${landing}; got ${page.url()} (alert: ${await alertText(page)})`,
  );
  return page;
}

async function alertText(page) {
  const alert = page.getByRole('alert');
  if ((await alert.count()) === 0) return '(no role=alert element)';
  return (await alert.first().innerText()).trim();
}

// ---------------------------------------------------------------- axe and screenshots

const axeFindings = [];

async function injectAxe(page) {
  if (await page.evaluate(() => typeof window.axe !== 'undefined')) return;
  injecting = true;
  try {
    await page.addScriptTag({ content: AXE_SOURCE });
  } catch {
    // A Content-Security-Policy may refuse inline scripts; DevTools evaluation is not subject to it.
  } finally {
    // The CSP report reaches the console a moment later.
    await page.waitForTimeout(50);
    injecting = false;
  }
  if (await page.evaluate(() => typeof window.axe !== 'undefined')) return;
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Runtime.evaluate', { expression: AXE_SOURCE });
  await cdp.detach();
  check(await page.evaluate(() => typeof window.axe !== 'undefined'), 'could not inject axe-core');
}

/** Runs axe on the page; any violation fails, listed with its nodes. */
async function axe(page, name) {
  await injectAxe(page);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  if (result.violations.length === 0) return;
  const lines = [];
  for (const v of result.violations) {
    lines.push(`[${v.impact}] ${v.id}: ${v.help} (${v.helpUrl})`);
    for (const node of v.nodes.slice(0, 8)) {
      lines.push(`    at ${node.target.join(' ')}  ${node.html.slice(0, 160)}`);
      const summary = (node.failureSummary ?? '').split('\n').slice(1, 3).join(' ').trim();
      if (summary) lines.push(`       ${summary.slice(0, 240)}`);
    }
    if (v.nodes.length > 8) lines.push(`    … and ${v.nodes.length - 8} more nodes`);
  }
  axeFindings.push({ page: name, path: pathOf(page), lines });
  fail(`axe found ${result.violations.length} violation(s) on ${name} (${pathOf(page)}):\n${lines.join('\n')}`);
}

/** Full-page screenshots at desktop and phone size; returns the page's width on the phone. */
async function screenshots(page, name) {
  try {
    mkdirSync(SCREENSHOTS, { recursive: true });
    const size = page.viewportSize() ?? DESKTOP;
    await page.setViewportSize(DESKTOP);
    await page.screenshot({ path: join(SCREENSHOTS, `${name}-desktop.png`), fullPage: true });
    await page.setViewportSize(PHONE);
    await page.screenshot({ path: join(SCREENSHOTS, `${name}-phone.png`), fullPage: true });
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    await page.setViewportSize(size);
    return width;
  } catch (error) {
    console.log(`# note: screenshot ${name} failed: ${String(error).split('\n')[0]}`);
    return 0;
  }
}

/** Screenshots, axe and the phone width of a main page, as one soft step (a violation does not stop the flow). */
async function audit(step, page, name) {
  await step(
    `${name} page has no axe violations`,
    async () => {
      const phoneWidth = await screenshots(page, name);
      await axe(page, name);
      check(
        phoneWidth <= PHONE.width,
        `${name} scrolls sideways on a phone: ${phoneWidth} px wide at a ${PHONE.width} px screen`,
      );
    },
    { soft: true },
  );
}

// ---------------------------------------------------------------- the flows

const world = {};

async function setup(step) {
  await step('the bootstrap token reaches the API', async () => {
    const me = await api('GET', '/api/v1/me');
    check(me.email === ADMIN_EMAIL, `GET /api/v1/me: expected ${ADMIN_EMAIL}, got ${JSON.stringify(me)}`);
    world.admin = me;
  });
  await step('create users, a team, services and incidents through the API', async () => {
    const user = async (name, email, role) => {
      const secret = password();
      const created = await api('POST', '/api/v1/users', { name, email, role, password: secret });
      return { ...created, password: secret };
    };
    world.agent = await user('Sam Agent', `sam-${suffix}@example.test`, 'agent');
    world.owner = await user('Quentin Ownerperson', `quentin-${suffix}@example.test`, 'agent');
    world.locked = await user('Lou Lockout', `lou-${suffix}@example.test`, 'agent');
    world.eve = await user('Eve Enduser', `eve-${suffix}@example.test`, 'end_user');
    world.olly = await user('Olly Otheruser', `olly-${suffix}@example.test`, 'end_user');
    world.team = await api('POST', '/api/v1/teams', {
      name: `Network Ops ${suffix}`,
      lead: world.agent.id,
      members: [world.agent.id, world.owner.id],
    });
    world.mail = await api('POST', '/api/v1/services', { name: 'Mail', team: world.team.id, criticality: 'high' });
    world.wiki = await api('POST', '/api/v1/services', { name: 'Wiki', criticality: 'low' });
    world.vpn = await api('POST', '/api/v1/services', { name: 'VPN', team: world.team.id, criticality: 'medium' });
    world.calendar = await api('POST', '/api/v1/services', { name: 'Calendar', criticality: 'medium' });

    world.printer = await api('POST', '/api/v1/incidents', {
      title: `Printer on floor 3 jams ${suffix}`,
      description: 'Paper jam on every job.',
      impact: 3,
      urgency: 3,
      team: world.team.id,
    });
    world.outage = await api('POST', '/api/v1/incidents', {
      title: `Mail delivery is delayed ${suffix}`,
      description: 'Outgoing mail waits in the queue for hours.',
      impact: 1,
      urgency: 1,
      service: 'Mail',
      major: true,
      team: world.team.id,
      owner: world.owner.id,
    });
    check(world.outage.priority === 'P1', `the major incident should be P1, got ${world.outage.priority}`);
    world.secretNote = `internal-note-${suffix}-do-not-publish`;
    await api('POST', `/api/v1/incidents/${world.outage.key}/comments`, {
      body: world.secretNote,
      visibility: 'internal',
    });
    world.quiet = await api('POST', '/api/v1/incidents', {
      title: `Mail delivery probe (staff only) ${suffix}`,
      impact: 4,
      urgency: 4,
      service: 'Mail',
    });
    world.xssTitle = '<script>alert(1)</script><img src=x onerror=alert(2)>';
    world.xss = await api('POST', '/api/v1/incidents', {
      title: world.xssTitle,
      description: '<b onmouseover=alert(3)>bold?</b>',
      impact: 3,
      urgency: 2,
    });
  });
}

async function loginFlow(step) {
  const context = await newContext();
  const page = await newPage(context);
  await step('GET /login shows Email, Password and "Sign in"', async () => {
    await goto(page, '/login');
    await field(page, 'Email');
    await field(page, 'Password');
    await visible(page.getByRole('button', { name: 'Sign in', exact: true }), 'button "Sign in"');
  });
  await audit(step, page, 'login');
  await step('a wrong password stays at /login with 401 and "Wrong email or password"', async () => {
    const response = await signIn(page, ADMIN_EMAIL, 'not-the-password-at-all');
    check(response.status() === 401, `POST /login with a wrong password answered ${response.status()}, expected 401`);
    check(pathOf(page) === '/login', `expected to stay at /login, got ${page.url()}`);
    await expectText(page.getByRole('alert'), 'Wrong email or password', 'the role=alert element');
  });
  await step('after 5 wrong passwords even the right one is refused as "locked"', async () => {
    for (let i = 1; i <= 5; i++) {
      const response = await signIn(page, world.locked.email, `wrong-password-${i}-xxxx`);
      check(response.status() >= 400, `wrong attempt ${i} answered ${response.status()}`);
    }
    const response = await signIn(page, world.locked.email, world.locked.password);
    check(
      response.status() >= 400 && pathOf(page) === '/login',
      `the right password after 5 wrong ones was accepted (status ${response.status()}, at ${page.url()})`,
    );
    const text = await alertText(page);
    check(/locked/i.test(text), `the alert should mention "locked", got ${JSON.stringify(text)}`);
  });
  await step('staff sign-in redirects to /', async () => {
    await signIn(page, ADMIN_EMAIL, ADMIN_PASSWORD);
    check(pathOf(page) === '/', `admin sign-in should land on /, got ${page.url()} (alert: ${await alertText(page)})`);
  });
  await step('end-user sign-in redirects to /portal', async () => {
    const other = await newContext();
    const p = await newPage(other);
    await signIn(p, world.eve.email, world.eve.password);
    check(pathOf(p) === '/portal', `end user sign-in should land on /portal, got ${p.url()}`);
    await other.close();
  });
  await context.close();
}

async function navFlow(step) {
  const context = await newContext();
  let page;
  await step('admin signs in', async () => {
    page = await signedIn(context, ADMIN_EMAIL, ADMIN_PASSWORD, '/');
  });
  await step('the capability self-assessment shows the level and forms to record evidence', async () => {
    await goto(page, '/capability');
    await expectH1(page, 'Capability self-assessment');
    await visible(page.getByRole('heading', { name: 'Level 2' }), 'the level 2 criteria');
    await visible(page.getByRole('button', { name: 'Record' }).first(), 'a form to record a verdict');
  });
  await audit(step, page, 'capability');
  const nav = () => page.getByRole('navigation');
  await step('the nav links Queue, Register, Status and Admin', async () => {
    await visible(nav(), 'a role=navigation element');
    const expected = { Queue: '/', Register: '/incidents/new', Status: '/status', Admin: '/admin' };
    for (const [name, path] of Object.entries(expected)) {
      const link = nav().getByRole('link', { name, exact: true });
      check((await link.count()) >= 1, `nav has no link "${name}"`);
      const href = await link.first().getAttribute('href');
      const got = new URL(href, BASE).pathname;
      check(got === path, `nav link "${name}" goes to ${got}, expected ${path}`);
    }
    const signOut = page.getByRole('button', { name: 'Sign out', exact: true });
    await visible(signOut, 'button "Sign out"');
    const form = await signOut.first().evaluate((b) => ({
      method: (b.form?.getAttribute('method') ?? 'get').toLowerCase(),
      action: b.form ? new URL(b.form.action).pathname : null,
    }));
    check(form.method === 'post' && form.action === '/logout', `"Sign out" submits ${JSON.stringify(form)}, expected POST /logout`);
  });
  await step('following the nav reaches each page', async () => {
    for (const [name, path, h1] of [
      ['Register', '/incidents/new', null],
      ['Queue', '/', 'Queue'],
      ['Status', '/status', 'Service status'],
    ]) {
      await clickAndWait(page, nav().getByRole('link', { name, exact: true }).first());
      check(pathOf(page) === path, `nav "${name}" led to ${page.url()}`);
      if (h1) await expectH1(page, h1);
    }
  });
  await step('an agent sees no "Admin" link and cannot open /admin/users', async () => {
    const other = await newContext();
    const p = await signedIn(other, world.agent.email, world.agent.password, '/');
    const admin = p.getByRole('navigation').getByRole('link', { name: 'Admin', exact: true });
    check((await admin.count()) === 0, 'an agent sees the "Admin" link');
    const response = await p.goto('/admin/users');
    check(
      response.status() >= 400 || pathOf(p) !== '/admin/users',
      `an agent got /admin/users with ${response.status()}`,
    );
    await other.close();
  }, { soft: true });
  let before = [];
  await step('the session cookie is HttpOnly and SameSite', async () => {
    before = await context.cookies();
    check(before.length > 0, 'no cookie after signing in');
    for (const cookie of before) {
      check(cookie.httpOnly, `cookie ${cookie.name} is not HttpOnly`);
      check(cookie.sameSite === 'Lax' || cookie.sameSite === 'Strict', `cookie ${cookie.name} has SameSite=${cookie.sameSite}`);
    }
  }, { soft: true });
  await step('"Sign out" returns to /login and / then redirects to /login', async () => {
    await clickAndWait(page, page.getByRole('button', { name: 'Sign out', exact: true }));
    check(pathOf(page) === '/login', `after "Sign out" expected /login, got ${page.url()}`);
    await page.goto('/');
    check(pathOf(page) === '/login', `after signing out, / should redirect to /login; got ${page.url()}`);
  });
  await step('the signed-out session cookie no longer works (ended on the server)', async () => {
    const replay = await newContext();
    await replay.addCookies(before);
    const p = await newPage(replay);
    await p.goto('/');
    check(pathOf(p) === '/login', `the old session cookie still opens / after signing out (at ${p.url()})`);
    await replay.close();
  }, { soft: true });
  await context.close();
}

async function queueFlow(step) {
  const context = await newContext();
  let page;
  await step('admin signs in', async () => {
    page = await signedIn(context, ADMIN_EMAIL, ADMIN_PASSWORD, '/');
  });
  // The filter form: the form holding the "State" select (a global search box elsewhere must not confuse it).
  const filters = () => page.locator('form').filter({ has: page.getByLabel('State', { exact: true }) }).first();
  await step('the queue has h1 "Queue", the filter form and rows linking "INC-n"', async () => {
    await goto(page, '/');
    await expectH1(page, 'Queue');
    for (const label of ['State', 'Priority', 'SLA']) {
      const control = await field(page, label);
      check((await tagOf(control)) === 'select', `"${label}" should be a select`);
    }
    check((await filters().count()) === 1, 'the "State" select is not inside a form');
    const method = ((await filters().getAttribute('method')) ?? 'get').toLowerCase();
    check(method === 'get', `the filter form's method is ${method}, expected GET`);
    await field(filters(), 'Search');
    const link = page.getByRole('table').getByRole('link', { name: world.printer.key, exact: true });
    await visible(link, `a table link "${world.printer.key}"`);
    const href = new URL(await link.first().getAttribute('href'), BASE).pathname;
    check(href === incidentPath(world.printer.key), `link ${world.printer.key} goes to ${href}`);
  });
  await audit(step, page, 'queue');
  await step('searching filters the rows (GET form)', async () => {
    const search = await field(filters(), 'Search');
    await search.fill(`Printer on floor 3 jams ${suffix}`);
    await Promise.all([page.waitForEvent('framenavigated'), search.press('Enter')]);
    await page.waitForLoadState('load');
    check(new URL(page.url()).search.length > 1, `the filter form should submit by GET; at ${page.url()}`);
    const table = page.getByRole('table');
    await visible(table.getByRole('link', { name: world.printer.key, exact: true }), `${world.printer.key} after searching`);
    check(
      (await table.getByRole('link', { name: world.outage.key, exact: true }).count()) === 0,
      `searching "Printer…" still lists ${world.outage.key}`,
    );
  }, { soft: true });
  await step('filtering by priority P1 keeps only P1 rows', async () => {
    await goto(page, '/');
    // The form may submit itself on change; otherwise submit it as its own button would.
    const navigated = page.waitForEvent('framenavigated', { timeout: 1500 }).then(
      () => true,
      () => false,
    );
    await pick(await field(filters(), 'Priority'), 'P1', 'Priority');
    if (!(await navigated)) {
      await Promise.all([page.waitForEvent('framenavigated'), filters().evaluate((form) => form.requestSubmit())]);
    }
    await page.waitForLoadState('load');
    const table = page.getByRole('table');
    await visible(table.getByRole('link', { name: world.outage.key, exact: true }), `P1 ${world.outage.key}`);
    check(
      (await table.getByRole('link', { name: world.printer.key, exact: true }).count()) === 0,
      `filtering P1 still lists the P5 ${world.printer.key}`,
    );
  }, { soft: true });
  await context.close();
}

async function incidentFlow(step) {
  const context = await newContext();
  let page;
  let key;
  const title = `VPN drops every 10 minutes ${suffix}`;
  await step('admin signs in', async () => {
    page = await signedIn(context, ADMIN_EMAIL, ADMIN_PASSWORD, '/');
  });
  await step('/incidents/new has the register form', async () => {
    await goto(page, '/incidents/new');
    for (const label of ['Title', 'Description']) await field(page, label);
    for (const label of ['Impact', 'Urgency', 'Service']) {
      check((await tagOf(await field(page, label))) === 'select', `"${label}" should be a select`);
    }
    for (const label of ['Impact', 'Urgency']) {
      const options = await (await field(page, label)).evaluate((el) =>
        [...el.options].map((o) => ({ value: o.value, text: o.textContent.trim() })),
      );
      for (const n of ['1', '2', '3', '4']) {
        const option = options.find((o) => o.value === n);
        check(option, `"${label}" has no option with value ${n}: ${JSON.stringify(options)}`);
        check(option.text.startsWith(n), `"${label}" option ${n} text should start with ${n}: ${JSON.stringify(option.text)}`);
      }
    }
    await visible(page.getByRole('button', { name: 'Register incident', exact: true }), 'button "Register incident"');
  });
  await audit(step, page, 'register');
  await step('the priority preview follows impact and urgency without reload', async () => {
    const preview = page.getByTestId('priority-preview');
    await visible(preview, 'data-testid="priority-preview"');
    check((await preview.evaluate((el) => el.tagName.toLowerCase())) === 'output', 'the priority preview should be an <output>');
    await page.evaluate(() => {
      window.__keelNoReload = true;
    });
    for (const [impact, urgency, expected] of [
      ['1', '1', 'P1'],
      ['4', '4', 'P5'],
      ['2', '2', 'P3'],
      ['1', '3', 'P3'],
    ]) {
      await pick(await field(page, 'Impact'), impact, 'Impact');
      await pick(await field(page, 'Urgency'), urgency, 'Urgency');
      await expectText(preview, expected, `priority preview for impact ${impact}, urgency ${urgency}`, 3000);
    }
    check(await page.evaluate(() => window.__keelNoReload === true), 'the page reloaded while changing impact/urgency');
  });
  await step('"Register incident" redirects to /incidents/INC-n', async () => {
    await set(page, 'Title', title);
    await set(page, 'Description', 'Users on the VPN lose their connection.');
    await set(page, 'Impact', '2');
    await set(page, 'Urgency', '2');
    await set(page, 'Service', 'VPN');
    await clickAndWait(page, page.getByRole('button', { name: 'Register incident', exact: true }));
    const match = pathOf(page).match(/^\/incidents\/(INC-\d+)$/);
    check(match, `after registering expected /incidents/INC-<n>, got ${page.url()} (alert: ${await alertText(page)})`);
    key = match[1];
    const stored = await api('GET', `/api/v1/incidents/${key}`);
    check(stored.title === title, `stored title ${JSON.stringify(stored.title)}`);
    check(stored.priority === 'P3', `stored priority ${stored.priority}, expected P3 for impact 2 × urgency 2`);
    check(stored.service === 'VPN' || stored.service === world.vpn.id, `stored service ${JSON.stringify(stored.service)}`);
  });
  await step('the incident page shows number, title, state "New", timeline and "Timeline verified"', async () => {
    await expectH1(page, key);
    await expectH1(page, title);
    await expectText(page.getByTestId('state'), 'New', 'data-testid="state"');
    const timeline = page.getByTestId('timeline');
    await visible(timeline, 'data-testid="timeline"');
    check((await tagOf(timeline)) === 'ol', `the timeline should be an <ol>, is <${await tagOf(timeline)}>`);
    await expectText(page.getByTestId('verify'), 'Timeline verified', 'data-testid="verify"');
  });
  await audit(step, page, 'incident');
  await step('"Accept" moves it to "Accepted"', async () => {
    await clickAndWait(page, page.getByRole('button', { name: 'Accept', exact: true }));
    await expectText(page.getByTestId('state'), 'Accepted', 'data-testid="state" after Accept');
    const stored = await api('GET', `/api/v1/incidents/${key}`);
    check(stored.state === 'accepted', `API state after Accept: ${stored.state}`);
  });
  await step('"Add comment" (public) shows it on the timeline', async () => {
    const text = `Rebooted the VPN concentrator ${suffix}`;
    await set(page, 'Comment', text);
    const publicBox = await field(page, 'Public');
    await publicBox.check();
    await clickAndWait(page, page.getByRole('button', { name: 'Add comment', exact: true }));
    check(pathOf(page) === incidentPath(key), `after "Add comment" expected ${incidentPath(key)}, got ${page.url()}`);
    await expectText(page.getByTestId('timeline'), text, 'the timeline');
    const entries = await api('GET', `/api/v1/incidents/${key}/timeline`);
    const items = entries.items ?? entries;
    const comment = items.find((e) => JSON.stringify(e.data).includes(text));
    check(comment, `the comment is not in the API timeline`);
    check(JSON.stringify(comment.data).includes('public'), `the comment should be public: ${JSON.stringify(comment.data)}`);
  });
  await step('a comment added through the API appears live (SSE) within 5 s', async () => {
    await page.evaluate(() => {
      window.__keelNoReload = true;
    });
    const text = `Live update from the API ${suffix}`;
    await api('POST', `/api/v1/incidents/${key}/comments`, { body: text });
    await expectText(page.getByTestId('timeline'), text, 'the timeline (live, no reload)', LIVE_TIMEOUT);
    check(await page.evaluate(() => window.__keelNoReload === true), 'the page reloaded instead of updating live');
  });
  await step('"Resolve" with code and notes moves it to "Resolved"; chain stays verified', async () => {
    await set(page, 'Resolution code', 'fixed');
    await set(page, 'Resolution notes', 'Replaced the faulty line card.');
    await clickAndWait(page, page.getByRole('button', { name: 'Resolve', exact: true }));
    await expectText(page.getByTestId('state'), 'Resolved', 'data-testid="state" after Resolve');
    await expectText(page.getByTestId('verify'), 'Timeline verified', 'data-testid="verify"');
    const stored = await api('GET', `/api/v1/incidents/${key}`);
    check(stored.state === 'resolved', `API state after Resolve: ${stored.state}`);
  });
  await context.close();
}

async function escapingFlow(step) {
  const context = await newContext();
  let page;
  const before = dialogs.length;
  await step('admin signs in', async () => {
    page = await signedIn(context, ADMIN_EMAIL, ADMIN_PASSWORD, '/');
  });
  await step('the queue shows a markup title literally and runs none of it', async () => {
    await goto(page, '/');
    await visible(page.getByText(world.xssTitle, { exact: false }), `the literal title ${world.xssTitle}`);
    check((await page.locator('img[src="x"]').count()) === 0, 'the title was rendered as an <img>');
    await page.waitForTimeout(300);
    check(dialogs.length === before, `a dialog fired: ${dialogs.slice(before).join('; ')}`);
  });
  await step('the incident page shows it literally and runs none of it', async () => {
    await goto(page, incidentPath(world.xss.key));
    await visible(page.getByText(world.xssTitle, { exact: false }), `the literal title ${world.xssTitle}`);
    check((await page.locator('[onmouseover]').count()) === 0, 'the description was rendered with its onmouseover attribute');
    check((await page.locator('img[src="x"]').count()) === 0, 'the title was rendered as an <img>');
    await page.waitForTimeout(300);
    check(dialogs.length === before, `a dialog fired: ${dialogs.slice(before).join('; ')}`);
  });
  await context.close();
}

async function csrfFlow(step) {
  const context = await newContext();
  let page;
  await step('admin signs in', async () => {
    page = await signedIn(context, ADMIN_EMAIL, ADMIN_PASSWORD, '/');
  });
  await step('a form POST without _csrf is refused with 403', async () => {
    await goto(page, incidentPath(world.printer.key));
    const status = await page.evaluate(async (key) => {
      const response = await fetch(`/incidents/${key}/actions/accept`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ note: 'forged' }).toString(),
        redirect: 'manual',
      });
      return response.status;
    }, world.printer.key);
    check(status === 403, `POST /incidents/${world.printer.key}/actions/accept without _csrf answered ${status}, expected 403`);
    const stored = await api('GET', `/api/v1/incidents/${world.printer.key}`);
    check(stored.state === 'new', `the forged accept changed the state to ${stored.state}`);
  });
  await step('a form POST with a wrong _csrf is refused with 403', async () => {
    const status = await page.evaluate(async (key) => {
      const response = await fetch(`/incidents/${key}/actions/accept`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ _csrf: 'forged-token-value' }).toString(),
        redirect: 'manual',
      });
      return response.status;
    }, world.printer.key);
    check(status === 403, `POST with a wrong _csrf answered ${status}, expected 403`);
  });
  await context.close();
}

/** A board column's heading: its name, perhaps followed by a count ("New 3"). */
function columnHeading(page, name) {
  return page.getByRole('heading', { name: new RegExp(`^${name}(\\s|$)`) });
}

async function boardFlow(step) {
  const context = await newContext();
  let page;
  await step('admin signs in', async () => {
    page = await signedIn(context, ADMIN_EMAIL, ADMIN_PASSWORD, '/');
  });
  await step('the team board has h1 "Board" and columns New, Accepted, On hold, Resolved', async () => {
    await goto(page, `/teams/${world.team.id}/board`);
    await expectH1(page, 'Board');
    for (const name of ['New', 'Accepted', 'On hold', 'Resolved']) {
      const heading = columnHeading(page, name);
      check((await heading.count()) >= 1, `no column heading "${name}"`);
      const inSection = await heading
        .first()
        .evaluate((el) => Boolean(el.closest('section, [role="region"], [role="group"], [role="list"], ol, ul')));
      check(inSection, `column heading "${name}" is not inside a section/region`);
    }
  });
  await step("the team's new incident is in the New column", async () => {
    const column = page.locator('section, [role="region"]').filter({ has: columnHeading(page, 'New') }).last();
    await visible(column.getByText(world.printer.key), `${world.printer.key} in the "New" column`);
  });
  await step('the board also opens by team name', async () => {
    await goto(page, `/teams/${encodeURIComponent(world.team.name)}/board`);
    await expectH1(page, 'Board');
  }, { soft: true });
  await step('back to the board by id', () => goto(page, `/teams/${world.team.id}/board`));
  await audit(step, page, 'board');
  await step('the dashboard shows the backlog, SLA now and trend charts', async () => {
    await goto(page, '/dashboard');
    await expectH1(page, 'Dashboard');
    await visible(page.getByRole('heading', { name: 'Backlog now' }), 'the backlog section');
    await visible(page.getByRole('img', { name: /Time to resolve/ }).first(), 'a trend chart');
  });
  await audit(step, page, 'dashboard');
  await context.close();
}

async function adminFlow(step) {
  const context = await newContext();
  let page;
  const email = `newbie-${suffix}@example.test`;
  // The form with "Create user" (rows may have their own edit forms with the same labels).
  const createForm = () =>
    page.locator('form').filter({ has: page.getByRole('button', { name: 'Create user', exact: true }) }).first();
  await step('admin signs in', async () => {
    page = await signedIn(context, ADMIN_EMAIL, ADMIN_PASSWORD, '/');
  });
  await step('/admin/users lists users and has the create form', async () => {
    await goto(page, '/admin/users');
    await visible(page.getByRole('table'), 'a table of users');
    await visible(page.getByRole('table').getByText(world.agent.email), `${world.agent.email} in the table`);
    await visible(page.getByRole('button', { name: 'Create user', exact: true }), 'button "Create user"');
    for (const label of ['Name', 'Email', 'Role', 'Password']) await field(createForm(), label);
  });
  await audit(step, page, 'admin-users');
  await step('"Create user" adds the user to the table', async () => {
    await set(createForm(), 'Name', 'Nina Newbie');
    await set(createForm(), 'Email', email);
    await set(createForm(), 'Role', 'agent');
    await set(createForm(), 'Password', password());
    await clickAndWait(page, page.getByRole('button', { name: 'Create user', exact: true }));
    await visible(page.getByRole('table').getByText(email), `${email} in the table after creating (alert: ${await alertText(page)})`);
    const users = await api('GET', '/api/v1/users');
    const list = users.items ?? users;
    const created = list.find((u) => u.email === email);
    check(created, `${email} is not in GET /api/v1/users`);
    check(created.role === 'agent', `the new user's role is ${created.role}, expected agent`);
  });
  await context.close();
}

async function portalFlow(step) {
  const context = await newContext();
  let page;
  let key;
  await step('end user signs in to /portal with h1 "My incidents"', async () => {
    page = await signedIn(context, world.eve.email, world.eve.password, '/portal');
    await expectH1(page, 'My incidents');
  });
  await audit(step, page, 'portal');
  await step('"Report a problem" opens /portal/new with the report form', async () => {
    await clickAndWait(page, page.getByRole('link', { name: 'Report a problem', exact: true }).first());
    check(pathOf(page) === '/portal/new', `"Report a problem" led to ${page.url()}`);
    const what = await field(page, 'What is wrong?');
    check((await tagOf(what)) === 'textarea', '"What is wrong?" should be a textarea');
    check((await tagOf(await field(page, 'Which service?'))) === 'select', '"Which service?" should be a select');
    const since = await field(page, 'Since when?');
    check((await since.getAttribute('type')) === 'datetime-local', '"Since when?" should be a datetime-local input');
    check(
      (await tagOf(await field(page, 'How many people are affected?'))) === 'select',
      '"How many people are affected?" should be a select',
    );
    await visible(page.getByRole('button', { name: 'Send report', exact: true }), 'button "Send report"');
  });
  await audit(step, page, 'portal-report');
  await step('typing lists the matching open major incident under "Is this already known?"', async () => {
    const what = await field(page, 'What is wrong?');
    await what.click();
    await what.pressSequentially('mail delivery', { delay: 40 });
    const known = page.getByRole('region', { name: 'Is this already known?', exact: true });
    await visible(known.getByText(world.outage.title), `"${world.outage.title}" in the "Is this already known?" region`, LIVE_TIMEOUT);
    await visible(known.getByRole('button', { name: 'This affects me too', exact: true }), 'button "This affects me too"');
    check(
      (await known.getByText(world.quiet.title).count()) === 0,
      `the non-major staff incident "${world.quiet.title}" is offered to an end user`,
    );
  });
  await step('"This affects me too" follows the incident without an error', async () => {
    const known = page.getByRole('region', { name: 'Is this already known?', exact: true });
    const bad = [];
    const listener = (r) => {
      if (r.status() >= 400) bad.push(`${r.request().method()} ${r.url()} → ${r.status()}`);
    };
    page.on('response', listener);
    await known.getByRole('button', { name: 'This affects me too', exact: true }).first().click();
    await page.waitForLoadState('load');
    await page.waitForTimeout(1000);
    page.off('response', listener);
    check(bad.length === 0, `following answered an error: ${bad.join('; ')}`);
  });
  await step('"Send report" redirects to /portal/incidents/INC-n', async () => {
    if (pathOf(page) !== '/portal/new') await goto(page, '/portal/new');
    const text = `My laptop cannot reach the wiki ${suffix}`;
    await set(page, 'What is wrong?', text);
    await set(page, 'Which service?', 'Wiki');
    const since = new Date(Date.now() - 2 * 3600_000);
    const local = new Date(since.getTime() - since.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
    await (await field(page, 'Since when?')).fill(local);
    const affected = await field(page, 'How many people are affected?');
    const values = await affected.evaluate((el) => [...el.options].map((o) => o.value).filter((v) => v !== ''));
    check(values.length > 0, '"How many people are affected?" has no options');
    await affected.selectOption(values[0]);
    await clickAndWait(page, page.getByRole('button', { name: 'Send report', exact: true }));
    const match = pathOf(page).match(/^\/portal\/incidents\/(INC-\d+)$/);
    check(match, `after "Send report" expected /portal/incidents/INC-<n>, got ${page.url()} (alert: ${await alertText(page)})`);
    key = match[1];
    await expectH1(page, key);
    const stored = await api('GET', `/api/v1/incidents/${key}`);
    check(stored.reported_by === world.eve.id, `reported_by is ${stored.reported_by}, expected the end user ${world.eve.id}`);
    check(stored.service === 'Wiki' || stored.service === world.wiki.id, `stored service ${JSON.stringify(stored.service)}`);
  });
  await audit(step, page, 'portal-incident');
  await step("another user's incident is a 404 in the portal", async () => {
    const response = await page.goto(`/portal/incidents/${world.printer.key}`);
    check(response.status() === 404, `/portal/incidents/${world.printer.key} (not hers) answered ${response.status()}`);
    check(
      (await page.getByText(world.printer.title).count()) === 0,
      "the 404 page shows the other incident's title",
    );
  });
  await step('an end user cannot open staff pages (queue, staff incident page)', async () => {
    const response = await page.goto(incidentPath(world.printer.key));
    check(
      response.status() >= 400 || pathOf(page) !== incidentPath(world.printer.key),
      `an end user got the staff page ${incidentPath(world.printer.key)} with ${response.status()}`,
    );
    check((await page.getByText(world.printer.title).count()) === 0, `an end user sees "${world.printer.title}"`);
    const queue = await page.goto('/');
    check(
      queue.status() >= 400 || pathOf(page) !== '/',
      `an end user got the staff queue / with ${queue.status()}`,
    );
    check((await page.getByText(world.quiet.title).count()) === 0, `an end user sees the staff incident "${world.quiet.title}"`);
  }, { soft: true });
  await step('after staff resolve it, "Yes, it is fixed" closes it', async () => {
    await api('POST', `/api/v1/incidents/${key}/actions/accept`, {});
    await api('POST', `/api/v1/incidents/${key}/actions/resolve`, { code: 'fixed', notes: 'Renewed the certificate.' });
    await goto(page, `/portal/incidents/${key}`);
    await visible(page.getByRole('button', { name: 'Yes, it is fixed', exact: true }), 'button "Yes, it is fixed"');
    await visible(page.getByRole('button', { name: 'No, it is still broken', exact: true }), 'button "No, it is still broken"');
    await clickAndWait(page, page.getByRole('button', { name: 'Yes, it is fixed', exact: true }));
    const state = page.getByTestId('state');
    if ((await state.count()) > 0) {
      await expectText(state, 'Closed', 'data-testid="state"');
    } else {
      await visible(page.getByText('Closed', { exact: true }), 'the state text "Closed"');
    }
    const stored = await api('GET', `/api/v1/incidents/${key}`);
    check(stored.state === 'closed', `API state after "Yes, it is fixed": ${stored.state}`);
  });
  await context.close();
}

async function statusFlow(step) {
  const context = await newContext();
  const page = await newPage(context);
  await step('/status opens without signing in, h1 "Service status"', async () => {
    await goto(page, '/status');
    check(pathOf(page) === '/status', `/status redirected to ${page.url()}`);
    await expectH1(page, 'Service status');
  });
  const rowOf = async (name) => {
    const candidates = page
      .locator('tr, li, [role="row"], [role="listitem"]')
      .filter({ hasText: name })
      .filter({ hasText: /Operational|Degraded|Outage/ });
    const count = await candidates.count();
    check(count > 0, `no row or list item with "${name}" and a status word`);
    return candidates.last();
  };
  await step('each service has a row with its status; Mail (major P1) shows "Outage", Calendar "Operational"', async () => {
    for (const [name, expected] of [
      ['Mail', 'Outage'],
      ['Calendar', 'Operational'],
      ['Wiki', null],
      ['VPN', null],
    ]) {
      const row = await rowOf(name);
      const text = await row.innerText();
      const status = text.match(/Operational|Degraded|Outage/)?.[0];
      if (expected) check(status === expected, `service ${name}: expected "${expected}", got ${JSON.stringify(text)}`);
    }
    await visible(page.getByText(world.outage.title), `the major incident's title "${world.outage.title}"`);
  });
  await step('no internal comment, owner name or non-public incident on the page', async () => {
    const body = await page.locator('body').innerText();
    check(!body.includes(world.secretNote), 'the internal comment is on the public status page');
    check(!body.includes(world.owner.name), `the owner's name "${world.owner.name}" is on the public status page`);
    check(!body.includes(world.quiet.title), `the minor incident "${world.quiet.title}" is on the public status page`);
    const html = await page.content();
    check(!html.includes(world.secretNote), 'the internal comment is in the page source');
    check(!html.includes(world.owner.email), "the owner's e-mail is in the page source");
  });
  await audit(step, page, 'status');
  await context.close();
}

async function infrastructure(step) {
  await step('Chromium runs and axe works on a trivial page', async () => {
    const context = await newContext();
    const page = await newPage(context);
    await page.goto(`${BASE}/healthz`);
    await injectAxe(page);
    const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
    check(Array.isArray(result.violations), 'axe.run gave no result');
    await context.close();
  });
}

// ---------------------------------------------------------------- main

async function main() {
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  console.log(`# keel at ${BASE}; Chromium ${browser.version()}; screenshots in ${SCREENSHOTS}`);
  try {
    await flow('infrastructure', infrastructure);
    await flow('setup', setup);
    if (!world.outage) {
      console.log('# setup failed; the UI flows need its data');
    } else {
      await flow('login', loginFlow);
      await flow('nav', navFlow);
      await flow('queue', queueFlow);
      await flow('incident', incidentFlow);
      await flow('escaping', escapingFlow);
      await flow('csrf', csrfFlow);
      await flow('board', boardFlow);
      await flow('admin', adminFlow);
      await flow('portal', portalFlow);
      await flow('status', statusFlow);
      await flow('page health', async (step) => {
        await step('no dialog fired on any page', () =>
          check(dialogs.length === 0, `dialogs:\n${dialogs.join('\n')}`),
        );
        await step('no uncaught JavaScript error on any page', () =>
          check(pageErrors.length === 0, `errors:\n${pageErrors.join('\n')}`),
        );
      });
    }
  } finally {
    await browser.close();
  }
  if (consoleErrors.length > 0) {
    console.log(`# note: ${consoleErrors.length} console error(s) in pages (not failures):`);
    for (const e of [...new Set(consoleErrors)].slice(0, 30)) console.log(`#   ${e}`);
  }
  console.log(`# ${results.ok} passed, ${results.failed.length} failed, ${results.skipped} skipped`);
  if (results.failed.length > 0) {
    console.log('# failures:');
    for (const f of results.failed) {
      console.log(`#   ${f.label}`);
      console.log(indent(f.message.split('\n').slice(0, 3).join('\n')));
    }
    process.exitCode = 1;
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
