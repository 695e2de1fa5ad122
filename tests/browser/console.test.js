/* console.test.js - the web console in a real browser (Debian's chromium
 * driven by playwright-core) against a real daemon and MariaDB set up by
 * tests/integration/test_console.sh (fixture: test_admin --fixture).
 *
 *   node console.test.js BASE_URL TOKEN ARTIFACT_DIR
 *
 * Checks: the DAG grid shows each run's task states; a failed task's log
 * is readable (both attempts, text not HTML); a running task's log is
 * followed live; the models page shows versions, the metric chart and
 * sortable trials; the serving page draws its charts and the drift
 * threshold; a promotion through the Admin page changes /metadata.
 * Screenshots of every page go to ARTIFACT_DIR.  Prints "ok NAME" /
 * "not ok NAME" and "check: N passed, N failed" (tests/run.sh reads it).
 */
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');
const { chromium } = require('playwright-core');

const [BASE, TOKEN, ARTIFACTS] = process.argv.slice(2);
const MODEL = 'credit_score_classification';
const DAG = 'it_etl';
const RUN_OK = 'scheduled__2025-08-30T03:00:00+09:00';
const RUN_BAD = 'scheduled__2025-08-31T03:00:00+09:00';
const RUN_LIVE = 'manual__2025-09-05T00:00:00+09:00';

let passed = 0, failed = 0;
const pageErrors = [];

function check(cond, what) {
  if (!cond) throw new Error('check failed: ' + what);
}

async function test(name, fn) {
  try {
    await fn();
    passed++;
    console.log('ok ' + name);
  } catch (e) {
    failed++;
    console.log('not ok ' + name);
    console.log('  ' + (e && e.stack || e).toString().split('\n').slice(0, 4)
      .join('\n  '));
  }
}

function cell(run, task) {
  return `table.grid[data-dag="${DAG}"] .cell[data-run="${run}"]` +
    `[data-task="${task}"]`;
}

/* A statement on the test database (the mariadb client of mariadb-server). */
function sql(stmt) {
  const e = process.env;
  execFileSync('mariadb', ['-h', e.MLOPSD_DATABASE_HOST || '127.0.0.1',
    '-P', e.MLOPSD_DATABASE_PORT || '3306', '-u', e.MLOPSD_DATABASE_USER,
    '-p' + e.MLOPSD_DATABASE_PASSWORD, e.MLOPSD_DATABASE_NAME, '-e', stmt],
  { stdio: ['ignore', 'pipe', 'pipe'] });
}

async function json(p, opts) {
  const r = await fetch(BASE + p, opts);
  return { status: r.status, body: await r.json() };
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(ARTIFACTS, name + '.png'),
    fullPage: true });
}

(async () => {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'mlopsd-chromium-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
      '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
    viewport: { width: 1360, height: 900 },
  });
  const page = ctx.pages()[0] || await ctx.newPage();
  page.setDefaultTimeout(15000);
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') pageErrors.push(m.text()); });
  /* nothing may be fetched from anywhere but the daemon */
  const foreign = [];
  page.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith(BASE) && !u.startsWith('data:')) foreign.push(u);
  });

  await test('dag_grid_shows_task_states', async () => {
    await page.goto(BASE + '/#/dags');
    await page.waitForSelector(cell(RUN_BAD, 'transform'));
    const st = async (run, task) =>
      page.getAttribute(cell(run, task), 'data-state');
    check(await st(RUN_OK, 'extract') === 'success', 'ok run: extract success');
    check(await st(RUN_OK, 'load') === 'success', 'ok run: load success');
    check(await st(RUN_BAD, 'extract') === 'success', 'bad run: extract success');
    check(await st(RUN_BAD, 'transform') === 'failed', 'bad run: transform failed');
    check(await st(RUN_BAD, 'load') === 'upstream_failed',
      'bad run: load upstream_failed');
    check(await st(RUN_LIVE, 'transform') === 'running',
      'live run: transform running');
    check(await st(RUN_LIVE, 'load') === 'scheduled', 'live run: load scheduled');
    /* the failed cell is drawn in the failed colour */
    const bg = await page.$eval(cell(RUN_BAD, 'transform'),
      (el) => getComputedStyle(el).backgroundColor);
    check(bg === 'rgb(214, 58, 47)', 'failed colour, got ' + bg);
    const runState = await page.getAttribute(
      `table.grid[data-dag="${DAG}"] .runbar[data-run="${RUN_BAD}"]`, 'data-state');
    check(runState === 'failed', 'run bar state');
    const sched = await page.textContent(`section[data-dag="${DAG}"] .kv`);
    check(sched.includes('0 3 * * *') && sched.includes('Asia/Seoul'),
      'schedule and next run shown: ' + sched);
    await shot(page, 'console-dags');
  });

  await test('failed_task_log_is_readable', async () => {
    await page.click(cell(RUN_BAD, 'transform'));
    await page.waitForSelector('#drawer:not([hidden]) #log-content');
    await page.waitForFunction(() => document.querySelector('#log-content')
      .textContent.includes('task failed after 2 attempts'));
    const text = await page.textContent('#log-content');
    check(text.includes('ValueError: column credit_mix has <b>no</b> values'),
      'stderr line shown as text');
    check(await page.$('#log-content b') === null, 'log text not parsed as HTML');
    const info = await page.textContent('#ti-info');
    check(info.includes('failed'), 'state in the drawer');
    /* the first attempt */
    await page.click('#attempt-tabs button[data-try="1"]');
    await page.waitForFunction(() => document.querySelector('#log-content')
      .textContent.includes('ZeroDivisionError: division by zero'));
    await shot(page, 'console-task-log');
    await page.click('#drawer-close');
  });

  await test('running_task_log_followed_live', async () => {
    await page.click(cell(RUN_LIVE, 'transform'));
    await page.waitForFunction(() => document.querySelector('#log-content') &&
      document.querySelector('#log-content').textContent
        .includes('transform: started'));
    check((await page.textContent('#log-follow')).includes('following live'),
      'follow indicator');
    const line = 'progress line written at ' + Date.now();
    sql("INSERT INTO task_log (run_id, task_id, try_number, stream, line) " +
      `VALUES ('${RUN_LIVE}', 'transform', 1, 'stdout', '${line}')`);
    await page.waitForFunction((l) => document.querySelector('#log-content')
      .textContent.includes(l), line, { timeout: 15000 });
    await page.click('#drawer-close');
  });

  await test('models_page', async () => {
    await page.goto(BASE + '/#/models/' + MODEL);
    await page.waitForSelector('#versions tbody tr[data-version="2"]');
    const prod = await page.textContent('[data-field="production"]');
    check(prod.includes('v1'), 'production v1 before the promotion: ' + prod);
    check(await page.$('#versions tr.prod[data-version="1"]') !== null,
      'v1 row marked production');
    check(await page.$('#metric-chart svg path[data-series="accuracy"]') !== null,
      'selection metric chart drawn');
    await page.waitForSelector('#trials-table tbody tr');
    const rows = await page.$$('#trials-table tbody tr');
    check(rows.length === 2, 'two trials');
    /* sortable: accuracy descending first, ascending after a click */
    const firstRun = async () => page.textContent(
      '#trials-table tbody tr:first-child td:first-child');
    const before = await firstRun();
    await page.click('#trials-table th[data-key="accuracy"]');
    const after = await firstRun();
    check(before !== after, 'sorting by accuracy changes the order');
    const deps = await page.textContent('#deployments');
    check(deps.includes('deploy'), 'deployment history shown');
    await shot(page, 'console-models');
  });

  await test('serving_page', async () => {
    const lines = fs.readFileSync((process.env.MLOPSD_SHARED || '/work/shared') + '/data/credit/predict_requests.jsonl',
      'utf8').split('\n').filter(Boolean).slice(0, 60);
    let ok = 0;
    for (const l of lines) {
      const r = await fetch(BASE + '/predict', { method: 'POST',
        headers: { 'Content-Type': 'application/json' }, body: l });
      if (r.status === 200) ok++;
      await r.arrayBuffer();
    }
    check(ok === lines.length, 'predictions answered: ' + ok);
    await new Promise((r) => setTimeout(r, 2500)); /* a few samples */
    await page.goto(BASE + '/#/serving');
    await page.waitForSelector('[data-tile="rps"]');
    await page.waitForSelector('#serving-charts svg path[data-series="requests/s"]');
    const items = await page.textContent('[data-tile="items"] .v');
    check(Number(items.replace(/\D/g, '')) >= ok, 'total predictions ' + items);
    check(await page.$('#serving-charts svg path[data-series="p99"]') !== null,
      'latency chart');
    await page.waitForSelector('#drift-chart svg line.threshold',
      { state: 'attached' });
    const thr = await page.getAttribute('#drift-chart svg line.threshold',
      'data-threshold');
    check(thr === '0.2', 'drift threshold 0.2, got ' + thr);
    check(await page.$('#drift-chart svg path[data-series="annual_income"]') !== null,
      'drift per feature');
    await shot(page, 'console-serving');
  });

  await test('promotion_through_console_changes_metadata', async () => {
    const m0 = await json('/metadata');
    check(m0.body.model_version === '1', 'serving v1 first');
    await page.goto(BASE + '/#/admin');
    await page.fill('#token-input', 'not-the-token');
    await page.click('#token-form button[type="submit"]');
    await page.waitForFunction(() => document.querySelector('#token-msg')
      .textContent.includes('not the admin token'));
    await page.fill('#token-input', TOKEN);
    await page.click('#token-form button[type="submit"]');
    await page.waitForSelector('#promote-form');
    await page.waitForSelector('#promote-version option[value="2"]',
      { state: 'attached' });
    await page.selectOption('#promote-model', MODEL);
    await page.selectOption('#promote-version', '2');
    await page.click('#promote-btn');
    await page.waitForFunction(() => document.querySelector('#promote-msg')
      .textContent.includes('v2'));
    const msg = await page.textContent('#promote-msg');
    check(!/error/i.test(msg), 'promotion message: ' + msg);
    const m1 = await json('/metadata');
    check(m1.body.model_version === '2', '/metadata after the promotion: ' +
      m1.body.model_version);
    /* a run triggered from the form */
    await page.selectOption('#trigger-dag', DAG);
    await page.fill('#trigger-date', '2025-09-10');
    await page.fill('#trigger-conf', '{"source": "browser test"}');
    await page.click('#trigger-form button[type="submit"]');
    await page.waitForFunction(() => document.querySelector('#trigger-msg')
      .textContent.includes('Queued'));
    const runs = await json('/api/v2/dags/' + DAG + '/dagRuns',
      { headers: { Authorization: 'Bearer ' + TOKEN } });
    check(runs.body.dag_runs.some((r) => r.conf && r.conf.source === 'browser test'),
      'triggered run listed with its conf');
    await shot(page, 'console-admin');
    /* the models page now says v2 */
    await page.goto(BASE + '/#/models/' + MODEL);
    await page.waitForSelector('[data-field="production"]');
    const prod = await page.textContent('[data-field="production"]');
    check(prod.includes('v2'), 'models page after the promotion: ' + prod);
    await shot(page, 'console-models-after-promotion');
  });

  await test('no_page_errors_and_nothing_fetched_from_outside', async () => {
    check(pageErrors.length === 0, 'page errors: ' + pageErrors.join(' | '));
    check(foreign.length === 0, 'foreign requests: ' + foreign.join(' '));
  });

  await ctx.close();
  fs.rmSync(profile, { recursive: true, force: true });
  console.log('check: ' + passed + ' passed, ' + failed + ' failed');
  process.exit(failed ? 1 : 0);
})().catch((e) => {
  console.log('not ok browser_session');
  console.log('  ' + (e && e.stack || e));
  console.log('check: ' + passed + ' passed, ' + (failed + 1) + ' failed');
  process.exit(1);
});
