// Drives one of oidc-bridge's HTML pages in a real headless Chromium (the system's, over
// CDP with puppeteer-core: nothing downloads a browser), once with JavaScript on and once
// with it off, and checks what a person sees: the heading, the error text, every control's
// label, where the focus is, the CSRF field of each form that posts back to the provider,
// and zero axe-core violations (tags wcag2a and wcag2aa). The flow is completed by real
// clicks and typing in both modes. A full-page screenshot of the page goes to
// `<screenshots>/<page>-<js|nojs>.png`.
//
// Usage: node pages.mjs '<job JSON>'   (or the job on stdin)
// Job: { page, flow, chromium, screenshots, start, callbacks: [url prefix...],
//        user, password, expect: {status, heading, texts, alert, controls, buttons,
//        forms, focus}, ... flow-specific fields (see FLOWS) }
// Exits 0 when every check passed; otherwise prints `FAIL <page> [<mode>]: <reason>` on
// stderr and exits 1. A flow that needs the test to act (advance the provider's clock)
// prints `pause` on stdout and goes on once a line arrives on stdin.

import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import puppeteer from 'puppeteer-core';

const job = JSON.parse(process.argv[2] ?? readFileSync(0, 'utf8'));
const AXE = readFileSync(new URL('./node_modules/axe-core/axe.min.js', import.meta.url), 'utf8');
const STUB = '<!doctype html><html lang="en"><title>Client</title><h1>Back at the client</h1></html>';
const t0 = Date.now();
const log = (...a) => console.error(`${String(Date.now() - t0).padStart(5)}ms`, ...a);

class Failure extends Error {}
function fail(message) {
  throw new Failure(message);
}

// ---------------------------------------------------------------------------------------
// The test's hand: `pause` on stdout, then wait for a line on stdin.

let stdinLines;
async function pause(why) {
  if (!stdinLines) stdinLines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  log(`  pause: ${why}`);
  process.stdout.write('pause\n');
  const next = await stdinLines.next();
  if (next.done) fail(`the test closed stdin instead of answering the pause (${why})`);
}

// ---------------------------------------------------------------------------------------
// One mode: a fresh browser context (its own cookies), JavaScript on or off, the clients'
// redirect URIs answered by a stub, and no request leaving the machine.

async function openMode(browser, mode) {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  await page.setViewport({ width: 900, height: 800 });
  await page.setJavaScriptEnabled(mode === 'js');
  page.setDefaultTimeout(10_000);
  page.setDefaultNavigationTimeout(15_000);
  // `start` and `state` may differ by mode ({js, nojs}): a second authorization request
  // with more scopes, so that the consent page is shown again.
  const byMode = (v) => (v && typeof v === 'object' ? v[mode] : v);
  const ctx = { mode, context, page, hits: [], blocked: [], start: byMode(job.start), state: byMode(job.state) };
  await page.setRequestInterception(true);
  page.on('request', (req) => {
    const url = req.url();
    if (!/^https?:/.test(url)) return req.continue();
    if ((job.callbacks ?? []).some((p) => url.startsWith(p))) {
      ctx.hits.push({ url, method: req.method(), body: req.postData() ?? '' });
      return req.respond({ status: 200, contentType: 'text/html; charset=utf-8', body: STUB });
    }
    const host = new URL(url).hostname;
    if (host !== '127.0.0.1' && host !== 'localhost') {
      ctx.blocked.push(url);
      return req.abort('blockedbyclient');
    }
    return req.continue();
  });
  // A Content-Security-Policy refusal (say, form-action on the redirect a form's answer
  // makes) ends the flow at once, with the browser's own words.
  ctx.refused = new Promise((resolve) => {
    page.on('console', (m) => {
      log(`  console.${m.type()}: ${m.text()}`);
      if (/Content Security Policy directive: "form-action/.test(m.text())) resolve(m.text());
    });
  });
  page.on('pageerror', (e) => log(`  page error: ${e.message}`));
  page.on('response', (r) => {
    if (r.status() >= 400) log(`  HTTP ${r.status()} for ${r.request().method()} ${r.url()}`);
  });
  return ctx;
}

async function go(ctx, url) {
  log(`  GET ${url}`);
  return ctx.page.goto(url, { waitUntil: 'load' });
}

// Clicks the button a person would (found by its accessible name) and waits for the page
// that follows.
async function press(ctx, name) {
  const selector = `::-p-aria([name="${name}"][role="button"])`;
  const button = await ctx.page.$(selector);
  if (!button) fail(`no button named "${name}" on ${ctx.page.url()}`);
  log(`  click "${name}"`);
  const navigated = Promise.all([
    ctx.page.waitForNavigation({ waitUntil: 'load' }),
    button.click(),
  ]).then(([resp]) => ({ resp }));
  navigated.catch(() => {}); // a refusal wins the race; the navigation then never comes
  const refused = ctx.refused.then((why) => ({ why }));
  const { resp, why } = await Promise.race([navigated, refused]);
  if (why) {
    fail(`Chromium refused what "${name}" on ${ctx.page.url()} led to: ${why}\n  (Chromium checks a form's CSP form-action against the redirects its answer makes too)`);
  }
  return resp;
}

// Types into the control named `name` (its `name` attribute), as a person would.
async function type(ctx, name, text) {
  const field = await ctx.page.$(`input[name="${name}"]:not([type=hidden])`);
  if (!field) fail(`no input named "${name}" on ${ctx.page.url()}`);
  await field.click({ count: 3 });
  await ctx.page.keyboard.press('Backspace');
  await field.type(text);
}

// ---------------------------------------------------------------------------------------
// What a person sees.

// Every visible form control and its accessible name, as a person with a screen reader
// gets it: aria-labelledby, aria-label, an associated <label>, a button's text.
function controlsInPage() {
  const visible = (el) => el.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true });
  const text = (el) => (el?.innerText ?? el?.textContent ?? '').replace(/\s+/g, ' ').trim();
  const out = [];
  for (const el of document.querySelectorAll('input, select, textarea, button')) {
    if (el.type === 'hidden' || !visible(el)) continue;
    let label = '';
    let how = '';
    const by = el.getAttribute('aria-labelledby');
    if (by) {
      label = by.split(/\s+/).map((id) => text(document.getElementById(id))).join(' ').trim();
      how = 'aria-labelledby';
    }
    if (!label && el.getAttribute('aria-label')) {
      label = el.getAttribute('aria-label').trim();
      how = 'aria-label';
    }
    if (!label && el.labels && el.labels.length) {
      label = [...el.labels].map(text).join(' ').trim();
      how = 'label';
    }
    if (!label && (el.tagName === 'BUTTON' || ['submit', 'button', 'reset'].includes(el.type))) {
      label = el.tagName === 'BUTTON' ? text(el) : (el.value ?? '').trim();
      how = 'content';
    }
    out.push({
      tag: el.tagName.toLowerCase(),
      type: el.type ?? '',
      name: el.name ?? '',
      id: el.id ?? '',
      label,
      how,
      html: el.outerHTML.slice(0, 160),
    });
  }
  return out;
}

function formsInPage() {
  return [...document.forms].map((f) => {
    const csrf = f.querySelector('input[type="hidden"][name="csrf"]');
    return {
      method: f.method,
      action: f.action,
      csrf: csrf ? csrf.value : null,
      html: f.outerHTML.slice(0, 200),
    };
  });
}

function pageFacts() {
  const visible = (el) => el.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true });
  const text = (el) => (el?.innerText ?? '').replace(/\s+/g, ' ').trim();
  const active = document.activeElement;
  return {
    url: location.href,
    title: document.title,
    h1: [...document.querySelectorAll('h1')].filter(visible).map(text),
    body: text(document.body),
    alerts: [...document.querySelectorAll('[role="alert"]')].filter(visible).map(text),
    focus: active && active !== document.body ? active.id || active.name || active.tagName : null,
  };
}

async function axeCheck(ctx) {
  // Evaluated over CDP rather than added as a <script>: the pages' CSP (script-src with one
  // hash) refuses an inline script, and with JavaScript off a script element never runs.
  // axe-core waits on timers, which never fire while scripts are off: without JavaScript,
  // they are let run for the check only, once the page's own checks are done (the page's
  // scripts, if any, were skipped at load and stay so).
  if (ctx.mode === 'nojs') await ctx.page.setJavaScriptEnabled(true);
  try {
    await axeRun(ctx);
  } finally {
    if (ctx.mode === 'nojs') await ctx.page.setJavaScriptEnabled(false);
  }
}

async function axeRun(ctx) {
  const present = await ctx.page.evaluate(() => typeof window.axe === 'object');
  if (!present) await ctx.page.evaluate(AXE);
  const violations = await ctx.page.evaluate(async () => {
    const r = await window.axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa'] },
      resultTypes: ['violations'],
    });
    return r.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.map((n) => ({ target: n.target.join(' '), html: n.html, why: n.failureSummary })),
    }));
  });
  if (violations.length) {
    const lines = violations.flatMap((v) => [
      `  ${v.id} (${v.impact}): ${v.help}`,
      ...v.nodes.map((n) => `    at ${n.target}: ${n.html}\n      ${(n.why ?? '').replace(/\n/g, '\n      ')}`),
    ]);
    fail(`axe-core found ${violations.length} violation(s) (wcag2a, wcag2aa):\n${lines.join('\n')}`);
  }
}

async function screenshot(ctx, name = job.page) {
  mkdirSync(job.screenshots, { recursive: true });
  const path = join(job.screenshots, `${name}-${ctx.mode}.png`);
  await ctx.page.screenshot({ path, fullPage: true });
  log(`  screenshot ${path}`);
}

// Checks the page against `expect` (see the job), then axe, then takes the screenshot.
async function checkPage(ctx, resp, expect) {
  const { page } = ctx;
  const status = resp?.status();
  if (expect.status !== undefined && status !== expect.status) {
    fail(`expected HTTP ${expect.status} for ${page.url()}, got ${status}`);
  }
  const facts = await page.evaluate(pageFacts);
  log(`  page: ${status} ${facts.url} "${facts.title}" h1=${JSON.stringify(facts.h1)}`);
  if (expect.heading !== undefined) {
    if (!facts.h1.includes(expect.heading)) {
      fail(`expected the heading "${expect.heading}", the page shows ${JSON.stringify(facts.h1)}\n  text: ${facts.body}`);
    }
  }
  for (const t of expect.texts ?? []) {
    if (!facts.body.includes(t)) fail(`expected to see "${t}"; the page says: ${facts.body}`);
  }
  if (expect.alert) {
    if (!facts.alerts.some((a) => a.includes(expect.alert))) {
      fail(`expected the error "${expect.alert}" in a visible role="alert"; alerts: ${JSON.stringify(facts.alerts)}`);
    }
  } else if (facts.alerts.length) {
    fail(`unexpected error shown: ${JSON.stringify(facts.alerts)}`);
  }

  const controls = await page.evaluate(controlsInPage);
  const unlabelled = controls.filter((c) => !c.label);
  if (unlabelled.length) {
    fail(`form control(s) without an accessible label (no <label for>, aria-label or aria-labelledby):\n${unlabelled.map((c) => `  ${c.html}`).join('\n')}`);
  }
  for (const [name, label] of Object.entries(expect.controls ?? {})) {
    const c = controls.find((x) => x.name === name && x.tag !== 'button');
    if (!c) fail(`no visible control named "${name}"; controls: ${JSON.stringify(controls.map((x) => x.name || x.label))}`);
    if (!c.label.includes(label)) fail(`the "${name}" control is labelled "${c.label}", expected "${label}"`);
    if (c.how !== 'label' && c.how !== 'aria-labelledby' && c.how !== 'aria-label') {
      fail(`the "${name}" control has no label of its own (${c.how})`);
    }
  }
  for (const b of expect.buttons ?? []) {
    if (!controls.some((c) => (c.tag === 'button' || c.type === 'submit') && c.label === b)) {
      fail(`no button "${b}"; buttons: ${JSON.stringify(controls.filter((c) => c.tag === 'button').map((c) => c.label))}`);
    }
  }

  const origin = new URL(page.url()).origin;
  const forms = await page.evaluate(formsInPage);
  const own = forms.filter((f) => f.method === 'post' && new URL(f.action, page.url()).origin === origin);
  for (const f of own) {
    if (!f.csrf) fail(`a form posting to ${f.action} has no CSRF field (input type=hidden name=csrf with a value):\n  ${f.html}`);
  }
  if (expect.forms !== undefined && own.length !== expect.forms) {
    fail(`expected ${expect.forms} form(s) posting back to ${origin}, found ${own.length}`);
  }

  if (expect.focus !== undefined) {
    // Autofocus happens at the first rendering update after parsing, which may follow the
    // load event: asked from here, since in-page polling needs JavaScript.
    let focus = facts.focus;
    for (let i = 0; i < 40 && focus !== expect.focus; i++) {
      await new Promise((r) => setTimeout(r, 50));
      focus = (await page.evaluate(pageFacts)).focus;
    }
    if (focus !== expect.focus) fail(`expected the focus on "${expect.focus}" (autofocus), it is on ${JSON.stringify(focus)}`);
  }
  if (ctx.blocked.length) fail(`the page tried to load from outside: ${ctx.blocked.join(', ')}`);
  await axeCheck(ctx);
  await screenshot(ctx);
}

// The browser was sent back to a client: the query (or form_post body) it brought.
async function callback(ctx, prefix, { method, ...want } = {}) {
  for (let i = 0; i < 100 && !ctx.hits.some((h) => h.url.startsWith(prefix)); i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  const hit = ctx.hits.find((h) => h.url.startsWith(prefix));
  if (!hit) fail(`never sent back to ${prefix}; the page is ${ctx.page.url()}: ${(await ctx.page.evaluate(pageFacts)).body}`);
  const params = Object.fromEntries(
    hit.method === 'POST' ? new URLSearchParams(hit.body) : new URL(hit.url).searchParams,
  );
  log(`  back at the client (${hit.method}): ${JSON.stringify(Object.keys(params))}`);
  for (const [k, v] of Object.entries(want)) {
    if (v === undefined) continue;
    if (v === true ? !params[k] : params[k] !== v) {
      fail(`at the client, expected ${k}=${v === true ? '<present>' : v}; got ${JSON.stringify(params)}`);
    }
  }
  if (method && hit.method !== method) fail(`expected a ${method} to the client, got ${hit.method}`);
  return params;
}

// Signs in on our login form as the job's user (or `user`/`password`), returns the response.
async function signIn(ctx, user = job.user, password = job.password) {
  await type(ctx, 'username', user);
  if (password !== undefined) await type(ctx, 'password', password);
  return press(ctx, 'Sign in');
}

// From a consent page (if one is shown), allows, and checks the code came back.
async function allowAndReturn(ctx, resp) {
  const facts = await ctx.page.evaluate(pageFacts);
  if (facts.h1.some((h) => h.startsWith('Allow '))) await press(ctx, 'Allow');
  else if (job.consent) fail(`expected the consent page, got ${resp?.status()} ${ctx.page.url()}: ${facts.body}`);
  else if (!ctx.hits.length) log(`  (no consent page: ${resp?.status()} ${facts.h1})`);
  return callback(ctx, job.client, { code: true, state: ctx.state, iss: job.issuer });
}

// ---------------------------------------------------------------------------------------
// The flows, one per page.

const FLOWS = {
  // The login form, then signing in by clicks: consent, back at the client with a code.
  async login(ctx) {
    const resp = await go(ctx, ctx.start);
    await checkPage(ctx, resp, job.expect);
    await allowAndReturn(ctx, await signIn(ctx));
  },

  // A wrong password: the error, the username kept, then the right one signs in.
  async 'wrong-password'(ctx) {
    await go(ctx, ctx.start);
    const resp = await signIn(ctx, job.user, job.wrong_password);
    await checkPage(ctx, resp, job.expect);
    const kept = await ctx.page.$eval('input[name="username"]', (e) => e.value);
    if (kept !== job.user) fail(`the username was not kept after the error: "${kept}"`);
    const pw = await ctx.page.$eval('input[name="password"]', (e) => e.value);
    if (pw) fail('the password field was refilled after the error');
    await allowAndReturn(ctx, await signIn(ctx));
  },

  // The connector chooser, then the upstream's login page, then back with a code.
  async 'connector-chooser'(ctx) {
    const resp = await go(ctx, ctx.start);
    await checkPage(ctx, resp, job.expect);
    const upstream = await press(ctx, job.choose);
    if (!ctx.page.url().startsWith(job.upstream)) fail(`"${job.choose}" led to ${ctx.page.url()}, not ${job.upstream}`);
    log(`  upstream: ${upstream?.status()} ${ctx.page.url()}`);
    await allowAndReturn(ctx, await signIn(ctx, job.upstream_user, undefined));
  },

  // The consent page after signing in; Deny goes back to the client with access_denied.
  async consent(ctx) {
    await go(ctx, ctx.start);
    const resp = await signIn(ctx);
    await checkPage(ctx, resp, job.expect);
    await press(ctx, 'Deny');
    await callback(ctx, job.client, { error: 'access_denied', state: ctx.state, iss: job.issuer });
  },

  // Sign in, then the logout confirmation; confirming returns to the client's
  // post_logout_redirect_uri with the state, or shows the signed-out page.
  async logout(ctx) {
    await go(ctx, ctx.start);
    await allowAndReturn(ctx, await signIn(ctx));
    const resp = await go(ctx, job.logout);
    await checkPage(ctx, resp, job.expect);
    const after = await press(ctx, 'Sign out');
    if (job.post_logout) {
      await callback(ctx, job.post_logout, { state: job.logout_state });
    } else if (job.after) {
      await checkPage(ctx, after, job.after);
    }
  },

  // The signed-out page (after confirming a logout that names no client).
  async 'signed-out'(ctx) {
    await go(ctx, ctx.start);
    await allowAndReturn(ctx, await signIn(ctx));
    await go(ctx, job.logout);
    const resp = await press(ctx, 'Sign out');
    await checkPage(ctx, resp, job.expect);
  },

  // An error page reached straight from the authorization request: never a redirect.
  async error(ctx) {
    const resp = await go(ctx, ctx.start);
    await checkPage(ctx, resp, job.expect);
    if (ctx.hits.length) fail(`an error page must not send the browser to the client: ${ctx.hits[0].url}`);
  },

  // The login form left open past its lifetime (the test moves the provider's clock).
  async expired(ctx) {
    await go(ctx, ctx.start);
    await type(ctx, 'username', job.user);
    await type(ctx, 'password', job.password);
    await pause('advance the clock past the sign-in lifetime');
    const resp = await press(ctx, 'Sign in');
    await checkPage(ctx, resp, job.expect);
    if (ctx.hits.length) fail(`sent to the client: ${ctx.hits[0].url}`);
  },

  // The login form posted with a forged CSRF token (as a cross-site form would be).
  async 'forged-csrf'(ctx) {
    await go(ctx, ctx.start);
    await type(ctx, 'username', job.user);
    await type(ctx, 'password', job.password);
    await ctx.page.$eval('input[name="csrf"]', (e) => {
      e.value = 'forged';
    });
    const resp = await press(ctx, 'Sign in');
    await checkPage(ctx, resp, job.expect);
    if (ctx.hits.length) fail(`sent to the client: ${ctx.hits[0].url}`);
  },

  // The mock IdP's login page: any username, groups and claims; back with a code.
  async 'mock-login'(ctx) {
    const resp = await go(ctx, ctx.start);
    await checkPage(ctx, resp, job.expect);
    await type(ctx, 'username', job.user);
    await type(ctx, 'groups', job.groups);
    await press(ctx, 'Sign in');
    await callback(ctx, job.client, { code: true, state: ctx.state });
  },

  // response_mode=form_post: with JavaScript the page posts itself; without, the person
  // sees a Continue button that does the same.
  async 'form-post'(ctx) {
    await go(ctx, ctx.start);
    const resp = await signIn(ctx);
    let page = resp;
    const facts = await ctx.page.evaluate(pageFacts);
    if (facts.h1.some((h) => h.startsWith('Allow '))) {
      if (ctx.mode === 'js') {
        await press(ctx, 'Allow');
      } else {
        page = await press(ctx, 'Allow');
      }
    }
    if (ctx.mode === 'nojs') {
      await checkPage(ctx, page, job.expect);
      if (ctx.hits.length) fail('the form_post page posted itself with JavaScript off');
      await press(ctx, 'Continue');
    }
    await callback(ctx, job.client, { code: true, state: ctx.state, iss: job.issuer, method: 'POST' });
  },
};

// ---------------------------------------------------------------------------------------

async function main() {
  const flow = FLOWS[job.flow];
  if (!flow) fail(`unknown flow "${job.flow}"`);
  const started = Date.now();
  mkdirSync(job.screenshots, { recursive: true });
  const browser = await puppeteer.launch({
    executablePath: job.chromium,
    headless: true,
    args: [
      ...(process.getuid?.() === 0 ? ['--no-sandbox'] : []),
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--disable-quic',
      '--no-proxy-server',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
  let mode = '-';
  try {
    for (mode of job.modes ?? ['js', 'nojs']) {
      log(`${job.page} [${mode}]`);
      const failedShot = join(job.screenshots, `${job.page}-${mode}-failed.png`);
      rmSync(failedShot, { force: true });
      const ctx = await openMode(browser, mode);
      try {
        await flow(ctx);
      } catch (e) {
        await ctx.page
          .screenshot({ path: failedShot, fullPage: true })
          .catch(() => {});
        throw e;
      } finally {
        await ctx.context.close().catch(() => {});
      }
    }
  } catch (e) {
    const why = e instanceof Failure ? e.message : e.stack;
    console.error(`FAIL ${job.page} [${mode}]: ${why}`);
    process.exitCode = 1;
  } finally {
    await browser.close().catch(() => {});
  }
  if (!process.exitCode) console.log(`ok ${job.page} (${Date.now() - started} ms)`);
}

const watchdog = setTimeout(() => {
  console.error(`FAIL ${job.page}: timed out after 90 s`);
  process.exit(3);
}, 90_000);
watchdog.unref();

main().then(
  () => process.exit(process.exitCode ?? 0),
  (e) => {
    // Before any mode ran: an unknown flow, or Chromium that would not start.
    console.error(`FAIL ${job.page}: ${e instanceof Failure ? e.message : e.stack}`);
    process.exit(1);
  },
);
