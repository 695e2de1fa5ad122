/* console.test.js - the web console in a real browser (Debian's chromium
 * driven by playwright-core) against a real daemon and MariaDB set up by
 * tests/integration/test_console.sh (fixture: test_admin --fixture).
 *
 *   node console.test.js BASE_URL TOKEN ARTIFACT_DIR REGISTRY_DIR
 *
 * Checks: the DAG grid shows each run's task states; a failed task's log
 * is readable (both attempts, text not HTML); a running task's log is
 * followed live; the models page shows versions, the metric chart (ticks
 * only at versions that exist) and sortable trials; a model with long run
 * ids and many parameters fits the page (ids shortened with the full value
 * on hover, parameters in a collapsed cell); the serving page draws its
 * charts with distinct time ticks, the drift chart draws features only
 * (never the report's settings), and a drift report with too few rows is
 * said in words; sparse series are dots with a "N samples so far" note;
 * a promotion through the Admin page changes /metadata; no page scrolls
 * sideways at 1280 and 1400 px.  Screenshots of every page go to
 * ARTIFACT_DIR.  Prints "ok NAME" / "not ok NAME" and "check: N passed, N
 * failed" (tests/run.sh reads it).
 *
 * REGISTRY_DIR is the fixture's registry: a second model with a CT run's
 * long ids is written there as plain files (docs/registry.md's layout).
 */
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');
const { chromium } = require('playwright-core');

const [BASE, TOKEN, ARTIFACTS, REGISTRY] = process.argv.slice(2);
const MODEL = 'credit_score_classification';
/* one version, a nightly CT run's long ids, twelve trials, many params */
const WIDE = 'credit_score_wide';
const WIDE_RUN = 'scheduled__2025-09-02T03_00_00_09_00_credit_score_ct_nightly';
const LONG_PARAM = '[[0,1,2,3,4,5],[6,7,8,9,10,11,12,13,14,15,16,17,18,19,20]]';
/* keys of a drift report that are settings, not features */
const DRIFT_SETTINGS = ['window', 'min_rows', 'threshold', 'bad_rows', 'worst',
  'features'];
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

/* The wide model: version 1 of MODEL copied (model, preprocessing,
 * reference), with the meta.json and trial records of a nightly CT run. */
function makeWideModel() {
  const src = path.join(REGISTRY, MODEL, 'versions', '1');
  const dir = path.join(REGISTRY, WIDE);
  const dst = path.join(dir, 'versions', '1');
  fs.mkdirSync(dst, { recursive: true });
  for (const f of fs.readdirSync(src))
    if (f !== 'meta.json') fs.copyFileSync(path.join(src, f), path.join(dst, f));
  const meta = JSON.parse(fs.readFileSync(path.join(src, 'meta.json'), 'utf8'));
  meta.name = WIDE;
  meta.dag_run_id = WIDE_RUN;
  meta.best_run = WIDE_RUN + '-t07';
  meta.trial_count = 12;
  meta.params = { objective: 'multi:softprob', num_class: '3',
    max_depth: '6', eta: '0.1', min_child_weight: '2', subsample: '0.8',
    colsample_bytree: '0.8', gamma: '0.5', lambda: '1.5', alpha: '0.25',
    tree_method: 'hist', interaction_constraints: LONG_PARAM, seed: '7' };
  meta.metrics = { accuracy: 0.8123, f1_macro: 0.8011, logloss: 0.5123,
    precision_macro: 0.8055, recall_macro: 0.7987, balanced_accuracy: 0.7987,
    top2_accuracy: 0.9611 };
  fs.writeFileSync(path.join(dst, 'meta.json'), JSON.stringify(meta, null, 2));
  for (let i = 1; i <= 12; i++) {
    const run = path.join(dir, 'runs', WIDE_RUN + '-t' + String(i).padStart(2, '0'));
    fs.mkdirSync(run, { recursive: true });
    fs.writeFileSync(path.join(run, 'params.json'), JSON.stringify({
      max_depth: String(3 + i % 4), eta: ['0.05', '0.1', '0.3'][i % 3],
      min_child_weight: String(1 + i % 2), colsample_bytree: ['0.8', '1'][i % 2],
      interaction_constraints: LONG_PARAM }));
    fs.writeFileSync(path.join(run, 'metrics.json'), JSON.stringify({
      accuracy: 0.7 + i / 100, f1_macro: 0.69 + i / 100, logloss: 0.6 - i / 100,
      precision_macro: 0.7, recall_macro: 0.69 }));
  }
  fs.mkdirSync(path.join(dir, 'aliases'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'aliases', 'production'), '1\n');
}

/* A drift report as the drift task writes it (docs/monitoring.md). */
function driftRow(model, rows, verdict, psis, ago) {
  const features = {};
  let max = null, worst = '';
  for (const f of Object.keys(psis)) {
    features[f] = { psi: psis[f], value_psi: psis[f], missing_psi: 0,
      kind: 'numeric', missing_ref: 0, missing_live: 0, top_bin: '[0, 1)',
      top_ref: 0.1, top_live: 0.2 };
    if (max === null || psis[f] > max) { max = psis[f]; worst = f; }
  }
  const scores = JSON.stringify({ threshold: 0.2, min_rows: 100, window: 1000,
    bad_rows: 0, worst, features });
  sql('INSERT INTO drift_report (model, version, window_rows, scores, ' +
    `max_score, verdict, created_at) VALUES ('${model}', 1, ${rows}, ` +
    `'${scores}', ${max === null ? 'NULL' : max}, '${verdict}', ` +
    `UTC_TIMESTAMP(6) - INTERVAL ${ago} SECOND)`);
}

/* What a chart box draws: series (and how many points each), x tick
 * labels, the note under it, whether any SVG is there. */
async function drawn(page, sel) {
  return page.$eval(sel, (box) => ({
    svg: box.querySelectorAll('svg').length,
    series: [...box.querySelectorAll('svg g.series')].map((g) => ({
      name: g.dataset.series, points: g.querySelectorAll('circle.pt').length,
      line: g.querySelector('path') !== null })),
    xticks: [...box.querySelectorAll('svg text.xtick')].map((t) => t.textContent),
    note: (box.querySelector('.chart-note') || {}).textContent || '',
    text: box.textContent,
  }));
}

const distinct = (a) => new Set(a).size === a.length;

/* no horizontal scrolling of the whole page */
async function noOverflow(page, what) {
  const w = await page.evaluate(() => ({
    sw: document.documentElement.scrollWidth, iw: window.innerWidth,
    wide: [...document.querySelectorAll('body *')].filter((el) =>
      el.getBoundingClientRect().right > window.innerWidth + 0.5 &&
      !el.closest('[hidden]') && getComputedStyle(el).position !== 'fixed')
      .slice(0, 3).map((el) => el.tagName + '.' + el.className + '#' + el.id) }));
  check(w.sw <= w.iw, what + ': page scrolls sideways, scrollWidth ' + w.sw +
    ' > innerWidth ' + w.iw + ' (' + w.wide.join(', ') + ')');
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(ARTIFACTS, name + '.png'),
    fullPage: true });
}

(async () => {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  makeWideModel();
  /* the served model: its fixture reports (the old flat scores), one
   * report as the drift task writes it now, and a newer one on too few
   * rows; the wide model: one report on too few rows only */
  driftRow(MODEL, 1000, 'ok', { age: 0.09, annual_income: 0.18,
    credit_mix: 0.02, num_bank_accounts: 0.07 }, 1800);
  driftRow(MODEL, 12, 'insufficient_data', { age: 1.9, annual_income: 3.2,
    credit_mix: 0.7, num_bank_accounts: 2.5 }, 60);
  driftRow(WIDE, 3, 'insufficient_data', { age: 4.1, annual_income: 6.3 }, 120);
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
  page.on('console', (m) => {
    /* the prediction log endpoint does not exist yet: its 404 is expected
     * (trust_views_say_not_recorded checks what the page says instead) */
    if (m.type() === 'error' && !/\/api\/v2\/models\/[^/]+\/predictions/
      .test((m.location() || {}).url || '')) pageErrors.push(m.text());
  });
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
    const mc = await drawn(page, '#metric-chart');
    check(mc.series.length === 1 && mc.series[0].name === 'accuracy' &&
      mc.series[0].points === 2 && mc.series[0].line,
    'selection metric chart: one line through two versions: ' +
      JSON.stringify(mc.series));
    check(JSON.stringify(mc.xticks) === '["v1","v2"]',
      'version ticks only at versions that exist: ' + mc.xticks);
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
    /* the shadow challenger card: the comparison, or why there is none */
    await page.waitForSelector('#shadow [data-field^="shadow-"]');
    const sh = await page.textContent('#shadow');
    check(/No challenger: alias staging is not set|Staging is production|shadow v\d/
      .test(sh), 'shadow challenger card: ' + sh);
    await shot(page, 'console-models');
  });

  await test('trust_views_say_not_recorded', async () => {
    /* the fixture's versions and deployment rows carry no gate numbers,
     * calibration or importance: each view says so, nothing is drawn */
    await page.goto(BASE + '/#/models/' + MODEL);
    await page.waitForSelector('#trust [data-field="calibration"]');
    check((await page.textContent('#trust [data-missing="calibration"]')) ===
      'Calibration not recorded for this version.', 'calibration missing');
    check((await page.textContent('#trust [data-missing="importance"]')) ===
      'Feature importance not recorded for this version.', 'importance missing');
    check(await page.$('#trust svg') === null, 'no diagram without bins');
    await page.click('#deployments tr[data-deployment]');
    await page.waitForSelector('#deployments .decision');
    const gate = await page.textContent('#deployments .decision [data-missing="gate"]');
    check(gate.startsWith('Gate numbers not recorded for this decision'),
      'gate missing: ' + gate);
    const side = await page.$$eval('#deployments .decision .side-tbl thead th',
      (x) => x.map((e) => e.textContent));
    check(side.join('|') === '|v1 · candidate', 'first deploy: only the ' +
      'version deployed: ' + side.join('|'));
    await page.goto(BASE + '/#/serving');
    await page.waitForSelector('#predictions [data-missing="predictions"]');
    const pr = await page.textContent('#predictions');
    check(pr.includes('not served by this daemon\'s admin API'),
      'prediction log without an endpoint: ' + pr);
  });

  await test('models_page_fits_long_ids_and_params', async () => {
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.goto(BASE + '/#/models/' + WIDE);
    await page.waitForSelector('#versions tbody tr[data-version="1"]');
    await page.waitForSelector('#trials-table tbody tr');
    const mc = await drawn(page, '#metric-chart');
    check(JSON.stringify(mc.xticks) === '["v1"]',
      'one version, one tick (not v0..v2): ' + mc.xticks);
    check(mc.series[0].points === 1 && !mc.series[0].line &&
      mc.note === '1 version so far.', 'one version: a dot and a note: ' +
      JSON.stringify(mc));
    /* params: collapsed, all of them one click away */
    const sum = await page.textContent('#versions details[data-fold="param"] summary');
    check(sum.startsWith('11 params'), 'params summary: ' + sum);
    check(await page.$eval('#versions details[data-fold="param"]', (d) => !d.open),
      'params collapsed');
    await noOverflow(page, 'models ' + WIDE + ' (params closed)');
    await page.click('#versions details[data-fold="param"] summary');
    const dd = await page.$$eval('#versions details[data-fold="param"] dd',
      (x) => x.map((e) => e.textContent));
    check(dd.includes(LONG_PARAM), 'the long parameter in full when opened');
    const more = await page.textContent('#versions details[data-fold="metric"] summary');
    check(more.startsWith('3 metrics'), 'metrics past four folded: ' + more);
    const heads = await page.$$eval('#versions th', (x) => x.map((e) => e.textContent));
    check(heads.slice(2, 6).join() === 'accuracy,f1_macro,logloss,precision_macro',
      'selection metric first, three more as columns: ' + heads);
    /* ids: shortened, full on hover */
    const runs = await page.$$eval('#trials-table tbody tr td:first-child .id',
      (x) => x.map((e) => ({ text: e.textContent, title: e.title,
        full: e.dataset.full })));
    check(runs.length === 12, 'twelve trials: ' + runs.length);
    check(runs.every((r) => r.text.includes('…') && r.title === r.full &&
      r.full.startsWith(WIDE_RUN) && r.text.length < r.full.length),
    'run ids shortened with the full id as tooltip: ' + JSON.stringify(runs[0]));
    check(distinct(runs.map((r) => r.text)), 'shortened ids still distinct');
    const lin = await page.$eval('#versions td.lineage .wrap-id',
      (e) => ({ text: e.textContent, lines: e.getClientRects().length }));
    check(lin.text === WIDE_RUN && lin.lines >= 2,
      'lineage run id whole, wrapped over lines: ' + JSON.stringify(lin));
    /* the tables fit their cards: nothing hidden behind a scrollbar */
    for (const t of ['#versions', '#trials-table', '#deployments']) {
      const f = await page.$eval(t, (el) => ({ w: el.scrollWidth,
        c: el.parentElement.clientWidth, cols: [...el.querySelectorAll(
          'tbody tr:first-child td')].map((td) => Math.round(td.offsetWidth)) }))
        .catch(() => null);
      if (t === '#deployments' && f === null) continue;
      check(f && f.w <= f.c, t + ' fits its card: ' + JSON.stringify(f));
    }
    await noOverflow(page, 'models ' + WIDE + ' (params open)');
    await shot(page, 'console-models-wide-1280');
    await page.setViewportSize({ width: 1360, height: 900 });
  });

  await test('serving_page', async () => {
    const lines = fs.readFileSync(process.env.MLOPSD_SHARED + '/data/credit/predict_requests.jsonl',
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
    await page.waitForSelector('#chart-rps svg g[data-series="requests/s"]');
    const items = await page.textContent('[data-tile="items"] .v');
    check(Number(items.replace(/\D/g, '')) >= ok, 'total predictions ' + items);
    /* every time axis: distinct clock labels; a series with fewer than
     * three samples is dots and a note, never one repeated label */
    for (const id of ['#chart-rps', '#chart-latency', '#chart-classes',
      '#chart-backlog']) {
      const c = await drawn(page, id);
      check(c.svg === 1, id + ' drawn');
      check(c.xticks.length >= 1 && distinct(c.xticks),
        id + ' tick labels distinct: ' + c.xticks.join(' | '));
      check(c.xticks.every((l) => /^([A-Z][a-z]{2} \d{1,2} )?\d{2}:\d{2}(:\d{2})?$/
        .test(l)), id + ' tick labels are clock times: ' + c.xticks.join(' | '));
      c.series.forEach((sr) => check(sr.line === (sr.points !== 1),
        id + ' ' + sr.name + ': a line only through two or more points'));
    }
    const rps = await drawn(page, '#chart-rps');
    check(rps.series.map((x) => x.name).join() === 'requests/s,errors/s',
      'requests chart series: ' + rps.series.map((x) => x.name));
    const lat = await drawn(page, '#chart-latency');
    check(lat.series.map((x) => x.name).join() === 'p50,p90,p99',
      'latency series: ' + lat.series.map((x) => x.name));
    const latN = Math.max(...lat.series.map((x) => x.points));
    if (latN < 3)
      check(lat.note.startsWith(latN + (latN === 1 ? ' sample ' : ' samples ') +
        'so far'), 'latency with ' + latN + ' sample(s) says so: ' + lat.note);
    else
      check(lat.note === '', 'no sparse note with ' + latN + ' samples');
    await page.waitForSelector('#drift-chart svg line.threshold',
      { state: 'attached' });
    const thr = await page.getAttribute('#drift-chart svg line.threshold',
      'data-threshold');
    check(thr === '0.2', 'drift threshold 0.2, got ' + thr);
    const dr = await drawn(page, '#drift-chart');
    const names = dr.series.map((x) => x.name).sort();
    check(names.join() === 'age,annual_income,credit_mix,num_bank_accounts',
      'drift series are the features: ' + names);
    check(!dr.series.some((x) => DRIFT_SETTINGS.includes(x.name)),
      'no report setting drawn as a feature');
    /* 3 fixture reports + the new-format one; the 12-row report not drawn */
    check(dr.series.find((x) => x.name === 'annual_income').points === 4,
      'annual_income over four reports');
    check(dr.series.find((x) => x.name === 'num_bank_accounts').points === 1,
      'a feature in one report is one dot');
    check(/1 report with insufficient data .* not drawn/.test(dr.text),
      'the short report is named, not drawn: ' + dr.text);
    check(dr.text.includes('insufficient_data') && dr.text.includes('12'),
      'latest report verdict and rows shown');
    check(distinct(dr.xticks), 'drift ticks distinct: ' + dr.xticks.join(' | '));
    const yMax = await page.$$eval('#drift-chart svg text.ytick',
      (ts) => Math.max(...ts.map((t) => Number(t.textContent))));
    check(yMax < 1, 'PSI axis up to the features\' PSI, got ' + yMax);
    await shot(page, 'console-serving');
  });

  await test('drift_with_too_few_rows_said_in_words', async () => {
    await page.selectOption('#drift-model', WIDE);
    await page.waitForSelector(`#drift-chart[data-model="${WIDE}"]`);
    let dr = await drawn(page, '#drift-chart');
    check(dr.svg === 0, 'nothing drawn for an insufficient_data report');
    check(dr.text.includes('Not enough data to measure drift yet') &&
      dr.text.includes('compared 3 logged predictions') &&
      dr.text.includes('at least 100 (min_rows)'), 'said in words: ' + dr.text);
    for (const k of DRIFT_SETTINGS.slice(0, 4))
      check(!new RegExp('\\b' + k + '\\b').test(dr.text.replace('(min_rows)', '')),
        'setting ' + k + ' not shown as a feature');
    await shot(page, 'console-drift-insufficient');
    /* a first report on enough rows: dots, "1 report so far" */
    driftRow(WIDE, 1000, 'ok', { age: 0.04, annual_income: 0.11 }, 10);
    await page.selectOption('#drift-model', MODEL);
    await page.waitForSelector(`#drift-chart[data-model="${MODEL}"]`);
    await page.selectOption('#drift-model', WIDE);
    await page.waitForSelector(`#drift-chart[data-model="${WIDE}"] svg`);
    dr = await drawn(page, '#drift-chart');
    check(dr.series.map((x) => x.name).sort().join() === 'age,annual_income',
      'features of the one report: ' + dr.series.map((x) => x.name));
    check(dr.series.every((x) => x.points === 1 && !x.line), 'one dot each');
    check(dr.note === '1 report so far.', 'note: ' + dr.note);
    check(dr.xticks.length === 1, 'one instant, one tick: ' + dr.xticks);
    await shot(page, 'console-drift-one-report');
  });

  await test('chart_axes_for_sparse_and_long_spans', async () => {
    /* the chart code itself, on known data in the page */
    const r = await page.evaluate(() => {
      const C = window.mlopsdConsole;
      const t = Date.UTC(2026, 11, 4, 13, 54, 43);
      const box = document.createElement('div');
      document.body.appendChild(box);
      const one = C.lineChart({ x: 'time', yMin: 0, series: [
        { name: 'requests/s', points: [[t, 4]] }] });
      box.appendChild(one);
      const info = (el) => ({
        xticks: [...el.querySelectorAll('text.xtick')].map((x) => x.textContent),
        paths: el.querySelectorAll('path').length,
        dots: el.querySelectorAll('circle.pt').length,
        note: (el.querySelector('.chart-note') || {}).textContent || '' });
      const a = info(one);
      const ver = C.lineChart({ x: 'version', unit: 'version', series: [
        { name: 'accuracy', points: [[3, 0.8]] }] });
      const b = info(ver);
      const gap = C.lineChart({ x: 'version', unit: 'version', series: [
        { name: 'accuracy', points: [[2, 0.8], [5, 0.82], [9, 0.79]] }] });
      const c = info(gap);
      box.remove();
      const lab = (a0, a1) => C.timeTicks(a0, a1).map((x) => x.label);
      return { a, b, c, hour: lab(t - 3600000, t), min5: lab(t - 300000, t),
        sec4: lab(t - 4000, t), days: lab(t - 3 * 86400000, t),
        night: lab(t, t + 14 * 3600000),
        y: C.niceTicks(0, 1060, 4).ticks, y2: C.niceTicks(0, 0.31, 4).ticks };
    });
    check(r.a.xticks.length === 1 && r.a.paths === 0 && r.a.dots === 1 &&
      r.a.note === '1 sample so far.', 'one sample: one tick, one dot, a note: ' +
      JSON.stringify(r.a));
    check(JSON.stringify(r.b.xticks) === '["v3"]' && r.b.note ===
      '1 version so far.', 'one version: tick v3 only: ' + JSON.stringify(r.b));
    check(JSON.stringify(r.c.xticks) === '["v2","v5","v9"]' && r.c.paths === 1,
      'versions 2, 5, 9: three ticks, no v3/v4: ' + JSON.stringify(r.c));
    for (const k of ['hour', 'min5', 'sec4', 'days', 'night']) {
      check(r[k].length >= 2 && r[k].length <= 7 && distinct(r[k]),
        k + ': 2-7 distinct ticks: ' + r[k].join(' | '));
    }
    check(r.sec4.every((l) => /^\d{2}:\d{2}:\d{2}$/.test(l)),
      'seconds shown when ticks are seconds apart: ' + r.sec4);
    check(r.hour.every((l) => /^\d{2}:\d{2}$/.test(l)),
      'minutes when ticks are minutes apart: ' + r.hour);
    check(r.night.some((l) => /^[A-Z][a-z]{2} \d+ \d{2}:\d{2}$/.test(l)),
      'a span over midnight names the day: ' + r.night);
    check(JSON.stringify(r.y2) === '[0,0.1,0.2,0.3,0.4]',
      'round value ticks: ' + r.y2);
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

  await test('decision_shows_two_versions_side_by_side', async () => {
    /* the promotion above: v1 -> v2, both versions from the registry */
    await page.goto(BASE + '/#/models/' + MODEL);
    await page.waitForSelector('#deployments tr[data-deployment]');
    await page.click('#deployments tbody tr[data-deployment]:first-child');
    await page.waitForSelector('#deployments .decision .side-tbl');
    const t = await page.$eval('#deployments .decision .side-tbl', (el) => ({
      head: [...el.querySelectorAll('thead th')].map((e) => e.textContent),
      rows: Object.fromEntries([...el.querySelectorAll('tbody tr')].map((tr) =>
        [tr.querySelector('th').textContent, [...tr.querySelectorAll('td')]
          .map((e) => e.textContent)])) }));
    check(t.head.join('|') === '|v1 · production then|v2 · promoted',
      'columns: ' + t.head.join('|'));
    const m = await json('/api/v2/models/' + MODEL);
    const acc = (v) => m.body.versions.find((x) => x.version === v)
      .metrics.accuracy.toFixed(4);
    check(JSON.stringify(t.rows.accuracy) === JSON.stringify([acc(1), acc(2)]),
      'accuracy side by side: ' + JSON.stringify(t.rows.accuracy));
    check(JSON.stringify(t.rows.max_depth) === '["2","5"]',
      'the param that differs: ' + JSON.stringify(t.rows.max_depth));
    check(!('eta' in t.rows), 'params that are the same are not repeated');
    await shot(page, 'console-decision-v1-v2');
  });

  await test('trust_views_render_recorded_numbers', async () => {
    /* The admin API does not carry these records yet (issue 13 adds the
     * gate numbers to deployment rows, calibration and importance to
     * meta.json, reason codes to the log).  To check what the console
     * draws from them, the daemon's own answer for the model page is
     * extended here with numbers in the shape app.js reads, and the
     * prediction log endpoint is answered with two rows.  Replace with
     * the fixture's real records once issue 13 has landed. */
    const bins = [[0.35, 0.31, 40], [0.5, 0.47, 120], [0.65, 0.66, 210],
      [0.8, 0.78, 160], [0.93, 0.9, 70]].map(([c, a, n]) =>
      ({ confidence: c, accuracy: a, count: n }));
    await page.route(new RegExp('/api/v2/models/' + MODEL + '$'), async (route) => {
      const r = await route.fetch();
      const body = await r.json();
      body.versions.forEach((v) => {
        v.calibration = { method: 'temperature', temperature: 1.42,
          ece_before: 0.071, ece_after: 0.021, brier_before: 0.52,
          brier_after: 0.49, rows: 600, bins };
        /* meta.json's importance as training records it */
        v.importance = { rows: 600, split: 'gate', fields: [
          { field: 'credit_mix', mean_abs_shap: 0.77, gain: 30.1,
            gain_share: 0.56 },
          { field: 'outstanding_debt', mean_abs_shap: 0.41, gain: 12.5,
            gain_share: 0.23 },
          { field: 'age', mean_abs_shap: 0.05, gain: 1.2, gain_share: 0.02 },
          { field: 'interest_rate', mean_abs_shap: 0.35, gain: 9.9,
            gain_share: 0.19 }] };
      });
      body.deployments[0].gate = { n: 612, metric: 'accuracy',
        candidate_score: 0.8311, production_score: 0.8333, difference: -0.0022,
        interval: [-0.0145, 0.0101], level: 0.95, p_value: 0.74,
        max_regression: 0.02, method: 'paired bootstrap' };
      await route.fulfill({ response: r, json: body });
    });
    await page.route(/\/api\/v2\/models\/[^/]+\/predictions/, (route) =>
      route.fulfill({ json: { predictions: [
        { id: 2, created_at: new Date().toISOString(), customer_id: 'CUS_0x1f2e',
          model_version: 2, prediction: 'Good', confidence: 0.71,
          explain: { class: 'Good', bias: -0.12, margin: 1.05, contributions: [
            { feature: 'credit_mix', value: 0.91 },
            { feature: 'outstanding_debt', value: -0.33 },
            { feature: 'interest_rate', value: 0.59 }] } },
        { id: 1, created_at: new Date().toISOString(), customer_id: 'CUS_0x2a3b',
          model_version: 2, prediction: 'Standard', confidence: 0.55 }] } }));
    try {
      await page.goto(BASE + '/#/models/' + MODEL);
      await page.reload(); /* the same hash would not render again */
      await page.waitForSelector('#trust svg.reliability');
      const cal = await page.$eval('#trust', (el) => ({
        dots: el.querySelectorAll('svg.reliability circle.pt').length,
        ece: el.querySelector('[data-field="ece"]').textContent,
        feats: [...el.querySelectorAll('.importance .bar-row')]
          .map((r) => r.dataset.feature) }));
      check(cal.dots === 5, 'one dot per bin: ' + cal.dots);
      check(cal.ece === '0.0710 → 0.0210', 'ECE before → after: ' + cal.ece);
      check(cal.feats.join() === 'credit_mix,outstanding_debt,interest_rate,age',
        'importance strongest first: ' + cal.feats);
      await page.click('#deployments tbody tr[data-deployment]:first-child');
      await page.waitForSelector('#deployments .decision [data-field="gate"] svg');
      const g = await page.$eval('#deployments .decision [data-field="gate"]',
        (el) => ({ n: el.querySelector('[data-field="gate-n"]').textContent,
          diff: el.querySelector('[data-field="gate-diff"]').textContent,
          iv: el.querySelector('[data-field="gate-interval"]').textContent,
          maxReg: el.querySelector('line.threshold').dataset.maxRegression,
          text: el.textContent }));
      check(g.n === '612' && g.diff === '-0.0022' &&
        g.iv === '[-0.0145, +0.0101]' && g.maxReg === '0.02',
      'gate numbers: ' + JSON.stringify(g));
      check(g.text.includes('95% interval') && g.text.includes('-0.0145 > -0.0200'),
        'the rule applied: ' + g.text);
      await shot(page, 'console-trust-recorded');
      await page.goto(BASE + '/#/serving');
      await page.waitForSelector('#predictions-table tbody tr[data-prediction="2"]');
      await page.click('#predictions-table tr[data-prediction="2"]');
      const rc = await page.$$eval('#predictions-table .reason-bars .bar-row',
        (x) => x.map((r) => r.dataset.feature + ' ' +
          r.querySelector('.bar-value').textContent));
      check(rc.join() === 'credit_mix +0.9100,interest_rate +0.5900,' +
        'outstanding_debt -0.3300', 'reason codes strongest first: ' + rc);
      await page.click('#predictions-table tr[data-prediction="1"]');
      const none = await page.textContent('#predictions-table [data-missing="reasons"]');
      check(none.startsWith('No reason codes'), 'not asked: ' + none);
      await shot(page, 'console-reason-codes');
    } finally {
      await page.unrouteAll();
    }
  });

  await test('no_page_scrolls_sideways_at_1280_and_1400', async () => {
    const pages = [['dags', '/#/dags', 'table.grid'],
      ['models', '/#/models/' + MODEL, '#trials-table tbody tr'],
      ['models-wide', '/#/models/' + WIDE, '#trials-table tbody tr'],
      ['serving', '/#/serving', '#drift-chart'],
      ['admin', '/#/admin', '#promote-form']];
    for (const width of [1280, 1400]) {
      await page.setViewportSize({ width, height: 900 });
      for (const [name, url, ready] of pages) {
        await page.goto(BASE + url);
        await page.waitForSelector(ready);
        await page.waitForTimeout(300); /* late parts (trials, drift) */
        await noOverflow(page, name + ' at ' + width + ' px');
        if (width === 1280) await shot(page, 'console-' + name + '-1280');
      }
    }
    await page.setViewportSize({ width: 1360, height: 900 });
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
