/* app.js - the mlopsd web console: a small single-page app over the JSON
 * admin API (/api/v2/...).  No framework and nothing fetched from outside
 * the daemon: DOM built with createElement/textContent (data is never
 * parsed as HTML), charts drawn as hand-written SVG.
 *
 * Pages (hash routes): #/dags, #/models[/NAME], #/serving, #/admin.
 * The admin token is entered once on the Admin page and kept in
 * sessionStorage (gone when the tab closes); every request sends it as a
 * Bearer token when it is set.
 */
'use strict';

(function () {
  const TOKEN_KEY = 'mlopsd.token';
  const SVGNS = 'http://www.w3.org/2000/svg';
  const STATES = ['success', 'failed', 'running', 'queued', 'scheduled',
    'up_for_retry', 'upstream_failed', 'skipped'];
  const LIVE_STATES = ['running', 'queued', 'scheduled', 'up_for_retry'];
  const PALETTE = ['#245c7a', '#e67e22', '#2e9a44', '#8e44ad', '#c0392b',
    '#16a085', '#d4ac0d', '#7f8c8d', '#2c3e50', '#e84393'];

  /* ---- DOM helpers ---------------------------------------------------- */

  function h(tag, attrs) {
    const el = document.createElement(tag);
    setAttrs(el, attrs);
    for (let i = 2; i < arguments.length; i++) append(el, arguments[i]);
    return el;
  }

  function s(tag, attrs) {
    const el = document.createElementNS(SVGNS, tag);
    setAttrs(el, attrs);
    for (let i = 2; i < arguments.length; i++) append(el, arguments[i]);
    return el;
  }

  function setAttrs(el, attrs) {
    if (!attrs) return;
    for (const k of Object.keys(attrs)) {
      const v = attrs[k];
      if (v === undefined || v === null || v === false) continue;
      if (k === 'text') el.textContent = String(v);
      else if (k === 'class') el.setAttribute('class', v);
      else if (k.startsWith('on') && typeof v === 'function')
        el.addEventListener(k.slice(2), v);
      else if (k === 'value') el.value = v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }

  function append(el) {
    for (let i = 1; i < arguments.length; i++) {
      const kid = arguments[i];
      if (kid === undefined || kid === null || kid === false) continue;
      if (Array.isArray(kid)) kid.forEach((k) => append(el, k));
      else if (typeof kid === 'string' || typeof kid === 'number')
        el.appendChild(document.createTextNode(String(kid)));
      else el.appendChild(kid);
    }
  }

  function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); }
  const $ = (sel) => document.querySelector(sel);

  function fmtTime(iso) {
    if (!iso) return '—';
    const d = new Date(iso);
    if (isNaN(d)) return String(iso);
    /* local time, ISO order: short, sortable, one line in a table cell */
    const p2 = (n) => String(n).padStart(2, '0');
    return d.getFullYear() + '-' + p2(d.getMonth() + 1) + '-' +
      p2(d.getDate()) + ' ' + p2(d.getHours()) + ':' + p2(d.getMinutes()) +
      ':' + p2(d.getSeconds());
  }

  /* An ISO time with an offset, shown as the wall time of that offset
   * (the scheduler's zone), not the browser's. */
  function fmtZoned(iso) {
    const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})(:\d{2})?/.exec(iso || '');
    return m ? m[1] + ' ' + m[2] : (iso || '—');
  }

  function fmtNum(v, digits) {
    if (v === null || v === undefined || Number.isNaN(v)) return '—';
    if (typeof v !== 'number') return String(v);
    if (Number.isInteger(v) && digits === undefined) return v.toLocaleString();
    return v.toFixed(digits === undefined ? 4 : digits);
  }

  function fmtBytes(b) {
    if (b === null || b === undefined) return '—';
    const u = ['B', 'KiB', 'MiB', 'GiB'];
    let i = 0;
    while (b >= 1024 && i < u.length - 1) { b /= 1024; i++; }
    return (i ? b.toFixed(1) : String(b)) + ' ' + u[i];
  }

  function fmtDuration(sec) {
    if (sec === null || sec === undefined) return '—';
    if (sec < 60) return sec.toFixed(1) + ' s';
    const m = Math.floor(sec / 60);
    if (m < 60) return m + ' min ' + Math.round(sec % 60) + ' s';
    return Math.floor(m / 60) + ' h ' + (m % 60) + ' min';
  }

  function stateBadge(st) {
    return h('span', { class: 'badge state st-' + (st || 'none'),
      'data-state': st || 'none', text: st || 'none' });
  }

  /* A long id (run ids of a CT DAG run to 40+ characters) shortened in the
   * middle, where ids of one run share their text; the end (-t07) tells
   * trials apart.  The full id is the tooltip and data-full. */
  function shortId(id, max) {
    const full = String(id === null || id === undefined ? '—' : id);
    const n = max || 28;
    if (full.length <= n)
      return h('span', { class: 'mono id', 'data-full': full, text: full });
    const tail = Math.max(6, Math.floor(n / 3));
    return h('span', { class: 'mono id', title: full, 'data-full': full,
      text: full.slice(0, n - tail - 1) + '…' + full.slice(-tail) });
  }

  /* A long id shown whole, broken anywhere over lines (where the
   * distinguishing part is in the middle, like a DAG run's date). */
  function wrapId(id) {
    return h('span', { class: 'mono wrap-id', 'data-full': String(id),
      text: String(id) });
  }

  function fmtParam(v) {
    if (v === null || v === undefined) return '—';
    return typeof v === 'object' ? JSON.stringify(v) : String(v);
  }

  /* Training parameters as a collapsed cell: "7 params". */
  const PARAMS_HIDDEN = ['objective', 'num_class', 'eval_metric', 'nthread'];
  function paramsCell(params) {
    const keys = Object.keys(params || {}).filter((k) =>
      !PARAMS_HIDDEN.includes(k));
    return foldCell(keys.map((k) => [k, fmtParam(params[k])]), 'param');
  }

  /* [[key, text], ...] as a collapsed "N things" cell (all of them in
   * the tooltip), opened to one line each; its width is that of the
   * words, so a long value never widens the table */
  function foldCell(pairs, noun) {
    if (!pairs.length) return h('span', { class: 'muted', text: '—' });
    const all = pairs.map((p) => p[0] + '=' + p[1]);
    return h('details', { class: 'params', 'data-fold': noun },
      h('summary', { title: all.join('\n') }, h('span', { class: 'count',
        text: pairs.length + ' ' + noun + (pairs.length === 1 ? '' : 's') })),
      h('dl', { class: 'mono' }, pairs.map((p) => [h('dt', {}, headText(p[0])),
        h('dd', { text: p[1] })])));
  }

  /* a column name that may break after an underscore (f1_/macro), never
   * inside a word */
  function headText(k) {
    const parts = String(k).split('_');
    const out = [];
    parts.forEach((p, i) => {
      if (i) out.push(h('wbr'));
      out.push(p + (i < parts.length - 1 ? '_' : ''));
    });
    return out;
  }

  /* ---- API ------------------------------------------------------------ */

  class ApiError extends Error {
    constructor(status, body) {
      super((body && (body.error + (body.detail ? ': ' + body.detail : ''))) ||
        ('HTTP ' + status));
      this.status = status;
      this.body = body;
    }
  }

  const api = {
    token() { return sessionStorage.getItem(TOKEN_KEY) || ''; },
    setToken(t) {
      if (t) sessionStorage.setItem(TOKEN_KEY, t);
      else sessionStorage.removeItem(TOKEN_KEY);
    },
    async call(method, path, body) {
      const headers = { Accept: 'application/json' };
      const tok = api.token();
      if (tok) headers.Authorization = 'Bearer ' + tok;
      const opt = { method, headers, cache: 'no-store' };
      if (body !== undefined) {
        headers['Content-Type'] = 'application/json';
        opt.body = JSON.stringify(body);
      }
      const r = await fetch(path, opt);
      let data = null;
      try { data = await r.json(); } catch (e) { data = null; }
      if (!r.ok) throw new ApiError(r.status, data);
      return data;
    },
    get(path) { return api.call('GET', path); },
    post(path, body) { return api.call('POST', path, body || {}); },
    patch(path, body) { return api.call('PATCH', path, body); },
  };

  const enc = encodeURIComponent;

  /* ---- app state and routing ------------------------------------------ */

  const app = {
    auth: null,          /* /api/v2/auth */
    timers: [],          /* cleared on navigation */
    gen: 0,              /* navigation generation: late answers are dropped */
    drawerTimer: null,
  };

  function every(ms, fn) {
    const id = setInterval(fn, ms);
    app.timers.push(id);
    return id;
  }

  function stopTimers() {
    app.timers.forEach(clearInterval);
    app.timers = [];
  }

  function banner(text, kind) {
    const b = $('#banner');
    clear(b);
    if (!text) { b.hidden = true; return; }
    b.className = 'banner' + (kind === 'error' ? ' error' : '');
    append(b, text);
    b.hidden = false;
  }

  function showError(where, err) {
    clear(where);
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
      append(where, h('div', { class: 'card' },
        h('h2', { text: err.status === 401 ? 'Admin token needed'
                                           : 'Admin API disabled' }),
        h('p', { text: err.message }),
        err.status === 401
          ? h('p', {}, 'Enter the token on the ',
            h('a', { href: '#/admin', text: 'Admin page' }),
            ' (it is kept for this browser tab only), or start the daemon ' +
            'with auth.console_read_open: true for a read-only console.')
          : null));
      return;
    }
    append(where, h('div', { class: 'card' },
      h('h2', { text: 'Could not load' }),
      h('p', { class: 'msg err', text: String(err && err.message || err) })));
  }

  async function refreshAuth() {
    try {
      app.auth = await api.get('/api/v2/auth');
    } catch (e) {
      app.auth = null;
    }
    const el = $('#auth-status');
    clear(el);
    if (!app.auth) return;
    el.className = 'auth-status' + (app.auth.authenticated ? ' on' : '');
    el.textContent = app.auth.authenticated
      ? 'admin: signed in'
      : (app.auth.token_given ? 'admin: wrong token'
        : (app.auth.admin_enabled ? 'read-only' : 'admin API off'));
    el.title = 'mlopsd ' + (app.auth.version || '');
  }

  const canWrite = () => app.auth && app.auth.authenticated;

  function route() {
    stopTimers();
    closeDrawer();
    app.gen++;
    const parts = (location.hash || '#/dags').replace(/^#\/?/, '')
      .split('?')[0].split('/').map(decodeURIComponent);
    const page = parts[0] || 'dags';
    document.querySelectorAll('#nav a').forEach((a) =>
      a.classList.toggle('active', a.dataset.page === page));
    const main = $('#main');
    clear(main);
    banner(null);
    if (page === 'models') return pageModels(main, parts[1]);
    if (page === 'serving') return pageServing(main);
    if (page === 'admin') return pageAdmin(main);
    return pageDags(main);
  }

  /* ---- charts (SVG) ----------------------------------------------------- */

  const pad2 = (n) => String(n).padStart(2, '0');
  const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug',
    'Sep', 'Oct', 'Nov', 'Dec'];

  /* Wall-clock labels in the browser's zone, 24-hour and zero-padded so
   * they are short and two different instants never print alike at the
   * precision the tick step asks for. */
  function fmtClock(ms, seconds) {
    const d = new Date(ms);
    return pad2(d.getHours()) + ':' + pad2(d.getMinutes()) +
      (seconds ? ':' + pad2(d.getSeconds()) : '');
  }
  function fmtDay(ms) {
    const d = new Date(ms);
    return MONTHS[d.getMonth()] + ' ' + d.getDate();
  }
  const dayKey = (ms) => new Date(ms).toDateString();

  /* Tick steps a reader counts in: seconds, minutes, hours, days. */
  const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800,
    3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800, 1209600,
    2592000].map((x) => x * 1000);

  /* Ticks for a time axis over [t0, t1] (ms): at most maxTicks, on round
   * local times, each label distinct.  One instant gets one tick. */
  function timeTicks(t0, t1, maxTicks) {
    const max = maxTicks || 6;
    if (!(t1 > t0)) return [{ v: t0, label: fmtClock(t0, true) }];
    const span = t1 - t0;
    const step = TIME_STEPS.find((st) => span / st <= max) ||
      TIME_STEPS[TIME_STEPS.length - 1];
    /* align to the local zone (minutes east of UTC) for steps above a minute */
    const off = -new Date(t0).getTimezoneOffset() * 60000;
    let v = Math.ceil((t0 + off) / step) * step - off;
    const vals = [];
    for (; v <= t1 + 1e-6 && vals.length < 100; v += step) vals.push(v);
    if (!vals.length) vals.push(t0);
    if (step >= 86400000) return vals.map((x) => ({ v: x, label: fmtDay(x) }));
    const clock = vals.map((x) => fmtClock(x, step < 60000));
    const multiDay = dayKey(t0) !== dayKey(t1);
    /* over several days: the first tick of each day says which day, and
     * every tick does when a clock time comes back on another day */
    const allDays = multiDay && new Set(clock).size < clock.length;
    return vals.map((x, i) => ({ v: x, label: multiDay && (allDays || i === 0 ||
      dayKey(x) !== dayKey(vals[i - 1])) ? fmtDay(x) + ' ' + clock[i]
      : clock[i] }));
  }

  /* Round numbers for a value axis: [lo, hi] widened to multiples of a
   * 1/2/2.5/5 x 10^k step, with the decimals that step needs. */
  function niceTicks(lo, hi, n) {
    const want = n || 4;
    if (!(hi > lo)) hi = lo + (lo === 0 ? 1 : Math.abs(lo) * 0.1);
    const raw = (hi - lo) / want;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const f = raw / mag;
    const step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) *
      mag;
    const a = Math.floor(lo / step + 1e-9) * step;
    const b = Math.ceil(hi / step - 1e-9) * step;
    const digits = Math.max(0, -Math.floor(Math.log10(step) + 1e-9) +
      (Math.abs(step / mag - 2.5) < 1e-9 ? 1 : 0));
    const ticks = [];
    for (let v = a; v <= b + step / 2; v += step)
      ticks.push(Number(v.toFixed(Math.min(digits + 2, 12))));
    return { lo: a, hi: b, ticks, digits };
  }

  const finite = (v) => typeof v === 'number' && isFinite(v);

  /* opts: {title, series: [{name, color, points: [[x, y], ...], highlight}],
   *   x: 'time' | 'version', xDomain: [x0, x1] (time: the span the data
   *   covers, also where a series has gaps), yMin, yMax, yFmt, threshold,
   *   height, width, unit: what one x value is ('sample', 'report',
   *   'version'), empty: text when nothing is drawn, legend: bool}.
   * Every series is a <g class="series" data-series=NAME> holding a line
   * (two or more points) and a dot per point; x ticks are <text
   * class="xtick">.  With fewer than three x values a note under the
   * chart says how many there are, so one dot is not read as a flat line
   * that fell off the chart. */
  function lineChart(opts) {
    const W = opts.width || 640, H = opts.height || 220;
    const m = { l: 52, r: 16, t: 12, b: 28 };
    const unit = opts.unit || 'sample';
    const series = opts.series.map((sr, i) => ({
      name: sr.name, color: sr.color || PALETTE[i % PALETTE.length],
      width: sr.width, highlight: sr.highlight,
      pts: sr.points.filter((p) => finite(p[0]) && finite(p[1])) }));
    const xs = [...new Set([].concat(...series.map((sr) =>
      sr.pts.map((p) => p[0]))))].sort((a, b) => a - b);
    const root = s('svg', { class: 'chart', viewBox: '0 0 ' + W + ' ' + H,
      width: W, height: H, role: 'img', 'aria-label': opts.title || 'chart' });
    const wrap = h('div', { class: 'chart-box' });
    if (opts.title) append(wrap, h('h3', { text: opts.title }));
    if (!xs.length) {
      append(wrap, h('p', { class: 'chart-empty', text: opts.empty ||
        'No data yet.' }));
      return wrap;
    }
    append(wrap, root);
    /* x scale */
    let X, ticks;
    const plotW = W - m.l - m.r;
    if (opts.x === 'version') {
      /* one band per version that exists; nothing in between */
      const band = plotW / xs.length;
      const idx = new Map(xs.map((v, i) => [v, i]));
      X = (v) => m.l + (idx.get(v) + 0.5) * band;
      const every = Math.ceil(xs.length / 12);
      ticks = xs.filter((v, i) => i % every === 0 || i === xs.length - 1)
        .map((v) => ({ v, label: (opts.xPrefix || 'v') + v }));
    } else {
      let x0 = xs[0], x1 = xs[xs.length - 1];
      if (opts.xDomain) {
        x0 = Math.min(x0, opts.xDomain[0]);
        x1 = Math.max(x1, opts.xDomain[1]);
      }
      if (x1 > x0) {
        const px = (x1 - x0) * 0.03; /* dots at the ends stay inside */
        X = (v) => m.l + (v - x0 + px) / (x1 - x0 + 2 * px) * plotW;
        ticks = timeTicks(x0, x1);
      } else {
        X = () => m.l + plotW / 2;
        ticks = timeTicks(x0, x0);
      }
    }
    /* y scale */
    const ys = [].concat(...series.map((sr) => sr.pts.map((p) => p[1])));
    let lo = opts.yMin !== undefined ? opts.yMin : Math.min(...ys);
    let hi = opts.yMax !== undefined ? opts.yMax : Math.max(...ys);
    if (opts.threshold !== undefined && opts.threshold !== null)
      hi = Math.max(hi, opts.threshold * 1.15);
    if (opts.yMin === undefined && lo > 0 && lo < (hi - lo) * 0.6) lo = 0;
    if (hi === lo && opts.yMin === undefined) {
      const d = Math.max(Math.abs(lo) * 0.05, 0.01);
      lo -= d;
      hi += d;
    }
    const ny = niceTicks(lo, hi, 4);
    const y0 = opts.yMin !== undefined ? opts.yMin : ny.lo;
    const y1 = opts.yMax !== undefined ? opts.yMax : ny.hi;
    const Y = (y) => H - m.b - (y - y0) / (y1 - y0) * (H - m.t - m.b);
    const yFmt = opts.yFmt || ((v) => fmtNum(v, ny.digits));
    ny.ticks.filter((v) => v >= y0 - 1e-12 && v <= y1 + 1e-12).forEach((v) => {
      append(root, s('line', { class: 'gridline', x1: m.l, x2: W - m.r,
        y1: Y(v), y2: Y(v) }));
      append(root, s('text', { class: 'ytick', x: m.l - 6, y: Y(v) + 3,
        'text-anchor': 'end', text: yFmt(v) }));
    });
    ticks.forEach((tk) => {
      const x = X(tk.v);
      append(root, s('line', { class: 'axis', x1: x, x2: x, y1: H - m.b,
        y2: H - m.b + 4 }));
      append(root, s('text', { class: 'xtick', x, y: H - 8, text: tk.label,
        'text-anchor': x - m.l < 30 ? 'start' : W - m.r - x < 30 ? 'end'
          : 'middle' }));
    });
    append(root, s('line', { class: 'axis', x1: m.l, x2: W - m.r,
      y1: H - m.b, y2: H - m.b }));
    append(root, s('line', { class: 'axis', x1: m.l, x2: m.l, y1: m.t,
      y2: H - m.b }));
    if (opts.threshold !== undefined && opts.threshold !== null) {
      append(root, s('line', { class: 'threshold', x1: m.l, x2: W - m.r,
        y1: Y(opts.threshold), y2: Y(opts.threshold),
        'data-threshold': opts.threshold }));
      append(root, s('text', { x: W - m.r - 2, y: Y(opts.threshold) - 4,
        'text-anchor': 'end', fill: '#c0392b',
        text: 'threshold ' + opts.threshold }));
    }
    const xText = (x) => opts.x === 'version' ? (opts.xPrefix || 'v') + x
      : fmtDay(x) + ' ' + fmtClock(x, true);
    const legend = h('div', { class: 'chart-legend' });
    series.forEach((sr) => {
      if (!sr.pts.length) return;
      const g = s('g', { class: 'series', 'data-series': sr.name,
        'data-points': sr.pts.length });
      if (sr.pts.length > 1) {
        const d = sr.pts.map((p, k) => (k ? 'L' : 'M') + X(p[0]).toFixed(1) +
          ' ' + Y(p[1]).toFixed(1)).join(' ');
        append(g, s('path', { d, fill: 'none', stroke: sr.color,
          'stroke-width': sr.width || 2, 'stroke-linejoin': 'round',
          'data-series': sr.name }));
      }
      if (sr.pts.length < 80) {
        sr.pts.forEach((p) => {
          const hl = sr.highlight && sr.highlight(p);
          const c = s('circle', { class: 'pt', cx: X(p[0]), cy: Y(p[1]),
            r: hl ? 5.5 : sr.pts.length === 1 ? 4 : 3,
            fill: hl ? '#fff' : sr.color, stroke: sr.color, 'stroke-width': 2 });
          append(c, s('title', { text: sr.name + ': ' + xText(p[0]) + ' → ' +
            yFmt(p[1]) }));
          append(g, c);
        });
      }
      append(root, g);
      append(legend, h('span', { 'data-series': sr.name }, h('i', {}),
        sr.name));
      legend.lastChild.firstChild.style.background = sr.color;
    });
    if (xs.length < 3) {
      append(wrap, h('p', { class: 'chart-note', text: xs.length + ' ' + unit +
        (xs.length === 1 ? '' : 's') + ' so far' + (opts.sparseNote
          ? ': ' + opts.sparseNote : '') + '.' }));
    }
    if (opts.series.length > 1 || opts.legend) append(wrap, legend);
    return wrap;
  }
  /* ---- drawer: a task instance, its attempts and log --------------------- */

  function closeDrawer() {
    if (app.drawerTimer) { clearInterval(app.drawerTimer); app.drawerTimer = null; }
    $('#drawer').hidden = true;
    document.querySelectorAll('.cell.sel').forEach((c) =>
      c.classList.remove('sel'));
  }

  async function openTask(dagId, runId, taskId) {
    closeDrawer();
    const drawer = $('#drawer'), body = $('#drawer-body');
    $('#drawer-title').textContent = taskId;
    clear(body);
    drawer.hidden = false;
    const base = '/api/v2/dags/' + enc(dagId) + '/dagRuns/' + enc(runId) +
      '/taskInstances/' + enc(taskId);
    let ti;
    try {
      ti = await api.get(base);
    } catch (e) {
      if (e.status === 404) {
        append(body, h('p', { class: 'muted', text:
          'Task "' + taskId + '" has no instance in run ' + runId +
          ' yet: it starts when the run reaches it.' }));
      } else {
        showError(body, e);
      }
      return;
    }
    const info = h('div', { id: 'ti-info' });
    const tabs = h('div', { class: 'tabs', id: 'attempt-tabs' });
    const follow = h('span', { class: 'follow', id: 'log-follow' });
    const pre = h('pre', { class: 'log', id: 'log-content' });
    append(body, info, h('div', { class: 'row' }, h('h3', { text: 'Log' }),
      follow), tabs, pre);
    let shown = 0, cursor = 0;

    function renderInfo() {
      clear(info);
      append(info, h('div', { class: 'kv' },
        h('span', {}, 'state ', stateBadge(ti.state)),
        h('span', {}, 'run ', h('b', { text: runId })),
        h('span', {}, 'attempts ', h('b', { text: String(ti.try_number) }),
          ' of ', h('b', { text: String(ti.max_tries) })),
        h('span', {}, 'started ', h('b', { text: fmtTime(ti.start_date) })),
        h('span', {}, 'ended ', h('b', { text: fmtTime(ti.end_date) })),
        h('span', {}, 'duration ', h('b', { text: fmtDuration(ti.duration) })),
        ti.hostname ? h('span', {}, 'host ', h('b', {
          text: ti.hostname + (ti.pid ? ' pid ' + ti.pid : '') })) : null,
        ti.next_try_at ? h('span', {}, 'next try ',
          h('b', { text: fmtTime(ti.next_try_at) })) : null));
    }

    function renderTabs() {
      clear(tabs);
      const n = Math.max(ti.try_number, 0);
      if (!n) {
        append(tabs, h('span', { class: 'muted small',
          text: 'not started yet' }));
        return;
      }
      for (let t = 1; t <= n; t++) {
        const a = (ti.attempts || [])[t - 1];
        append(tabs, h('button', { type: 'button',
          class: t === shown ? 'active' : '', 'data-try': t,
          title: a && a.first_log_at ? fmtTime(a.first_log_at) : '',
          text: 'attempt ' + t + (a ? ' (' + a.lines + ' lines)' : ''),
          onclick: () => { if (t !== shown) loadLog(t, true); } }));
      }
    }

    async function loadLog(t, reset) {
      if (reset) { shown = t; cursor = 0; clear(pre); renderTabs(); }
      let r;
      try {
        r = await api.get(base + '/logs/' + t + '?after=' + cursor +
          '&limit=5000');
      } catch (e) {
        append(pre, h('span', { class: 'stderr', text: String(e.message) + '\n' }));
        return;
      }
      if (t !== shown) return;
      const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      r.content.forEach((l) => {
        append(pre, h('span', { class: 'ts', text: fmtTime(l.timestamp) + ' ' }),
          h('span', { class: l.stream === 'stderr' ? 'stderr' : '',
            text: l.line + '\n' }));
      });
      cursor = Number(r.continuation_token) || cursor;
      if (!pre.firstChild)
        append(pre, h('span', { class: 'ts', text: '(no log lines)\n' }));
      if (atEnd) pre.scrollTop = pre.scrollHeight;
    }

    renderInfo();
    shown = ti.try_number || 0;
    renderTabs();
    if (shown) await loadLog(shown, true);
    /* follow live while the task can still change */
    const live = () => LIVE_STATES.includes(ti.state);
    follow.textContent = live() ? '● following live' : '';
    if (live()) {
      app.drawerTimer = setInterval(async () => {
        try {
          const prevTry = ti.try_number;
          ti = await api.get(base);
          renderInfo();
          if (ti.try_number !== prevTry) {
            await loadLog(ti.try_number, true);
          } else if (shown === ti.try_number) {
            renderTabs();
            await loadLog(shown, false);
          }
          if (!live()) {
            follow.textContent = '';
            clearInterval(app.drawerTimer);
            app.drawerTimer = null;
            await loadLog(shown, false);
          }
        } catch (e) { /* keep trying */ }
      }, 2000);
    }
  }

  /* ---- DAGs ------------------------------------------------------------- */

  function gridTable(dagId, grid) {
    const runs = grid.dag_runs.slice().reverse(); /* oldest left */
    const tasks = grid.tasks;
    if (!runs.length)
      return h('p', { class: 'muted', text: 'No runs yet.' +
        (grid.dag.next_dagrun_logical_date ? ' The next scheduled run is ' +
          fmtZoned(grid.dag.next_dagrun_logical_date) + ' (' +
          grid.dag.timezone + ').' : '') });
    const maxDur = Math.max(1, ...runs.map(runSeconds));
    const head = h('tr', {}, h('th', { class: 'task', text: '' }));
    runs.forEach((r) => {
      const bar = h('div', { class: 'runbar st-' + r.state,
        'data-run': r.dag_run_id, 'data-state': r.state,
        title: r.dag_run_id + '\nstate: ' + r.state + '\nlogical date: ' +
          fmtTime(r.logical_date) + '\nduration: ' +
          fmtDuration(runSeconds(r) || null) });
      bar.style.height = (8 + 34 * (runSeconds(r) / maxDur)) + 'px';
      append(head, h('th', { class: 'run' }, bar));
    });
    const tb = h('tbody');
    tasks.forEach((t) => {
      const tr = h('tr', {}, h('th', { class: 'task', text: t.task_id,
        title: (t.type || '') + (t.depends_on && t.depends_on.length
          ? ' ← ' + t.depends_on.join(', ') : '') }));
      runs.forEach((r) => {
        const ti = r.task_instances[t.task_id];
        const st = ti ? ti.state : 'none';
        const cell = h('div', { class: 'cell' + (ti ? ' st-' + st : ''),
          'data-dag': dagId, 'data-run': r.dag_run_id, 'data-task': t.task_id,
          'data-state': st,
          title: t.task_id + ' · ' + st + (ti && ti.try_number > 1
            ? ' · ' + ti.try_number + ' attempts' : '') + '\n' + r.dag_run_id,
          onclick: (ev) => {
            openTask(dagId, r.dag_run_id, t.task_id).then(() => {
              ev.target.classList.add('sel');
            });
          } });
        append(tr, h('td', {}, cell));
      });
      append(tb, tr);
    });
    return h('div', { class: 'grid-wrap' },
      h('table', { class: 'grid', 'data-dag': dagId }, h('thead', {}, head), tb));
  }

  function runSeconds(r) {
    if (!r.start_date) return 0;
    const end = r.end_date ? new Date(r.end_date) : new Date();
    return Math.max(0, (end - new Date(r.start_date)) / 1000);
  }

  function legend() {
    return h('div', { class: 'legend' }, STATES.map((st) =>
      h('span', {}, h('span', { class: 'sw st-' + st }), st)),
    h('span', {}, h('span', { class: 'sw none' }), 'no instance'));
  }

  async function pageDags(main) {
    const gen = app.gen;
    append(main, h('h1', { text: 'DAGs' }));
    const list = h('div', { id: 'dag-list' }, h('p', { class: 'muted',
      text: 'Loading…' }));
    append(main, list);
    let data;
    try {
      data = await api.get('/api/v2/dags?limit=200&exclude_stale=false');
    } catch (e) { showError(list, e); return; }
    if (gen !== app.gen) return;
    clear(list);
    if (data.import_errors && data.import_errors.length) {
      append(list, h('div', { class: 'card' }, h('h2', { text: 'DAG files with errors' }),
        data.import_errors.map((er) => h('pre', { class: 'msg err',
          text: er.error }))));
    }
    if (!data.dags.length) {
      append(list, h('div', { class: 'card empty', text:
        'No DAGs: put DAG files (*.yaml) in scheduler.dags_dir.' }));
      return;
    }
    const grids = {};
    data.dags.forEach((d) => {
      const gridBox = h('div', { class: 'grid-box', 'data-dag': d.dag_id },
        h('p', { class: 'muted', text: 'Loading runs…' }));
      grids[d.dag_id] = gridBox;
      const pauseBtn = canWrite() ? h('button', { type: 'button',
        class: 'btn ghost', 'data-action': 'pause', text: d.is_paused
          ? 'Unpause' : 'Pause',
        onclick: async () => {
          try {
            await api.patch('/api/v2/dags/' + enc(d.dag_id),
              { is_paused: !d.is_paused });
            route();
          } catch (e) { banner(e.message, 'error'); }
        } }) : null;
      const trigBtn = canWrite() ? h('a', { class: 'btn ghost',
        href: '#/admin?dag=' + enc(d.dag_id), text: 'Trigger…' }) : null;
      append(list, h('section', { class: 'card dag', 'data-dag': d.dag_id },
        h('div', { class: 'card-head' },
          h('span', { class: 'title', text: d.dag_id }),
          d.is_paused ? h('span', { class: 'badge paused', text: 'paused' })
            : h('span', { class: 'badge active', text: 'active' }),
          !d.is_active ? h('span', { class: 'badge', text: 'no DAG file' }) : null,
          (d.tags || []).map((t) => h('span', { class: 'badge', text: t.name || t })),
          h('span', { class: 'spacer' }), pauseBtn, trigBtn),
        d.description ? h('p', { class: 'muted', text: d.description }) : null,
        h('div', { class: 'kv' },
          h('span', {}, 'schedule ', h('b', { class: 'mono',
            text: d.schedule || 'manual only' })),
          h('span', {}, 'next run ', h('b', { 'data-field': 'next-run',
            text: d.next_dagrun_logical_date
              ? fmtZoned(d.next_dagrun_logical_date) + ' (' + d.timezone + ')'
              : '—' })),
          h('span', {}, 'last run ', d.last_run ? stateBadge(d.last_run.state)
            : h('b', { text: '—' })),
          h('span', {}, 'tasks ', h('b', { text: String((d.tasks || []).length) }))),
        gridBox));
    });
    append(list, legend());
    async function loadGrids() {
      for (const id of Object.keys(grids)) {
        try {
          const g = await api.get('/api/v2/dags/' + enc(id) + '/grid?limit=25');
          if (gen !== app.gen) return;
          const box = grids[id];
          const sel = document.querySelector('.cell.sel');
          const selKey = sel ? sel.dataset.run + '|' + sel.dataset.task : null;
          clear(box);
          append(box, gridTable(id, g));
          if (selKey) {
            box.querySelectorAll('.cell').forEach((c) => {
              if (c.dataset.run + '|' + c.dataset.task === selKey)
                c.classList.add('sel');
            });
          }
        } catch (e) {
          if (gen === app.gen) showError(grids[id], e);
        }
      }
    }
    await loadGrids();
    every(5000, loadGrids);
  }

  /* ---- Models ----------------------------------------------------------- */

  async function pageModels(main, name) {
    const gen = app.gen;
    append(main, h('h1', { text: 'Models' }));
    const split = h('div', { class: 'split' });
    const side = h('div', { class: 'card list', id: 'model-list' });
    const detail = h('div', { id: 'model-detail' });
    append(main, split);
    append(split, side, detail);
    let models;
    try {
      models = await api.get('/api/v2/models?limit=1000');
    } catch (e) { showError(detail, e); return; }
    if (gen !== app.gen) return;
    if (!models.models.length) {
      append(detail, h('div', { class: 'card empty',
        text: 'No models in the registry yet: a train task registers one.' }));
      return;
    }
    if (!name) name = models.models[0].name;
    models.models.forEach((m) => append(side, h('a', {
      href: '#/models/' + enc(m.name), class: m.name === name ? 'active' : '',
      text: m.name + (m.production_version ? '  (v' + m.production_version + ')'
        : '') })));
    await modelDetail(detail, name, gen);
  }

  function metricKeys(versions) {
    const keys = [];
    versions.forEach((v) => Object.keys(v.metrics || {}).forEach((k) => {
      if (!keys.includes(k)) keys.push(k);
    }));
    return keys;
  }

  async function modelDetail(box, name, gen) {
    let m;
    try {
      m = await api.get('/api/v2/models/' + enc(name));
    } catch (e) { showError(box, e); return; }
    if (gen !== app.gen) return;
    clear(box);
    const vers = m.versions;
    const metric = m.selection_metric ||
      (metricKeys(vers).includes('accuracy') ? 'accuracy' : metricKeys(vers)[0]);
    const prod = m.production_version;
    const head = h('div', { class: 'card' },
      h('div', { class: 'card-head' },
        h('span', { class: 'title', text: m.name }),
        prod ? h('span', { class: 'badge prod', 'data-field': 'production',
          text: 'production v' + prod }) : h('span', { class: 'badge',
          text: 'nothing in production' }),
        m.served_version && m.served_version !== prod
          ? h('span', { class: 'badge paused', text: 'serving v' +
            m.served_version + ' (swap pending)' }) : null),
      h('div', { class: 'kv' },
        h('span', {}, 'versions ', h('b', { text: String(vers.length) })),
        h('span', {}, 'served now ', h('b', { 'data-field': 'served',
          text: m.served_version ? 'v' + m.served_version : '—' })),
        h('span', {}, 'production since ', h('b', {
          text: m.production_since ? fmtTime(m.production_since) : 'unknown' })),
        m.production_change ? h('span', {}, 'by ', h('b', {
          text: (m.production_change.action || '') + ' · ' +
            (m.production_change.actor || '?') })) : null,
        h('span', {}, 'selection metric ', h('b', { text: metric || '—' }))),
      m.production_change && m.production_change.reason
        ? h('p', { class: 'muted small', text: 'reason: ' +
          m.production_change.reason }) : null);
    append(box, head);

    /* the shadow challenger (alias staging) against production */
    const shadowBox = h('div', { class: 'card', id: 'shadow' },
      h('h2', { text: 'Shadow challenger' }));
    append(box, shadowBox);
    if (m.staging_version && m.staging_version !== prod)
      loadShadow(name, shadowBox, gen);
    else
      append(shadowBox, h('p', { class: 'muted', 'data-field': 'shadow-none',
        text: m.staging_version ? 'Staging is production (v' +
          m.staging_version + '): no challenger to compare.'
          : 'No challenger: alias staging is not set. With models.shadow: ' +
          'true the version aliased staging answers in shadow beside ' +
          'production.' }));

    /* the selection metric per version */
    if (metric) {
      const pts = vers.filter((v) => v.metrics && typeof v.metrics[metric] ===
        'number').map((v) => [v.version, v.metrics[metric]]).reverse();
      append(box, h('div', { class: 'card', id: 'metric-chart' },
        lineChart({ title: metric + ' per version (validation split; ' +
          'hollow = production)', x: 'version', unit: 'version',
          empty: 'No version records ' + metric + '.',
          series: [{ name: metric, points: pts,
            highlight: (p) => p[0] === prod }] })));
    }

    /* versions */
    /* the selection metric and three more as columns, the rest folded */
    const allMk = metricKeys(vers);
    const mk = (metric && allMk.includes(metric) ? [metric] : [])
      .concat(allMk.filter((k) => k !== metric)).slice(0, 4);
    const moreMk = allMk.filter((k) => !mk.includes(k));
    const tbl = h('table', { class: 'tbl', id: 'versions' });
    const tblWrap = h('div', { class: 'tbl-wrap' }, tbl);
    append(tbl, h('thead', {}, h('tr', {},
      ['version', 'created', ...mk, moreMk.length ? 'more metrics' : null,
        'params', 'lineage', ''].filter((k) => k !== null)
        .map((k) => h('th', {}, headText(k))))));
    const tb = h('tbody');
    vers.forEach((v) => {
      const lin = v.lineage || {};
      const act = canWrite() && !v.is_production ? h('button', {
        type: 'button', class: 'btn ghost', 'data-action': 'promote',
        'data-version': v.version, text: 'Promote',
        onclick: () => promote(name, v.version, box) }) : null;
      append(tb, h('tr', { class: v.is_production ? 'prod' : '',
        'data-version': v.version },
        h('td', {}, h('b', { text: 'v' + v.version }), ' ',
          v.is_production ? h('span', { class: 'badge prod', text: 'production' })
            : null),
        h('td', { class: 'small' }, h('div', { text: fmtTime(v.creation_time) }),
          lin.logical_date ? h('div', { class: 'muted',
            text: 'logical date ' + lin.logical_date }) : null),
        mk.map((k) => h('td', { class: 'num', text: fmtNum(v.metrics
          ? v.metrics[k] : null) })),
        moreMk.length ? h('td', { class: 'params-cell' }, foldCell(moreMk.map(
          (k) => [k, fmtNum(v.metrics ? v.metrics[k] : null)]), 'metric'))
          : null,
        h('td', { class: 'params-cell' }, paramsCell(v.params)),
        h('td', { class: 'small lineage' },
          lin.dag_run_id ? h('div', {}, 'run ', wrapId(lin.dag_run_id))
            : null,
          lin.training_rows !== undefined ? h('div', { text: 'rows ' +
            fmtNum(lin.training_rows) + (lin.train_rows !== undefined
              ? ' (' + lin.train_rows + ' train / ' + lin.val_rows + ' val)'
              : '') }) : null,
          lin.data_sha256 ? h('div', { class: 'mono', title: lin.data_sha256,
            text: 'data ' + String(lin.data_sha256).slice(0, 12) + '…' }) : null,
          lin.trial_count ? h('div', { text: lin.trial_count + ' trials' }) : null,
          v.meta_error ? h('div', { class: 'msg err', text: v.meta_error }) : null),
        h('td', {}, act)));
    });
    append(tbl, tb);
    append(box, h('div', { class: 'card' }, h('h2', { text: 'Versions' }),
      tblWrap,
      canWrite() ? h('div', { class: 'row' }, h('button', { type: 'button',
        class: 'btn danger', 'data-action': 'rollback', text: 'Roll back',
        onclick: () => rollback(name, box) })) : h('p', { class: 'muted small',
        text: 'Promote and roll back from here after entering the admin ' +
          'token on the Admin page.' }),
      h('div', { class: 'msg', id: 'model-msg' })));

    /* trials of a version */
    const trialsBox = h('div', { id: 'trials' });
    const pick = h('select', { id: 'trial-version', onchange: () =>
      loadTrials(name, Number(pick.value), trialsBox, gen) });
    vers.forEach((v) => append(pick, h('option', { value: v.version,
      text: 'v' + v.version + (v.is_production ? ' (production)' : '') })));
    append(box, h('div', { class: 'card' }, h('div', { class: 'card-head' },
      h('h2', { text: 'Grid-search trials' }), pick), trialsBox));
    if (vers.length) loadTrials(name, vers[0].version, trialsBox, gen);

    /* deployments */
    const deps = m.deployments;
    const dt = h('table', { class: 'tbl', id: 'deployments' },
      h('thead', {}, h('tr', {}, ['when', 'action', 'from', 'to', 'by', 'reason']
        .map((k) => h('th', { text: k })))));
    const dtb = h('tbody');
    const ctx = { vers, metric };
    (deps || []).forEach((d) => {
      /* a click opens the decision: the gate's numbers, the two versions */
      const detail = h('tr', { class: 'detail', hidden: true });
      const tr = h('tr', { class: 'clickable', 'data-deployment': d.id,
        title: 'Show the decision', onclick: () => {
          if (!detail.firstChild)
            append(detail, h('td', { colspan: 6 }, decisionView(d, ctx)));
          detail.hidden = !detail.hidden;
          tr.classList.toggle('selected', !detail.hidden);
        } },
      h('td', { class: 'small' }, fmtTime(d.created_at)),
      h('td', {}, h('span', { class: 'badge action-' + d.action,
        text: d.action })),
      h('td', { text: d.from_version ? 'v' + d.from_version : '—' }),
      h('td', { text: d.to_version ? 'v' + d.to_version : '—' }),
      h('td', { class: 'small actor' }, wrapId(d.actor || '—')),
      h('td', { class: 'small reason', text: d.reason || '' }));
      append(dtb, tr, detail);
    });
    append(dt, dtb);
    trustCard(ctx, box);
    append(box, h('div', { class: 'card' }, h('h2', { text: 'Deployments' }),
      h('p', { class: 'muted small', text: 'Click a row for the decision: ' +
        'the gate\'s numbers and the two versions side by side.' }),
      deps === null ? h('p', { class: 'muted', text: 'MariaDB unavailable: ' +
        (m.deployments_unavailable || '') }) : (deps.length
        ? h('div', { class: 'tbl-wrap' }, dt)
        : h('p', { class: 'muted', text: 'No alias changes recorded.' }))));
  }

  /* GET /api/v2/models/{name}/compare: pairs, agreement and, with labels,
   * both accuracies with the gate's paired test (docs/serving.md). */
  async function loadShadow(name, box, gen) {
    let c;
    try {
      c = await api.get('/api/v2/models/' + enc(name) + '/compare');
    } catch (e) {
      if (gen !== app.gen) return;
      append(box, h('p', { class: 'muted', 'data-field': 'shadow-none',
        text: e instanceof ApiError && e.status === 409 ? e.message
          : 'Comparison unavailable: ' + e.message }));
      return;
    }
    if (gen !== app.gen) return;
    const L = c.labels || {}, t = c.test || {}, ag = c.agreement || {};
    const iv = t.interval && t.interval.length === 2
      ? '[' + fmtNum(t.interval[0], 4) + ', ' + fmtNum(t.interval[1], 4) + ']'
      : '—';
    append(box,
      h('div', { class: 'kv' },
        h('span', {}, 'production ', h('b', { text: 'v' + c.production_version })),
        h('span', {}, 'shadow ', h('b', { 'data-field': 'shadow-version',
          text: 'v' + c.shadow_version })),
        h('span', {}, 'pairs ', h('b', { 'data-field': 'shadow-pairs',
          text: fmtNum(c.pairs) })),
        h('span', {}, 'agreement ', h('b', { 'data-field': 'shadow-agreement',
          text: ag.rate === null ? '—' : fmtNum(ag.rate, 4) })),
        h('span', {}, 'labelled ', h('b', { text: fmtNum(L.labelled) + ' of ' +
          fmtNum(L.customers) + ' customer-months' }))),
      L.labelled ? h('div', { class: 'kv' },
        h('span', {}, 'accuracy production ', h('b', {
          text: fmtNum(L.production_accuracy, 4) })),
        h('span', {}, 'shadow ', h('b', { text: fmtNum(L.shadow_accuracy, 4) })),
        h('span', {}, 'difference ', h('b', { text: fmtNum(t.difference, 4) +
          ' ' + iv })),
        h('span', {}, 'p ', h('b', { text: fmtNum(t.p_value, 3) }))) : null,
      h('p', { class: c.pass ? 'msg ok' : 'muted small',
        'data-field': 'shadow-verdict', text: (c.pass ? 'Promotion allowed: '
          : 'Promotion refused: ') + c.reason }));
  }

  async function loadTrials(name, version, box, gen) {
    clear(box);
    let t;
    try {
      t = await api.get('/api/v2/models/' + enc(name) + '/versions/' +
        version + '/trials');
    } catch (e) { showError(box, e); return; }
    if (gen !== app.gen) return;
    if (!t.trials.length) {
      append(box, h('p', { class: 'muted', text: 'No trial records for v' +
        version + '.' }));
      return;
    }
    const pk = [], mk = [];
    t.trials.forEach((tr) => {
      Object.keys(tr.params || {}).forEach((k) => {
        if (!pk.includes(k) && new Set(t.trials.map((x) =>
          JSON.stringify((x.params || {})[k]))).size > 1) pk.push(k);
      });
      Object.keys(tr.metrics || {}).forEach((k) => {
        if (!mk.includes(k) && typeof tr.metrics[k] === 'number') mk.push(k);
      });
    });
    const cols = [{ k: 'run_id', get: (x) => x.run_id, num: false }]
      .concat(pk.map((k) => ({ k, get: (x) => (x.params || {})[k],
        num: true, param: true })))
      .concat(mk.map((k) => ({ k, get: (x) => (x.metrics || {})[k], num: true })));
    let sortKey = t.selection_metric && mk.includes(t.selection_metric)
      ? t.selection_metric : (mk[0] || 'run_id');
    let desc = sortKey !== 'logloss' && sortKey !== 'rmse' && sortKey !== 'mae';
    const table = h('table', { class: 'tbl', id: 'trials-table' });
    function draw() {
      clear(table);
      const col = cols.find((c) => c.k === sortKey) || cols[0];
      const rows = t.trials.slice().sort((a, b) => {
        let x = col.get(a), y = col.get(b);
        if (col.num) { x = Number(x); y = Number(y); }
        if (x === y) return 0;
        if (x === undefined || Number.isNaN(x)) return 1;
        if (y === undefined || Number.isNaN(y)) return -1;
        return (x < y ? -1 : 1) * (desc ? -1 : 1);
      });
      append(table, h('thead', {}, h('tr', {}, cols.map((c) => h('th', {
        class: 'sortable', 'data-key': c.k, onclick: () => {
          if (sortKey === c.k) desc = !desc;
          else { sortKey = c.k; desc = c.num; }
          draw();
        } }, headText(c.k), c.k === sortKey ? (desc ? ' ▼' : ' ▲') : '')))));
      const tb = h('tbody');
      rows.forEach((r) => append(tb, h('tr', { class: r.is_best ? 'best' : '',
        'data-run': r.run_id },
        cols.map((c) => c.k === 'run_id'
          ? h('td', { class: 'small' }, shortId(r.run_id, 26))
          : h('td', { class: c.num ? 'num' : 'mono small',
            text: c.num && !c.param ? fmtNum(c.get(r))
              : fmtParam(c.get(r)) })))));
      append(table, tb);
    }
    draw();
    append(box, h('p', { class: 'muted small' }, t.trials.length +
      ' trials; best (green) ', t.best_run ? shortId(t.best_run, 40) : '—',
    '. Click a column to sort.'), h('div', { class: 'tbl-wrap' }, table));
  }

  async function promote(name, version, box) {
    const msg = $('#model-msg');
    try {
      const r = await api.post('/api/v2/models/' + enc(name) + '/promote',
        { version });
      msg.className = 'msg ok';
      msg.textContent = 'Production is now v' + r.to_version +
        (r.serving && r.serving.version ? ' (serving v' + r.serving.version + ')'
          : '');
      setTimeout(() => { if (location.hash.startsWith('#/models')) route(); }, 800);
    } catch (e) {
      msg.className = 'msg err';
      msg.textContent = e.message;
    }
  }

  async function rollback(name) {
    const msg = $('#model-msg');
    try {
      const r = await api.post('/api/v2/models/' + enc(name) + '/rollback', {});
      msg.className = 'msg ok';
      msg.textContent = 'Rolled back: production v' + r.from_version + ' → v' +
        r.to_version;
      setTimeout(() => { if (location.hash.startsWith('#/models')) route(); }, 800);
    } catch (e) {
      msg.className = 'msg err';
      msg.textContent = e.message;
    }
  }

  /* ---- trust: the numbers behind an automated decision ------------------- */

  /* The deploy gate, the calibration and the reason codes are recorded by
   * the trust work (issue 13): per deployment row the gate's n,
   * difference (candidate - production), its interval and p-value; per
   * version meta.json's calibration and global importance; per logged
   * prediction its explanation when the request asked for one.  These
   * readers accept the field names below and return null when a record
   * has none, and the views then say "not recorded" instead of drawing
   * zeros.  One place to adjust if the recorded names differ. */

  const pickNum = (o, keys) => {
    for (const k of keys) if (o && finite(o[k])) return o[k];
    return null;
  };

  function asObject(v) {
    if (typeof v === 'string') {
      try { v = JSON.parse(v); } catch (e) { return null; }
    }
    return v && typeof v === 'object' ? v : null;
  }

  function gateOf(d) {
    const g = asObject(d.gate) || d;
    const n = pickNum(g, ['n', 'gate_rows', 'n_rows']);
    const diff = pickNum(g, ['difference', 'diff', 'delta']);
    if (n === null || diff === null) return null;
    let lo = pickNum(g, ['ci_low', 'ci_lo', 'lower']);
    let hi = pickNum(g, ['ci_high', 'ci_hi', 'upper']);
    const iv = g.interval || g.ci;
    if (Array.isArray(iv) && iv.length === 2 && finite(iv[0]) && finite(iv[1])) {
      lo = iv[0];
      hi = iv[1];
    } else if (iv && typeof iv === 'object') {
      lo = pickNum(iv, ['low', 'lo', 'lower']);
      hi = pickNum(iv, ['high', 'hi', 'upper']);
    }
    return { n, diff, lo, hi,
      p: pickNum(g, ['p_value', 'p']),
      level: pickNum(g, ['level', 'confidence_level']),
      maxReg: pickNum(g, ['max_regression']),
      cand: pickNum(g, ['candidate_score', 'candidate']),
      prod: pickNum(g, ['production_score', 'production']),
      metric: typeof g.metric === 'string' ? g.metric : null,
      method: typeof g.method === 'string' ? g.method
        : typeof g.test === 'string' ? g.test : null };
  }

  function binsOf(list) {
    if (!Array.isArray(list)) return null;
    const out = list.map((b) => ({
      conf: pickNum(b, ['confidence', 'mean_confidence', 'predicted']),
      acc: pickNum(b, ['accuracy', 'observed', 'frequency']),
      n: pickNum(b, ['count', 'n']) })).filter((b) => b.conf !== null &&
      b.acc !== null && b.n !== 0);
    return out.length ? out : null;
  }

  function calibrationOf(v) {
    const c = asObject(v.calibration);
    if (!c) return null;
    const after = asObject(c.after) || {};
    const before = asObject(c.before) || {};
    const bins = binsOf(c.bins || c.reliability || after.bins);
    const binsBefore = binsOf(c.bins_before || before.bins);
    const two = (k) => {
      const o = asObject(c[k]) || {};
      return {
        before: pickNum(c, [k + '_before']) ?? pickNum(o, ['before']) ??
          pickNum(before, [k]),
        after: pickNum(c, [k + '_after', k]) ?? pickNum(o, ['after']) ??
          pickNum(after, [k]) };
    };
    const ece = two('ece'), brier = two('brier');
    if (!bins && !binsBefore && ece.after === null && ece.before === null)
      return null;
    return { bins, binsBefore, ece, brier,
      method: typeof c.method === 'string' ? c.method : null,
      temperature: pickNum(c, ['temperature', 't']),
      rows: pickNum(c, ['rows', 'n']) };
  }

  function importanceOf(v) {
    const imp = asObject(v.importance || v.feature_importance);
    if (!imp) return null;
    const rows = {};
    const add = (f, k, x) => {
      if (!finite(x)) return;
      rows[f] = rows[f] || { feature: f, shap: null, gain: null };
      rows[f][k] = x;
    };
    /* meta.json's shape: {rows, split, fields: [{field, mean_abs_shap,
     * gain, gain_share}]} (docs/training.md) */
    const arr = Array.isArray(imp) ? imp
      : Array.isArray(imp.fields) ? imp.fields : null;
    if (arr) {
      arr.forEach((r) => {
        const f = r && (r.feature || r.field || r.name);
        if (!f) return;
        add(f, 'shap', pickNum(r, ['mean_abs_shap', 'shap']));
        add(f, 'gain', pickNum(r, ['gain']));
      });
    } else {
      const shap = asObject(imp.mean_abs_shap || imp.shap);
      const gain = asObject(imp.gain);
      if (shap || gain) {
        Object.keys(shap || {}).forEach((f) => add(f, 'shap', shap[f]));
        Object.keys(gain || {}).forEach((f) => add(f, 'gain', gain[f]));
      } else {
        Object.keys(imp).forEach((f) => add(f, 'shap', imp[f]));
      }
    }
    const list = Object.values(rows);
    if (!list.length) return null;
    const key = list.some((r) => r.shap !== null) ? 'shap' : 'gain';
    list.sort((a, b) => (b[key] || 0) - (a[key] || 0));
    return { list, key };
  }

  function reasonsOf(p) {
    const x = asObject(p.explain || p.explanation || p.reasons);
    if (!x) return null;
    let c = x.contributions || x.reasons || x.top;
    if (c && !Array.isArray(c) && typeof c === 'object')
      c = Object.keys(c).map((f) => ({ feature: f, value: c[f] }));
    if (!Array.isArray(c)) return null;
    const list = c.map((r) => ({ feature: r.feature || r.field || r.name,
      value: pickNum(r, ['value', 'contribution', 'shap']) }))
      .filter((r) => r.feature && r.value !== null)
      .sort((a, b) => Math.abs(b.value) - Math.abs(a.value));
    if (!list.length) return null;
    return { list, bias: pickNum(x, ['bias', 'base_value']),
      margin: pickNum(x, ['margin']),
      cls: typeof x.class === 'string' ? x.class : null };
  }

  const notRecorded = (what, key) => h('p', { class: 'not-recorded',
    'data-missing': key, text: what });

  /* The gate's interval on one axis: 0, -max_regression, the interval and
   * the difference. */
  function intervalChart(g) {
    const W = 460, H = 64, m = { l: 16, r: 16 };
    const vals = [0, g.diff].concat(g.lo !== null ? [g.lo] : [],
      g.hi !== null ? [g.hi] : [], g.maxReg !== null ? [-g.maxReg] : []);
    const nt = niceTicks(Math.min(...vals), Math.max(...vals), 4);
    const X = (v) => m.l + (v - nt.lo) / (nt.hi - nt.lo) * (W - m.l - m.r);
    const root = s('svg', { class: 'chart interval', viewBox: '0 0 ' + W + ' ' +
      H, width: W, height: H, role: 'img',
    'aria-label': 'difference and its interval' });
    const yA = 38;
    append(root, s('line', { class: 'axis', x1: m.l, x2: W - m.r, y1: yA, y2: yA }));
    nt.ticks.forEach((v) => append(root, s('text', { class: 'xtick', x: X(v),
      y: H - 6, 'text-anchor': 'middle', text: (v > 0 ? '+' : '') +
        fmtNum(v, nt.digits) })));
    append(root, s('line', { class: 'gridline zero', x1: X(0), x2: X(0), y1: 6,
      y2: yA + 4 }));
    if (g.maxReg !== null) {
      append(root, s('line', { class: 'threshold', x1: X(-g.maxReg),
        x2: X(-g.maxReg), y1: 6, y2: yA + 4, 'data-max-regression': g.maxReg }));
      append(root, s('text', { x: X(-g.maxReg) + 4, y: 12,
        'text-anchor': 'start', fill: '#c0392b', text: '−max_regression' }));
    }
    if (g.lo !== null && g.hi !== null)
      append(root, s('line', { class: 'ci', x1: X(g.lo), x2: X(g.hi), y1: 24,
        y2: 24, stroke: '#245c7a', 'stroke-width': 5,
        'stroke-linecap': 'round' }));
    append(root, s('circle', { cx: X(g.diff), cy: 24, r: 5, fill: '#fff',
      stroke: '#245c7a', 'stroke-width': 2 }));
    return root;
  }

  function gateView(d) {
    const g = gateOf(d);
    const box = h('div', { class: 'gate', 'data-field': 'gate' },
      h('h3', { text: 'The gate' }));
    if (!g) {
      append(box, notRecorded('Gate numbers not recorded for this decision' +
        (d.action === 'promote' || d.action === 'rollback'
          ? ' (a manual ' + d.action + ' passes no gate).'
          : ' (no n, difference or interval in its deployment row).'),
      'gate'));
      return box;
    }
    const pct = (x) => (x > 0 ? '+' : '') + fmtNum(x, 4);
    append(box, h('div', { class: 'kv' },
      h('span', {}, 'n ', h('b', { 'data-field': 'gate-n', text: fmtNum(g.n) }),
        ' gate rows'),
      g.metric ? h('span', {}, 'metric ', h('b', { text: g.metric })) : null,
      g.cand !== null ? h('span', {}, 'candidate ', h('b', {
        text: fmtNum(g.cand) })) : null,
      g.prod !== null ? h('span', {}, 'production ', h('b', {
        text: fmtNum(g.prod) })) : null,
      h('span', {}, 'difference ', h('b', { 'data-field': 'gate-diff',
        text: pct(g.diff) })),
      g.lo !== null && g.hi !== null ? h('span', {},
        (g.level !== null ? Math.round(g.level * 100) + '% ' : '') +
        'interval ', h('b', { 'data-field': 'gate-interval',
          text: '[' + pct(g.lo) + ', ' + pct(g.hi) + ']' })) : null,
      g.p !== null ? h('span', {}, 'p ', h('b', { text: fmtNum(g.p, 4) })) : null,
      g.maxReg !== null ? h('span', {}, 'max_regression ', h('b', {
        text: fmtNum(g.maxReg) })) : null,
      g.method ? h('span', {}, 'test ', h('b', { text: g.method })) : null),
    intervalChart(g));
    if (g.lo !== null && g.maxReg !== null)
      append(box, h('p', { class: 'muted small', text: 'Deploy when the lower ' +
        'bound of the difference is above −max_regression: ' + pct(g.lo) +
        (g.lo > -g.maxReg ? ' > ' : ' ≤ ') + pct(-g.maxReg) + '.' }));
    return box;
  }

  /* The two versions of a decision, one column each. */
  function versionsSide(d, m) {
    const byV = new Map(m.vers.map((v) => [v.version, v]));
    const cols = [[d.from_version, d.action === 'rollback' ? 'production before'
      : 'production then'], [d.to_version, { rollback: 'rolled back to',
      skip: 'candidate (kept out)', promote: 'promoted' }[d.action] ||
      'candidate']].filter((c) => c[0]);
    const box = h('div', { class: 'side', 'data-field': 'side-by-side' },
      h('h3', { text: 'The two versions' }));
    if (!cols.length) {
      append(box, h('p', { class: 'muted', text: 'No versions recorded.' }));
      return box;
    }
    const vs = cols.map((c) => byV.get(c[0]) || null);
    const mk = metricKeys(vs.filter(Boolean));
    const row = (label, f, cls) => h('tr', { class: cls || '' },
      h('th', {}, headText(label)), vs.map((v) => h('td', { class: 'num' },
        v ? f(v) : '—')));
    const lin = (v) => v.lineage || {};
    const pk = [...new Set([].concat(...vs.filter(Boolean).map((v) =>
      Object.keys(v.params || {}))))].filter((k) => !PARAMS_HIDDEN.includes(k));
    const differ = pk.filter((k) => vs.some((v) => !v) || new Set(vs.map((v) =>
      fmtParam((v.params || {})[k]))).size > 1);
    const t = h('table', { class: 'tbl side-tbl' },
      h('thead', {}, h('tr', {}, h('th', {}), cols.map((c, i) => h('th', {
        'data-version': c[0] }, 'v' + c[0] + ' · ' + c[1],
      vs[i] ? null : ' (not in the registry)')))),
      h('tbody', {},
        row('created', (v) => fmtTime(v.creation_time)),
        row('logical date', (v) => lin(v).logical_date || '—'),
        row('training rows', (v) => fmtNum(lin(v).training_rows) +
          (lin(v).train_rows !== undefined ? ' (' + lin(v).train_rows +
            ' / ' + lin(v).val_rows + ')' : '')),
        mk.map((k) => row(k, (v) => fmtNum(v.metrics ? v.metrics[k] : null),
          k === m.metric ? 'sel' : '')),
        row('ECE (calibrated)', (v) => {
          const c = calibrationOf(v);
          return c && c.ece.after !== null ? fmtNum(c.ece.after) : 'not recorded';
        }),
        differ.map((k) => row(k, (v) => fmtParam((v.params || {})[k]),
          'param'))));
    append(box, h('div', { class: 'tbl-wrap' }, t));
    if (pk.length)
      append(box, h('p', { class: 'muted small', text: differ.length
        ? (pk.length - differ.length) + ' other params the same.'
        : 'All ' + pk.length + ' params the same.' }));
    return box;
  }

  function decisionView(d, m) {
    return h('div', { class: 'decision', 'data-deployment': d.id },
      h('p', { class: 'small' }, h('b', { text: d.action }), ' by ',
        d.actor || '?', ' at ', fmtTime(d.created_at),
        d.reason ? ': ' + d.reason : ''),
      h('div', { class: 'decision-grid' }, gateView(d), versionsSide(d, m)));
  }

  /* Reliability diagram: per confidence bin the observed accuracy against
   * the mean confidence; on the diagonal is calibrated. */
  function reliabilityChart(c) {
    const W = 300, H = 280, m = { l: 40, r: 12, t: 10, b: 34 };
    const X = (v) => m.l + v * (W - m.l - m.r);
    const Y = (v) => H - m.b - v * (H - m.t - m.b);
    const root = s('svg', { class: 'chart reliability', viewBox: '0 0 ' + W +
      ' ' + H, width: W, height: H, role: 'img',
    'aria-label': 'reliability diagram' });
    [0, 0.25, 0.5, 0.75, 1].forEach((v) => {
      append(root, s('line', { class: 'gridline', x1: X(0), x2: X(1), y1: Y(v),
        y2: Y(v) }));
      append(root, s('text', { class: 'ytick', x: m.l - 5, y: Y(v) + 3,
        'text-anchor': 'end', text: fmtNum(v, 2) }));
      append(root, s('text', { class: 'xtick', x: X(v), y: H - m.b + 14,
        'text-anchor': 'middle', text: fmtNum(v, 2) }));
    });
    append(root, s('text', { x: X(0.5), y: H - 4, 'text-anchor': 'middle',
      text: 'mean confidence' }));
    append(root, s('text', { x: 10, y: Y(0.5), 'text-anchor': 'middle',
      transform: 'rotate(-90 10 ' + Y(0.5) + ')', text: 'accuracy' }));
    append(root, s('line', { class: 'diagonal', x1: X(0), y1: Y(0), x2: X(1),
      y2: Y(1), stroke: '#9aa4b2', 'stroke-dasharray': '4 4' }));
    const total = (bins) => bins.reduce((a, b) => a + (b.n || 0), 0) || 1;
    const draw = (bins, name, color, hollow) => {
      const g = s('g', { class: 'series', 'data-series': name });
      const tot = total(bins);
      bins.forEach((b) => {
        append(g, s('line', { x1: X(b.conf), y1: Y(b.conf), x2: X(b.conf),
          y2: Y(b.acc), stroke: color, 'stroke-width': 1, opacity: 0.6 }));
        const c = s('circle', { class: 'pt', cx: X(b.conf), cy: Y(b.acc),
          r: b.n ? 2.5 + 6 * Math.sqrt(b.n / tot) : 3.5,
          fill: hollow ? '#fff' : color, stroke: color, 'stroke-width': 1.5 });
        append(c, s('title', { text: name + ': confidence ' + fmtNum(b.conf, 3) +
          ', accuracy ' + fmtNum(b.acc, 3) + (b.n ? ', ' + b.n + ' rows' : '') }));
        append(g, c);
      });
      append(root, g);
    };
    if (c.binsBefore) draw(c.binsBefore, 'before calibration', '#9aa4b2', true);
    if (c.bins) draw(c.bins, c.binsBefore ? 'after calibration' : 'calibrated',
      '#245c7a', false);
    return root;
  }

  function calibrationView(v) {
    const c = calibrationOf(v);
    const box = h('div', { class: 'trust-part', 'data-field': 'calibration' },
      h('h3', { text: 'Calibration' }));
    if (!c) {
      append(box, notRecorded('Calibration not recorded for this version.',
        'calibration'));
      return box;
    }
    const ba = (x) => x.before !== null && x.after !== null
      ? fmtNum(x.before) + ' → ' + fmtNum(x.after)
      : fmtNum(x.after !== null ? x.after : x.before);
    append(box, h('div', { class: 'kv' },
      c.method ? h('span', {}, 'method ', h('b', { text: c.method +
        (c.temperature !== null ? ' (T = ' + fmtNum(c.temperature, 3) + ')'
          : '') })) : null,
      h('span', {}, 'ECE ', h('b', { 'data-field': 'ece', text: ba(c.ece) })),
      c.brier.after !== null || c.brier.before !== null ? h('span', {},
        'Brier ', h('b', { text: ba(c.brier) })) : null,
      c.rows !== null ? h('span', {}, 'on ', h('b', { text: fmtNum(c.rows) }),
        ' rows') : null));
    if (c.bins || c.binsBefore) append(box, reliabilityChart(c));
    else append(box, notRecorded('Reliability bins not recorded for this ' +
      'version.', 'bins'));
    return box;
  }

  /* bars of |value| for a list of {feature, value}, strongest first */
  function barList(rows, fmt, cls) {
    const max = Math.max(...rows.map((r) => Math.abs(r.value))) || 1;
    return h('div', { class: 'bars ' + (cls || '') }, rows.map((r) => {
      const bar = h('span', { class: 'bar' + (r.value < 0 ? ' neg' : '') });
      bar.style.width = (100 * Math.abs(r.value) / max).toFixed(1) + '%';
      return h('div', { class: 'bar-row', 'data-feature': r.feature },
        h('span', { class: 'bar-label', title: r.feature, text: r.feature }),
        h('span', { class: 'bar-track' }, bar),
        h('span', { class: 'bar-value', text: fmt(r) }));
    }));
  }

  function importanceView(v) {
    const imp = importanceOf(v);
    const box = h('div', { class: 'trust-part', 'data-field': 'importance' },
      h('h3', { text: 'Global feature importance' }));
    if (!imp) {
      append(box, notRecorded('Feature importance not recorded for this ' +
        'version.', 'importance'));
      return box;
    }
    const top = imp.list.slice(0, 15);
    append(box, h('p', { class: 'muted small', text: (imp.key === 'shap'
      ? 'mean |SHAP| per input field' : 'gain per input field') +
      (imp.list.some((r) => r.shap !== null && r.gain !== null)
        ? ' (gain in brackets)' : '') + '; ' + top.length + ' of ' +
      imp.list.length + ' fields.' }),
    barList(top.map((r) => ({ feature: r.feature, value: r[imp.key] || 0,
      gain: r.gain, shap: r.shap })), (r) => fmtNum(r.value, 4) +
      (imp.key === 'shap' && r.gain !== null ? ' (' + fmtNum(r.gain, 1) + ')'
        : ''), 'importance'));
    return box;
  }

  function trustCard(m, box) {
    const pick = h('select', { id: 'trust-version' });
    m.vers.forEach((v) => append(pick, h('option', { value: v.version,
      text: 'v' + v.version + (v.is_production ? ' (production)' : '') })));
    const prod = m.vers.find((v) => v.is_production) || m.vers[0];
    if (prod) pick.value = String(prod.version);
    const body = h('div', { class: 'trust-grid' });
    const show = () => {
      clear(body);
      const v = m.vers.find((x) => String(x.version) === pick.value);
      if (!v) return;
      body.dataset.version = v.version;
      append(body, calibrationView(v), importanceView(v));
    };
    pick.addEventListener('change', show);
    show();
    append(box, h('div', { class: 'card', id: 'trust' }, h('div', {
      class: 'card-head' }, h('h2', { text: 'Calibration and importance' }),
    pick), body));
  }

  /* ---- recent predictions and their reason codes --------------------- */

  function reasonsView(p) {
    const r = reasonsOf(p);
    if (!r) return notRecorded('No reason codes: this prediction did not ask ' +
      'for an explanation.', 'reasons');
    const top = r.list.slice(0, 8);
    return h('div', { class: 'reasons' },
      h('p', { class: 'muted small', text: 'Contributions to the margin of ' +
        (r.cls || p.prediction || 'the predicted class') + ', strongest first' +
        (r.bias !== null ? '; bias ' + fmtNum(r.bias, 4) : '') +
        (r.margin !== null ? '; margin ' + fmtNum(r.margin, 4) : '') + '.' }),
      barList(top, (x) => (x.value > 0 ? '+' : '') + fmtNum(x.value, 4),
        'reason-bars'));
  }

  async function loadPredictions(model, box, gen) {
    let r;
    try {
      r = await api.get('/api/v2/models/' + enc(model) +
        '/predictions?limit=20');
    } catch (e) {
      if (gen !== app.gen) return;
      clear(box);
      append(box, notRecorded(e.status === 404
        ? 'The prediction log of ' + model + ' is not served by this ' +
          'daemon\'s admin API, so reason codes cannot be shown here.'
        : 'Could not load the prediction log: ' + e.message, 'predictions'));
      return;
    }
    if (gen !== app.gen) return;
    clear(box);
    const rows = r.predictions || [];
    if (!rows.length) {
      append(box, h('p', { class: 'muted', text: 'No logged predictions yet.' }));
      return;
    }
    const t = h('table', { class: 'tbl', id: 'predictions-table' },
      h('thead', {}, h('tr', {}, ['when', 'customer', 'version', 'prediction',
        'confidence', 'reason codes'].map((k) => h('th', { text: k })))));
    const tb = h('tbody');
    rows.forEach((p) => {
      const has = reasonsOf(p) !== null;
      const detail = h('tr', { class: 'detail', hidden: true },
        h('td', { colspan: 6 }, reasonsView(p)));
      const tr = h('tr', { class: 'clickable', 'data-prediction': p.id,
        onclick: () => { detail.hidden = !detail.hidden; } },
      h('td', { text: fmtTime(p.created_at) }),
      h('td', {}, shortId(p.customer_id, 16)),
      h('td', { text: p.model_version ? 'v' + p.model_version : '—' }),
      h('td', { text: p.prediction || '—' }),
      h('td', { class: 'num', text: fmtNum(p.confidence, 3) }),
      h('td', { class: has ? '' : 'muted', text: has ? 'show' : 'not asked' }));
      append(tb, tr, detail);
    });
    append(t, tb);
    append(box, h('div', { class: 'tbl-wrap' }, t));
  }

  /* ---- Serving ---------------------------------------------------------- */

  /* The per-feature scores of one drift report, {feature: psi} with only
   * finite PSI values.  The drift task writes {"threshold", "min_rows",
   * "window", "bad_rows", "worst", "features": {NAME: {"psi", ...}}}: the
   * settings beside "features" are not features.  Reports written before
   * that wrapper held {NAME: {"psi", ...}} at the top level; an entry
   * counts as a feature only when it is an object with a numeric psi, so a
   * setting (a plain number) is never read as one. */
  function driftFeatures(scores) {
    const out = {};
    if (!scores || typeof scores !== 'object') return out;
    const src = scores.features && typeof scores.features === 'object'
      ? scores.features : scores;
    Object.keys(src).forEach((f) => {
      const v = src[f];
      if (v && typeof v === 'object' && finite(v.psi)) out[f] = v.psi;
    });
    return out;
  }

  /* a report's settings, from its scores or the report row */
  function driftSetting(rep, key) {
    const sc = rep.scores || {};
    return finite(sc[key]) ? sc[key] : null;
  }

  function driftSummary(rep) {
    const minRows = driftSetting(rep, 'min_rows');
    const sc = rep.scores || {};
    return h('div', { class: 'kv', 'data-field': 'drift-latest' },
      h('span', {}, 'latest report ', h('b', { text: fmtTime(rep.created_at) })),
      h('span', {}, 'verdict ', h('b', { 'data-field': 'verdict',
        text: rep.verdict })),
      h('span', {}, 'rows compared ', h('b', { text: fmtNum(rep.window_rows) })),
      minRows !== null ? h('span', {}, 'min_rows ', h('b', {
        text: fmtNum(minRows) })) : null,
      /* a PSI on too few rows is noise: not shown as a measurement */
      rep.max_score !== null && rep.max_score !== undefined &&
        rep.verdict !== 'insufficient_data'
        ? h('span', {}, 'max PSI ', h('b', { text: fmtNum(rep.max_score) }),
          sc.worst ? ' (' + sc.worst + ')' : '') : null,
      finite(sc.bad_rows) && sc.bad_rows > 0 ? h('span', {}, 'unreadable rows ',
        h('b', { text: fmtNum(sc.bad_rows) })) : null);
  }

  async function pageServing(main) {
    const gen = app.gen;
    append(main, h('h1', { text: 'Serving' }));
    const tiles = h('div', { class: 'tiles', id: 'serving-tiles' });
    const charts = h('div', { class: 'charts', id: 'serving-charts' });
    const drift = h('div', { id: 'drift' });
    const driftSel = h('select', { id: 'drift-model', onchange: () =>
      loadDrift(driftSel.value) });
    const preds = h('div', { class: 'card', id: 'predictions' });
    append(main, tiles, charts, h('div', { class: 'card-head section-head' },
      h('h2', { text: 'Drift' }), driftSel), drift,
    h('h2', { class: 'section-head', text: 'Recent predictions' }), preds);
    let driftModel = null;

    function tile(label, value, cls, key) {
      /* a two-part figure (free disk of two places) in a smaller type, so
       * the row of tiles keeps one height */
      if (String(value).length > 14) cls = (cls ? cls + ' ' : '') + 'long';
      return h('div', { class: 'tile' + (cls ? ' ' + cls : ''),
        'data-tile': key }, h('div', { class: 'l', text: label }),
        h('div', { class: 'v', text: value }));
    }

    async function load() {
      let d;
      try {
        d = await api.get('/api/v2/serving');
      } catch (e) { if (gen === app.gen) showError(charts, e); return; }
      if (gen !== app.gen) return;
      clear(tiles);
      clear(charts);
      const now = d.now || {};
      const lat = now.latency_ms || {};
      const log = d.log || {};
      const served = (d.models || []).find((x) => x.model === d.default_model);
      append(tiles,
        tile('requests / s', fmtNum(now.requests_per_s, 1), null, 'rps'),
        tile('latency p50', lat.p50 === null || lat.p50 === undefined ? '—'
          : fmtNum(lat.p50, 2) + ' ms', null, 'p50'),
        tile('latency p99', lat.p99 === null || lat.p99 === undefined ? '—'
          : fmtNum(lat.p99, 2) + ' ms', null, 'p99'),
        tile('errors / s', fmtNum(now.errors_per_s, 2),
          now.errors_per_s > 0 ? 'bad' : null, 'eps'),
        tile('predictions (total)', fmtNum(d.totals ? d.totals.items : null),
          null, 'items'),
        tile('log backlog', fmtNum(log.backlog_rows) + ' rows',
          log.backlog_rows > 1000 ? 'bad' : null, 'backlog'),
        tile('spool', fmtBytes(log.spool_bytes) + ' · ' +
          fmtNum(log.spool_records) + ' rec', log.spool_bytes > 0 ? 'bad' : null,
        'spool'),
        tile('MariaDB (log)', log.db_up === true ? 'up' : log.db_up === false
          ? 'down' : '—', log.db_up === false ? 'bad' : 'good', 'db'),
        tile('log table', fmtBytes(log.table_disk_bytes !== null &&
          log.table_disk_bytes !== undefined ? log.table_disk_bytes
          : log.table_bytes) + (log.table_growth_bytes_per_hour !== null &&
          log.table_growth_bytes_per_hour !== undefined ? ' · +' +
          fmtBytes(log.table_growth_bytes_per_hour) + '/h' : ''), null,
        'logtable'),
        tile('free disk', 'MariaDB ' + fmtBytes(log.db_disk_free_bytes) +
          ' · spool ' + fmtBytes(log.spool_disk_free_bytes),
          (log.spool_disk_free_bytes !== null &&
           log.spool_disk_free_bytes !== undefined &&
           log.spool_disk_free_bytes < 256 * 1048576) ? 'bad' : null, 'disk'),
        tile('served model', served ? (served.version ? 'v' + served.version
          : 'none') : '—', d.model_ready === false ? 'bad' : null, 'model'));
      if (d.model_not_ready) banner(d.model_not_ready);
      /* series: ring + the partial interval now */
      const pts = (d.series || []).slice();
      if (d.now && d.now.t) pts.push(d.now);
      const t = (p) => new Date(p.t).getTime();
      /* every chart spans the same sampled time, also where a series has
       * no value (no requests: no latency) */
      const dom = pts.length ? [t(pts[0]), t(pts[pts.length - 1])] : null;
      const span = 'last hour, ' + (d.interval_s >= 60 ? (d.interval_s / 60) +
        '-minute' : d.interval_s + '-second') + ' samples';
      append(charts,
        h('div', { class: 'card', id: 'chart-rps' }, lineChart({
          title: 'Requests per second (' + span + ')', x: 'time', xDomain: dom,
          yMin: 0, empty: 'No samples yet: the first one is taken ' +
            d.interval_s + ' s after the start.', series: [
            { name: 'requests/s', points: pts.map((p) => [t(p), p.requests_per_s]) },
            { name: 'errors/s', color: '#c0392b',
              points: pts.map((p) => [t(p), p.errors_per_s]) }] })),
        h('div', { class: 'card', id: 'chart-latency' }, lineChart({
          title: 'Latency percentiles (ms)', x: 'time', xDomain: dom, yMin: 0,
          yFmt: (v) => fmtNum(v, 2), empty: 'No prediction requests in the ' +
            'last hour: no latency to show.',
          sparseNote: 'only intervals with prediction requests have a latency',
          series: ['p50', 'p90', 'p99'].map((q, i) => ({ name: q,
            color: PALETTE[i], points: pts.map((p) => [t(p),
              (p.latency_ms || {})[q]]) })) })));
      /* predictions per class of each model */
      const classes = {};
      pts.forEach((p) => Object.keys(p.predictions || {}).forEach((mo) =>
        Object.keys(p.predictions[mo]).forEach((c) => {
          classes[mo + ' · ' + c] = classes[mo + ' · ' + c] || [];
          classes[mo + ' · ' + c].push([t(p), p.predictions[mo][c] /
            Math.max(p.seconds || 1, 0.001)]);
        })));
      append(charts, h('div', { class: 'card', id: 'chart-classes' }, lineChart({
        title: 'Predictions per class (per second)', x: 'time', xDomain: dom,
        yMin: 0, legend: true, empty: 'No predictions in the last hour.',
        series: Object.keys(classes).map((k) => ({ name: k,
          points: classes[k] })) })),
      h('div', { class: 'card', id: 'chart-backlog' }, lineChart({
        title: 'Prediction log backlog and spool', x: 'time', xDomain: dom,
        yMin: 0, legend: true, series: [
          { name: 'backlog rows', points: pts.map((p) => [t(p),
            p.log_backlog_rows]) },
          { name: 'spool records', color: '#c0392b',
            points: pts.map((p) => [t(p), p.spool_records]) }] })));
      if (!driftModel && d.default_model) {
        driftModel = d.default_model;
        fillDriftModels();
        loadDrift(driftModel);
      }
    }

    async function fillDriftModels() {
      let ms = [];
      try {
        ms = (await api.get('/api/v2/models?limit=1000')).models;
      } catch (e) { ms = []; }
      if (gen !== app.gen) return;
      clear(driftSel);
      const names = ms.map((x) => x.name);
      if (driftModel && !names.includes(driftModel)) names.unshift(driftModel);
      names.forEach((n) => append(driftSel, h('option', { value: n, text: n })));
      driftSel.value = driftModel;
    }

    async function loadDrift(model) {
      driftModel = model;
      loadPredictions(model, preds, gen);
      let r;
      try {
        r = await api.get('/api/v2/models/' + enc(model) + '/drift?limit=200');
      } catch (e) {
        if (gen !== app.gen || model !== driftModel) return;
        clear(drift);
        if (e.status === 404) append(drift, h('p', { class: 'muted',
          text: 'Model ' + model + ' is not in the registry yet.' }));
        else showError(drift, e);
        return;
      }
      if (gen !== app.gen || model !== driftModel) return;
      clear(drift);
      const box = h('div', { class: 'card', id: 'drift-chart',
        'data-model': model });
      append(drift, box);
      const reps = r.reports.slice().reverse(); /* oldest first */
      if (!reps.length) {
        append(box, h('p', { class: 'drift-words', text: 'No drift reports ' +
          'for ' + model + ' yet (a drift task writes them).' }));
        return;
      }
      const last = reps[reps.length - 1];
      append(box, driftSummary(last));
      /* a report below min_rows measured noise: it is listed, not drawn */
      const usable = [], short = [], empty = [];
      reps.forEach((rep) => {
        const f = driftFeatures(rep.scores);
        if (rep.verdict === 'insufficient_data') short.push(rep);
        else if (!Object.keys(f).length) empty.push(rep);
        else usable.push({ rep, f });
      });
      if (!usable.length) {
        const minRows = driftSetting(last, 'min_rows');
        let words;
        if (last.verdict === 'insufficient_data') {
          words = 'Not enough data to measure drift yet: the latest check ' +
            'compared ' + fmtNum(last.window_rows) + ' logged prediction' +
            (last.window_rows === 1 ? '' : 's') +
            (minRows !== null ? ', and a check needs at least ' +
              fmtNum(minRows) + ' (min_rows)' : ', fewer than the check needs') +
            ' before PSI says anything. Nothing is drawn until a report has ' +
            'enough rows.';
        } else {
          words = 'The latest report has no per-feature scores (verdict ' +
            last.verdict + '): nothing to draw.';
        }
        append(box, h('p', { class: 'drift-words', text: words }));
        if (reps.length > 1)
          append(box, h('p', { class: 'muted small', text: reps.length +
            ' reports, none with per-feature scores on enough rows.' }));
        return;
      }
      const feats = {};
      usable.forEach((u) => Object.keys(u.f).forEach((name) => {
        feats[name] = feats[name] || [];
        feats[name].push([new Date(u.rep.created_at).getTime(), u.f[name]]);
      }));
      /* the worst features first; at most 10 lines */
      const names = Object.keys(feats).sort((a, b) =>
        Math.max(...feats[b].map((p) => p[1])) -
        Math.max(...feats[a].map((p) => p[1]))).slice(0, 10);
      append(box, lineChart({ title: 'PSI per feature over time (worst ' +
        names.length + ' of ' + Object.keys(feats).length + ')', x: 'time',
      yMin: 0, threshold: r.threshold, legend: true, height: 260, width: 1000,
      unit: 'report', series: names.map((n) => ({ name: n, points: feats[n] })) }));
      const skipped = short.length + empty.length;
      if (skipped)
        append(box, h('p', { class: 'muted small', 'data-field': 'drift-skipped',
          text: skipped + ' report' + (skipped === 1 ? '' : 's') +
            (short.length ? ' with insufficient data (fewer rows than ' +
              'min_rows)' : '') + (short.length && empty.length ? ' or' : '') +
            (empty.length ? ' without per-feature scores' : '') +
            ' not drawn.' }));
    }

    await load();
    every(5000, load);
  }

  /* ---- Admin ------------------------------------------------------------ */

  async function pageAdmin(main) {
    const gen = app.gen;
    const params = new URLSearchParams((location.hash.split('?')[1]) || '');
    append(main, h('h1', { text: 'Admin' }));
    const tokenIn = h('input', { type: 'password', id: 'token-input',
      autocomplete: 'off', placeholder: 'admin token', size: 36 });
    const tokMsg = h('div', { class: 'msg', id: 'token-msg' });
    const auth = app.auth || {};
    append(main, h('div', { class: 'card' },
      h('h2', { text: 'Admin token' }),
      !auth.admin_enabled ? h('p', { class: 'msg err', text:
        'The admin API is off: no token is configured. Set the environment ' +
        'variable ' + (auth.token_env || 'MLOPSD_ADMIN_TOKEN') +
        ' and restart mlopsd serve.' }) : null,
      h('p', { class: 'muted small', text: 'Kept in this tab only ' +
        '(sessionStorage) and sent as a Bearer token to /api/v2.' }),
      h('form', { class: 'row', id: 'token-form', onsubmit: async (ev) => {
        ev.preventDefault();
        api.setToken(tokenIn.value.trim());
        await refreshAuth();
        tokMsg.className = 'msg ' + (canWrite() ? 'ok' : 'err');
        tokMsg.textContent = canWrite() ? 'Signed in.'
          : 'That is not the admin token.';
        if (canWrite()) { setTimeout(route, 300); }
      } }, tokenIn, h('button', { class: 'btn', type: 'submit', text: 'Use token' }),
      api.token() ? h('button', { class: 'btn ghost', type: 'button',
        text: 'Forget token', onclick: async () => {
          api.setToken(''); await refreshAuth(); route();
        } }) : null), tokMsg));
    if (!canWrite()) {
      append(main, h('p', { class: 'muted', text: 'Enter the token to trigger ' +
        'runs, pause DAGs and promote or roll back models.' }));
      return;
    }
    let dags = [], models = [];
    try {
      dags = (await api.get('/api/v2/dags?limit=1000&exclude_stale=false')).dags;
      models = (await api.get('/api/v2/models?limit=1000')).models;
    } catch (e) { showError(main, e); return; }
    if (gen !== app.gen) return;

    /* trigger */
    const dagSel = h('select', { id: 'trigger-dag' });
    dags.forEach((d) => append(dagSel, h('option', { value: d.dag_id,
      text: d.dag_id })));
    if (params.get('dag')) dagSel.value = params.get('dag');
    const today = new Date();
    const dateIn = h('input', { type: 'date', id: 'trigger-date',
      value: today.getFullYear() + '-' + String(today.getMonth() + 1)
        .padStart(2, '0') + '-' + String(today.getDate()).padStart(2, '0') });
    const confIn = h('textarea', { id: 'trigger-conf', rows: 3, cols: 50,
      text: '{}' });
    const trigMsg = h('div', { class: 'msg', id: 'trigger-msg' });
    append(main, h('div', { class: 'card' }, h('h2', { text: 'Trigger a DAG run' }),
      h('form', { id: 'trigger-form', onsubmit: async (ev) => {
        ev.preventDefault();
        let conf;
        try { conf = JSON.parse(confIn.value || '{}'); } catch (e) {
          trigMsg.className = 'msg err';
          trigMsg.textContent = 'conf is not valid JSON: ' + e.message;
          return;
        }
        try {
          const r = await api.post('/api/v2/dags/' + enc(dagSel.value) +
            '/dagRuns', { logical_date: dateIn.value, conf });
          trigMsg.className = 'msg ok';
          clear(trigMsg);
          append(trigMsg, 'Queued ' + r.dag_run_id + ' (' + r.state + '). ',
            h('a', { href: '#/dags', text: 'See the grid' }));
        } catch (e) {
          trigMsg.className = 'msg err';
          trigMsg.textContent = e.message;
        }
      } },
      h('div', { class: 'row' },
        h('div', {}, h('label', { text: 'DAG' }), dagSel),
        h('div', {}, h('label', { text: 'logical date' }), dateIn)),
      h('label', { text: 'conf (JSON object)' }), confIn,
      h('div', {}, h('button', { class: 'btn', type: 'submit', text: 'Trigger' }))),
      trigMsg));

    /* pause / unpause */
    const pt = h('table', { class: 'tbl', id: 'pause-table' });
    const pauseMsg = h('div', { class: 'msg' });
    dags.forEach((d) => append(pt, h('tr', { 'data-dag': d.dag_id },
      h('td', { text: d.dag_id }),
      h('td', {}, d.is_paused ? h('span', { class: 'badge paused', text: 'paused' })
        : h('span', { class: 'badge active', text: 'active' })),
      h('td', {}, h('button', { type: 'button', class: 'btn ghost',
        text: d.is_paused ? 'Unpause' : 'Pause', onclick: async () => {
          try {
            await api.patch('/api/v2/dags/' + enc(d.dag_id),
              { is_paused: !d.is_paused });
            route();
          } catch (e) {
            pauseMsg.className = 'msg err';
            pauseMsg.textContent = e.message;
          }
        } })))));
    append(main, h('div', { class: 'card' }, h('h2', { text: 'Pause / unpause' }),
      dags.length ? pt : h('p', { class: 'muted', text: 'No DAGs.' }), pauseMsg));

    /* promote / rollback */
    const modelSel = h('select', { id: 'promote-model' });
    const verSel = h('select', { id: 'promote-version' });
    const modMsg = h('div', { class: 'msg', id: 'promote-msg' });
    const prodInfo = h('span', { class: 'muted small', id: 'promote-prod' });
    models.forEach((m) => append(modelSel, h('option', { value: m.name,
      text: m.name })));
    async function fillVersions() {
      clear(verSel);
      if (!modelSel.value) return;
      try {
        const m = await api.get('/api/v2/models/' + enc(modelSel.value));
        m.versions.forEach((v) => append(verSel, h('option', { value: v.version,
          text: 'v' + v.version + (v.is_production ? ' (production)' : '') +
            (v.metrics && m.selection_metric && v.metrics[m.selection_metric] !==
              undefined ? ' · ' + m.selection_metric + ' ' +
              fmtNum(v.metrics[m.selection_metric]) : '') })));
        prodInfo.textContent = m.production_version
          ? 'production is v' + m.production_version : 'no production version';
      } catch (e) { prodInfo.textContent = e.message; }
    }
    modelSel.addEventListener('change', fillVersions);
    append(main, h('div', { class: 'card' }, h('h2', { text: 'Promote / roll back' }),
      models.length ? h('form', { id: 'promote-form', onsubmit: async (ev) => {
        ev.preventDefault();
        try {
          const r = await api.post('/api/v2/models/' + enc(modelSel.value) +
            '/promote', { version: Number(verSel.value) });
          modMsg.className = 'msg ok';
          modMsg.textContent = 'Production of ' + r.model + ': v' +
            (r.from_version || '—') + ' → v' + r.to_version +
            (r.serving ? '; serving v' + r.serving.version : '');
          await fillVersions();
        } catch (e) {
          modMsg.className = 'msg err';
          modMsg.textContent = e.message;
        }
      } }, h('div', { class: 'row' },
        h('div', {}, h('label', { text: 'model' }), modelSel),
        h('div', {}, h('label', { text: 'version' }), verSel),
        h('div', {}, h('button', { class: 'btn', type: 'submit', id: 'promote-btn',
          text: 'Promote' })),
        h('div', {}, h('button', { class: 'btn danger', type: 'button',
          id: 'rollback-btn', text: 'Roll back', onclick: async () => {
            try {
              const r = await api.post('/api/v2/models/' +
                enc(modelSel.value) + '/rollback', {});
              modMsg.className = 'msg ok';
              modMsg.textContent = 'Rolled back ' + r.model + ': v' +
                r.from_version + ' → v' + r.to_version;
              await fillVersions();
            } catch (e) {
              modMsg.className = 'msg err';
              modMsg.textContent = e.message;
            }
          } })), prodInfo)) : h('p', { class: 'muted', text: 'No models.' }),
      modMsg));
    await fillVersions();
  }

  /* ---- start -------------------------------------------------------------- */

  /* the chart functions, for the browser test to draw known data with */
  window.mlopsdConsole = Object.freeze({ timeTicks, niceTicks, lineChart });

  document.addEventListener('DOMContentLoaded', async () => {
    $('#drawer-close').addEventListener('click', closeDrawer);
    document.addEventListener('keydown', (ev) => {
      if (ev.key === 'Escape') closeDrawer();
    });
    window.addEventListener('hashchange', route);
    await refreshAuth();
    route();
  });
})();
