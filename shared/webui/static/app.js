// The Kilometers dashboard: one page, no dependencies. It reads the public
// JSON API of its own origin (GET /api/stats, /api/activity, /api/sessions,
// /api/events/{id}) and nothing else. Views live in the URL's fragment
// (#/activity?failed=true), so a view can be bookmarked or shared.
//
// Untrusted text (payloads, tool names, error messages) only ever goes into
// the page as text nodes: nothing here assigns innerHTML.
'use strict';

(function () {
  const KEY = 'kilometers.apiKey'; // sessionStorage: gone when the tab closes
  const LIVE_MS = 1000;            // live activity polls this often
  const OVERVIEW_MS = 10000;
  const RETRY_MS = 3000;
  const MAX_ROWS = 500;

  // ---- DOM helpers -------------------------------------------------------

  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = v;
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    append(el, kids);
    return el;
  }
  function append(el, ...kids) {
    for (const k of kids.flat(Infinity)) {
      if (k === undefined || k === null || k === false) continue;
      el.append(k instanceof Node ? k : document.createTextNode(String(k)));
    }
    return el;
  }
  const SVG = 'http://www.w3.org/2000/svg';
  function s(tag, attrs, ...kids) {
    const el = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
    append(el, kids);
    return el;
  }
  const $ = (sel, root) => (root || document).querySelector(sel);

  // ---- formatting --------------------------------------------------------

  const nf = new Intl.NumberFormat('en-US');
  const fmtInt = (n) => nf.format(n || 0);
  function fmtMs(v) {
    if (v === undefined || v === null) return '–';
    const d = v < 10 ? 2 : v < 1000 ? 1 : 0;
    return nf.format(Number(v.toFixed(d))) + ' ms';
  }
  function fmtBytes(n) {
    n = n || 0;
    if (n < 1024) return n + ' B';
    const u = ['KiB', 'MiB', 'GiB', 'TiB'];
    let i = -1;
    do { n /= 1024; i++; } while (n >= 1024 && i < u.length - 1);
    return n.toFixed(n < 10 ? 1 : 0) + ' ' + u[i];
  }
  const fmtCost = (v) => '$' + (v || 0).toFixed(6);
  const fmtRate = (r) => ((r || 0) * 100).toFixed(1) + '%';
  function fmtTime(ts, withDate) {
    const d = new Date(ts);
    const today = new Date().toDateString() === d.toDateString();
    return d.toLocaleString(undefined, (withDate || !today)
      ? { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' }
      : { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  }
  const zone = () => Intl.DateTimeFormat().resolvedOptions().timeZone || 'local time';
  function fmtDuration(ms) {
    if (ms < 1000) return Math.round(ms) + ' ms';
    const sec = Math.round(ms / 1000);
    if (sec < 60) return sec + ' s';
    const m = Math.floor(sec / 60);
    if (m < 60) return m + ' min ' + (sec % 60) + ' s';
    return Math.floor(m / 60) + ' h ' + (m % 60) + ' min';
  }
  const dirArrow = (d) => d === 'client_to_server' ? 'to server' : d === 'server_to_client' ? 'to client' : d;
  // callCell shows the method and what it names (tool, prompt or resource).
  function callCell(e) {
    const t = target(e);
    return h('td', { class: 'mono' }, e.method || '', t ? h('span', { class: 'target' }, ' ', t) : null);
  }
  const target = (e) => e.tool || e.prompt || e.resource_uri || '';
  const failed = (e) => e.kind === 'error' || (e.kind === 'response' && e.is_error === true);
  const level = (e) => (e.risk && e.risk.level) || 'low';
  function errorText(e) {
    if (!failed(e)) return '';
    const code = e.error_code !== undefined ? String(e.error_code) : e.is_error ? 'isError' : '';
    return [code, e.error_message].filter(Boolean).join(' ');
  }
  function riskPill(e) {
    if (!e.risk) return h('span', { class: 'muted', text: '–' });
    return h('span', { class: 'pill ' + e.risk.level, title: (e.risk.reasons || []).join(', ') || null },
      e.risk.level + ' ' + e.risk.score);
  }

  // ---- API ---------------------------------------------------------------

  class ApiError extends Error {
    constructor(kind, status, message, bearer) {
      super(message);
      this.kind = kind; this.status = status; this.bearer = !!bearer;
    }
  }

  async function api(path, params) {
    const q = params && String(params);
    const headers = { Accept: 'application/json' };
    const key = sessionStorage.getItem(KEY);
    if (key) headers.Authorization = 'Bearer ' + key;
    let res;
    try {
      res = await fetch(q ? path + '?' + q : path, { headers, credentials: 'same-origin', cache: 'no-store', redirect: 'error' });
    } catch (e) {
      throw new ApiError('unreachable', 0, 'Cannot reach the Kilometers server at ' + location.origin + '.');
    }
    let body = null;
    try { body = await res.json(); } catch (e) { /* not JSON: a proxy or gateway page */ }
    if (res.ok && body) return body;
    const err = body && body.error;
    const msg = (err && err.message) || (body && body.message) || res.statusText || ('HTTP ' + res.status);
    if (res.status === 401) {
      throw new ApiError('unauthorized', 401, msg, /^bearer/i.test(res.headers.get('WWW-Authenticate') || ''));
    }
    if (res.status === 404) throw new ApiError('notfound', 404, msg);
    if (res.status === 503 || res.status === 502 || res.status === 504) throw new ApiError('unavailable', res.status, msg);
    throw new ApiError('error', res.status, msg);
  }

  // ---- notices and sign-in ------------------------------------------------

  function notice(text) {
    const n = $('#notice');
    if (!text) { n.hidden = true; n.textContent = ''; return; }
    n.textContent = text;
    n.hidden = false;
  }

  // handle shows what an API failure means to the user. It returns true when
  // the view should keep retrying (the server may come back).
  function handle(err) {
    if (!(err instanceof ApiError)) { notice('Something went wrong in the page: ' + err.message); console.error(err); return false; }
    switch (err.kind) {
      case 'unauthorized':
        if (err.bearer) { signIn(sessionStorage.getItem(KEY) ? 'The API refused this key: ' + err.message : ''); return false; }
        notice('This dashboard link is no longer valid (' + err.message + '). Open the URL that `kilometers ui` printed.');
        return false;
      case 'unreachable':
        notice(err.message + ' Is it still running? Retrying…');
        return true;
      case 'unavailable':
        notice('The Kilometers server cannot answer right now: ' + err.message + ' Retrying…');
        return true;
      default:
        notice('The server answered ' + err.status + ': ' + err.message);
        return false;
    }
  }

  function signIn(problem) {
    stopView();
    sessionStorage.removeItem(KEY);
    $('#signout').hidden = true;
    notice('');
    const input = h('input', { id: 'apikey', type: 'password', autocomplete: 'off', spellcheck: 'false', required: true, placeholder: 'km_live_…', 'aria-describedby': 'keyhelp' });
    const status = h('p', { class: problem ? 'error-box' : 'muted', role: 'status', text: problem || '' });
    if (!problem) status.hidden = true;
    const form = h('form', {
      onsubmit: async (ev) => {
        ev.preventDefault();
        const key = input.value.trim();
        if (!key) return;
        sessionStorage.setItem(KEY, key);
        status.hidden = false; status.className = 'muted'; status.textContent = 'Checking the key…';
        try {
          await api('/api/stats', new URLSearchParams({ since: '1h' }));
          $('#signout').hidden = false;
          route();
        } catch (e) {
          sessionStorage.removeItem(KEY);
          status.className = 'error-box';
          status.textContent = e.kind === 'unauthorized' ? 'The API refused this key: ' + e.message
            : e.kind === 'unreachable' ? e.message + ' Is it running?' : e.message;
        }
      },
    },
    h('label', { for: 'apikey', text: 'API key' }), input,
    h('button', { class: 'primary', type: 'submit', text: 'Sign in' }));
    show(h('section', { class: 'signin panel', 'aria-labelledby': 'signin-title' },
      h('h1', { id: 'signin-title', text: 'Sign in to Kilometers' }),
      h('p', { id: 'keyhelp', class: 'muted' },
        'Paste an API key of your team. It stays in this tab only (session storage) and is sent to ' +
        location.origin + ' as a bearer token, never in a URL.'),
      status, form));
    input.focus();
  }

  // ---- routing -------------------------------------------------------------

  let stop = null; // cleanup of the current view (timers)
  function stopView() { if (stop) { stop(); stop = null; } }
  function show(el) {
    const main = $('#main');
    main.replaceChildren(el);
  }

  function parseHash() {
    const raw = location.hash.replace(/^#/, '') || '/overview';
    const i = raw.indexOf('?');
    const path = (i < 0 ? raw : raw.slice(0, i)).split('/').filter(Boolean).map(decodeURIComponent);
    return { path, params: new URLSearchParams(i < 0 ? '' : raw.slice(i + 1)) };
  }
  const link = (path, params) => '#/' + path + (params && String(params) ? '?' + params : '');

  function setParams(view, params) {
    history.replaceState(null, '', link(view, params));
  }

  const views = { overview: viewOverview, activity: viewActivity, sessions: viewSessions, calls: viewCall, alerts: viewAlerts };

  function route() {
    stopView();
    notice('');
    const { path, params } = parseHash();
    const name = views[path[0]] ? path[0] : 'overview';
    for (const a of document.querySelectorAll('nav a')) {
      if (a.dataset.view === (name === 'calls' ? '' : name)) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    syncWindow(params);
    $('#signout').hidden = !sessionStorage.getItem(KEY);
    const ctx = { path, params, since: params.get('since') || '24h', alive: true, timers: [] };
    stop = () => { ctx.alive = false; ctx.timers.forEach(clearTimeout); };
    // A view that failed because the server is away tries again; the
    // notice says so.
    const run = () => views[name](ctx).catch((e) => { if (handle(e)) later(ctx, RETRY_MS, run); });
    run();
  }

  function later(ctx, ms, fn) {
    if (!ctx.alive) return;
    ctx.timers.push(setTimeout(() => { if (ctx.alive) fn(); }, ms));
  }

  // The window select shows and sets the since parameter of the view.
  function syncWindow(params) {
    const sel = $('#window');
    const since = params.get('since') || '24h';
    if (![...sel.options].some((o) => o.value === since)) sel.append(h('option', { value: since, text: 'since ' + since }));
    sel.value = since;
  }
  function onWindow() {
    const { path, params } = parseHash();
    params.set('since', $('#window').value);
    location.hash = link(path.join('/') || 'overview', params);
  }

  // ---- overview ------------------------------------------------------------

  async function viewOverview(ctx) {
    const q = new URLSearchParams({ since: ctx.since });
    for (const k of ['until', 'server']) if (ctx.params.get(k)) q.set(k, ctx.params.get(k));
    const load = async () => {
      try {
        const st = await api('/api/stats', q);
        if (!ctx.alive) return;
        notice('');
        show(renderOverview(st));
      } catch (e) {
        if (!ctx.alive) return;
        if (!handle(e)) return;
      }
      if (document.visibilityState !== 'hidden') later(ctx, OVERVIEW_MS, load);
      else later(ctx, RETRY_MS, load);
    };
    await load();
  }

  function stat(label, path, value, text, cls) {
    return h('div', { class: 'card' }, h('dt', { text: label }),
      h('dd', { class: cls, 'data-stat': path, 'data-value': value, text }));
  }

  function renderOverview(st) {
    const t = st.totals;
    const lat = st.latency;
    const wrap = h('div', { class: 'overview' });
    append(wrap, h('h1', { text: 'Overview' }),
      h('p', { class: 'sub' }, 'From ', h('time', { datetime: st.since, 'data-stat': 'since', text: fmtTime(st.since, true) }),
        ' to ', h('time', { datetime: st.until, 'data-stat': 'until', text: fmtTime(st.until, true) }), ' (' + zone() + ')',
        st.server ? ', server ' + st.server : ''));
    if (!t.events) {
      append(wrap, h('p', { class: 'empty', 'data-empty': 'store' },
        'No events recorded in this window. Put ', h('code', { text: 'kilometers monitor --' }),
        ' in front of an MCP server command in your AI client\'s config, use the client, and its traffic shows up here. ',
        'Or choose a longer window above.'));
    }
    append(wrap, h('dl', { class: 'cards', 'aria-label': 'Totals' },
      stat('Events', 'totals.events', t.events, fmtInt(t.events)),
      stat('Requests', 'totals.requests', t.requests, fmtInt(t.requests)),
      stat('Failed', 'totals.errors', t.errors, fmtInt(t.errors), t.errors ? 'bad' : null),
      stat('Error rate', 'totals.error_rate', t.error_rate, fmtRate(t.error_rate), t.errors ? 'bad' : null),
      stat('Sessions', 'totals.sessions', t.sessions, fmtInt(t.sessions)),
      stat('Bytes', 'totals.bytes', t.bytes, fmtBytes(t.bytes)),
      stat('Cost', 'totals.cost_usd', t.cost_usd, fmtCost(t.cost_usd)),
      stat('Tokens', 'totals.tokens', t.tokens, fmtInt(t.tokens)),
      t.dropped_events ? stat('Dropped', 'totals.dropped_events', t.dropped_events, fmtInt(t.dropped_events), 'bad') : null));

    const latency = h('section', { class: 'panel', 'aria-labelledby': 'lat-h' },
      h('h2', { id: 'lat-h', text: 'Latency' }),
      h('dl', { class: 'kv' },
        h('dt', { text: 'p50' }), h('dd', { 'data-stat': 'latency.p50_ms', 'data-value': lat.p50_ms, text: lat.count ? fmtMs(lat.p50_ms) : '–' }),
        h('dt', { text: 'p95' }), h('dd', { 'data-stat': 'latency.p95_ms', 'data-value': lat.p95_ms, text: lat.count ? fmtMs(lat.p95_ms) : '–' }),
        h('dt', { text: 'p99' }), h('dd', { 'data-stat': 'latency.p99_ms', 'data-value': lat.p99_ms, text: lat.count ? fmtMs(lat.p99_ms) : '–' }),
        h('dt', { text: 'replies' }), h('dd', { 'data-stat': 'latency.count', 'data-value': lat.count, text: fmtInt(lat.count) })));
    const rl = st.risk_levels;
    const total = rl.low + rl.medium + rl.high;
    const bar = h('div', { class: 'risk-bar', role: 'img', 'aria-label': `risk: ${rl.low} low, ${rl.medium} medium, ${rl.high} high` });
    for (const l of ['low', 'medium', 'high']) {
      if (!rl[l]) continue;
      const span = h('span', { class: l });
      span.style.width = (100 * rl[l] / total) + '%';
      bar.append(span);
    }
    const risk = h('section', { class: 'panel', 'aria-labelledby': 'risk-h' },
      h('h2', { id: 'risk-h', text: 'Risk levels' }), bar,
      h('dl', { class: 'kv' },
        h('dt', {}, h('span', { class: 'pill low', text: 'low' })), h('dd', { 'data-stat': 'risk_levels.low', 'data-value': rl.low, text: fmtInt(rl.low) }),
        h('dt', {}, h('span', { class: 'pill medium', text: 'medium' })), h('dd', { 'data-stat': 'risk_levels.medium', 'data-value': rl.medium, text: fmtInt(rl.medium) }),
        h('dt', {}, h('span', { class: 'pill high', text: 'high' })), h('dd', { 'data-stat': 'risk_levels.high', 'data-value': rl.high, text: fmtInt(rl.high) })),
      rl.high || rl.medium ? h('p', { class: 'more' }, h('a', { href: link('alerts', new URLSearchParams({ since: st_since(st) })), text: 'See the alerts' })) : null);

    append(wrap, h('div', { class: 'two' },
      h('section', { class: 'panel chart', 'aria-labelledby': 'chart-h' },
        h('h2', { id: 'chart-h', text: 'Events and failures over time' }), chart(st),
        h('div', { class: 'legend' }, h('span', {}, h('i', { class: 'ev' }), 'events'),
          h('span', {}, h('i', { class: 'er' }), 'failed'))),
      h('div', { class: 'grid' }, latency, risk)));

    append(wrap, h('section', { class: 'panel', 'aria-labelledby': 'tools-h' },
      h('h2', { id: 'tools-h', text: 'Tools' }),
      (st.tools || []).length ? h('div', { class: 'table-wrap' }, table(
        ['Tool', 'Calls', 'Failed', 'p50', 'p95', 'p99', 'Cost'], [0],
        st.tools.map((tl) => h('tr', { 'data-tool': tl.tool },
          h('td', {}, h('a', { href: link('activity', new URLSearchParams({ tool: tl.tool, since: st_since(st) })), text: tl.tool })),
          h('td', { class: 'num', 'data-field': 'calls', text: fmtInt(tl.calls) }),
          h('td', { class: 'num', 'data-field': 'errors', text: fmtInt(tl.errors) }),
          h('td', { class: 'num', text: fmtMs(tl.p50_ms) }),
          h('td', { class: 'num', text: fmtMs(tl.p95_ms) }),
          h('td', { class: 'num', text: fmtMs(tl.p99_ms) }),
          h('td', { class: 'num', text: fmtCost(tl.cost_usd) })))))
        : h('p', { class: 'muted', text: 'No tool calls in this window.' })));

    if ((st.methods || []).length) {
      append(wrap, h('section', { class: 'panel', 'aria-labelledby': 'methods-h', style: null },
        h('h2', { id: 'methods-h', text: 'Methods' }),
        h('div', { class: 'table-wrap' }, table(['Method', 'Count', 'Failed', 'p50', 'p95', 'p99'], [0],
          st.methods.map((m) => h('tr', {},
            h('td', {}, h('a', { href: link('activity', new URLSearchParams({ method: m.method, since: st_since(st) })), text: m.method })),
            h('td', { class: 'num', text: fmtInt(m.count) }),
            h('td', { class: 'num', text: fmtInt(m.errors) }),
            h('td', { class: 'num', text: fmtMs(m.p50_ms) }),
            h('td', { class: 'num', text: fmtMs(m.p95_ms) }),
            h('td', { class: 'num', text: fmtMs(m.p99_ms) })))))));
      wrap.lastChild.classList.add('spaced');
    }
    return wrap;
  }
  // Links from the overview keep its window.
  function st_since(st) { return parseHash().params.get('since') || st.since; }

  function table(heads, textCols, rows) {
    return h('table', {},
      h('thead', {}, h('tr', {}, heads.map((x, i) => h('th', { scope: 'col', class: textCols.includes(i) ? null : 'num', text: x })))),
      h('tbody', {}, rows));
  }

  // goDuration reads a Go duration string ("15m0s") in milliseconds.
  function goDuration(d) {
    let ms = 0;
    for (const [, n, u] of String(d || '').matchAll(/([\d.]+)(h|ms|m|s)/g)) {
      ms += Number(n) * { h: 3600e3, m: 60e3, s: 1e3, ms: 1 }[u];
    }
    return ms;
  }

  // chart draws the series over the whole window, one slot per step, so an
  // empty stretch of time shows as empty.
  function chart(st) {
    const pts = st.series || [];
    const W = 800, H = 200, top = 4, bottom = 1;
    const evs = pts.reduce((a, p) => a + p.events, 0), ers = pts.reduce((a, p) => a + p.errors, 0);
    const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img',
      'aria-label': `Events and failures per ${st.series_step}: ${evs} events, ${ers} failed` });
    const t0 = Date.parse(st.since), t1 = Date.parse(st.until);
    const step = goDuration(st.series_step) || (t1 - t0) / 60;
    const slots = Math.max(1, Math.ceil((t1 - t0) / step));
    const max = Math.max(1, ...pts.map((p) => p.events));
    const bw = W / slots;
    const y = (v) => (H - bottom) - (v / max) * (H - bottom - top);
    svg.append(s('line', { x1: 0, x2: W, y1: y(max), y2: y(max), class: 'grid-line' }),
      s('line', { x1: 0, x2: W, y1: H - bottom, y2: H - bottom, class: 'grid-line' }));
    for (const p of pts) {
      const i = Math.min(slots - 1, Math.max(0, Math.floor((Date.parse(p.ts) - t0) / step)));
      const g = s('g', {}, s('title', {}, `${fmtTime(p.ts, true)}: ${p.events} events, ${p.errors} failed`));
      const w = Math.max(bw * 0.8, 2), x = i * bw + (bw - w) / 2;
      if (p.events) g.append(s('rect', { class: 'ev', x, y: y(p.events), width: w, height: (H - bottom) - y(p.events) }));
      if (p.errors) g.append(s('rect', { class: 'er', x, y: y(p.errors), width: w, height: (H - bottom) - y(p.errors) }));
      svg.append(g);
    }
    // Labels are HTML beside the drawing, which stretches to any width.
    return h('figure', { class: 'plot' },
      h('div', { class: 'axis' }, evs ? 'max ' + fmtInt(max) + ' per ' + (st.series_step || 'step') : 'no events in this window'),
      svg,
      h('div', { class: 'axis ends' }, h('span', { text: fmtTime(st.since, true) }), h('span', { text: fmtTime(st.until, true) })));
  }

  // ---- live activity -------------------------------------------------------

  const FILTERS = ['server', 'tool', 'method', 'kind', 'risk', 'session', 'failed', 'since', 'until'];

  async function viewActivity(ctx) {
    const params = new URLSearchParams();
    for (const k of FILTERS) if (ctx.params.get(k)) params.set(k, ctx.params.get(k));
    if (!params.get('since')) params.set('since', ctx.since);
    let paused = ctx.params.get('paused') === 'true';
    let gen = 0; // bumped when the filters change: answers to older ones are dropped
    let polling = false;
    const seen = new Set();
    let cursor = '';

    const field = (name, label, attrs) => h('label', {}, label,
      h('input', Object.assign({ type: 'text', name, value: params.get(name) || '', autocomplete: 'off' }, attrs || {})));
    const choice = (name, label, opts) => {
      const sel = h('select', { name }, opts.map(([v, t]) => h('option', { value: v, text: t })));
      sel.value = params.get(name) || '';
      return h('label', {}, label, sel);
    };
    const failedBox = h('input', { type: 'checkbox', name: 'failed' });
    failedBox.checked = params.get('failed') === 'true';
    const form = h('form', { class: 'filters', 'aria-label': 'Filters', onsubmit: (e) => e.preventDefault() },
      field('server', 'Server'), field('tool', 'Tool'), field('method', 'Method'),
      choice('kind', 'Kind', [['', 'any'], ['request', 'request'], ['response', 'response'], ['notification', 'notification'], ['error', 'error'], ['invalid', 'invalid']]),
      choice('risk', 'Risk', [['', 'any'], ['medium', 'medium or high'], ['high', 'high']]),
      field('session', 'Session', { class: 'wide', placeholder: 'session id' }),
      h('label', { class: 'check' }, failedBox, 'Failed only'),
      h('button', { type: 'button', onclick: () => { location.hash = link('activity', new URLSearchParams({ since: params.get('since') })); }, text: 'Clear' }));

    const pauseBtn = h('button', { type: 'button', id: 'pause', 'aria-pressed': String(paused) });
    const dot = h('span', { class: 'dot', 'aria-hidden': 'true' });
    const status = h('span', { id: 'live-status', role: 'status' });
    const tbody = h('tbody', { id: 'events' });
    const empty = h('p', { class: 'empty', hidden: true });
    const older = h('button', { type: 'button', hidden: true, text: 'Load older events', onclick: () => loadOlder() });
    const setPaused = (p) => {
      paused = p;
      pauseBtn.textContent = p ? 'Resume' : 'Pause';
      pauseBtn.setAttribute('aria-pressed', String(p));
      dot.classList.toggle('paused', p);
      if (p) params.set('paused', 'true'); else params.delete('paused');
      setParams('activity', params);
      status.textContent = p ? 'Paused: new events are not fetched.' : 'Live: new events appear as they are recorded.';
      if (!p) poll();
    };
    pauseBtn.addEventListener('click', () => setPaused(!paused));

    let debounce = 0;
    const onFilter = () => {
      clearTimeout(debounce);
      debounce = setTimeout(() => {
        if (!ctx.alive) return;
        for (const el of form.elements) {
          if (!el.name) continue;
          const v = el.type === 'checkbox' ? (el.checked ? 'true' : '') : el.value.trim();
          if (v) params.set(el.name, v); else params.delete(el.name);
        }
        setParams('activity', params);
        gen++; seen.clear(); tbody.replaceChildren(); cursor = '';
        refresh(true).catch(handle);
      }, 250);
    };
    form.addEventListener('input', onFilter);
    form.addEventListener('change', onFilter);

    show(h('div', {},
      h('h1', { text: 'Live activity' }),
      h('p', { class: 'sub', text: 'Every JSON-RPC message the monitor recorded, newest first. Filters are kept in the URL. Times in ' + zone() + '.' }),
      form,
      h('div', { class: 'live' }, dot, pauseBtn, status),
      h('div', { class: 'panel' }, empty, h('div', { class: 'table-wrap' }, h('table', { 'aria-label': 'Events' },
        h('thead', {}, h('tr', {}, ['Time', 'Server', 'Direction', 'Kind', 'Call', 'Latency', 'Size', 'Risk', 'Error']
          .map((x, i) => h('th', { scope: 'col', class: [5, 6].includes(i) ? 'num' : null, text: x })))),
        tbody)), h('p', { class: 'more' }, older))));
    setPaused(paused);

    function row(e, fresh) {
      return h('tr', { class: fresh ? 'fresh' : null, 'data-id': e.id, 'data-session': e.session_id, 'data-kind': e.kind, 'data-failed': failed(e) ? 'true' : null },
        h('td', {}, h('a', { href: link('calls/' + encodeURIComponent(e.id)), title: 'Open this call', text: fmtTime(e.ts) })),
        h('td', { text: e.server || '' }),
        h('td', { class: 'muted', text: dirArrow(e.direction) }),
        h('td', {}, failed(e) ? h('span', { class: 'pill failed', text: e.kind === 'error' ? 'error' : 'failed' }) : e.kind),
        callCell(e),
        h('td', { class: 'num', text: e.latency_ms !== undefined ? fmtMs(e.latency_ms) : '' }),
        h('td', { class: 'num', text: fmtBytes(e.size) }),
        h('td', {}, riskPill(e)),
        h('td', { class: 'wrap', text: errorText(e) }));
    }

    function showEmpty() {
      const any = tbody.children.length > 0;
      empty.hidden = any;
      if (!any) {
        const filtered = FILTERS.some((k) => k !== 'since' && params.get(k));
        empty.textContent = filtered
          ? 'No events match these filters in this window. New ones will appear here as they are recorded.'
          : 'No events recorded in this window yet. Start an MCP session through `kilometers monitor --` and they appear here within a second or two.';
      }
    }

    async function refresh(first) {
      const q = new URLSearchParams(params);
      q.delete('paused');
      q.set('limit', '100');
      const asked = gen;
      const page = await api('/api/activity', q);
      if (!ctx.alive || asked !== gen) return;
      notice('');
      const fresh = page.events.filter((e) => !seen.has(e.id));
      fresh.forEach((e) => seen.add(e.id));
      if (first && !cursor) { cursor = page.next_cursor || ''; older.hidden = !cursor; }
      const rows = fresh.map((e) => row(e, !first));
      tbody.prepend(...rows);
      while (tbody.children.length > MAX_ROWS) { seen.delete(tbody.lastChild.dataset.id); tbody.lastChild.remove(); }
      showEmpty();
    }

    async function loadOlder() {
      if (!cursor) return;
      const q = new URLSearchParams(params);
      q.delete('paused'); q.set('limit', '100'); q.set('cursor', cursor);
      try {
        const page = await api('/api/activity', q);
        for (const e of page.events) if (!seen.has(e.id)) { seen.add(e.id); tbody.append(row(e, false)); }
        cursor = page.next_cursor || '';
        older.hidden = !cursor;
      } catch (e) { handle(e); }
    }

    async function poll() {
      if (polling || !ctx.alive) return;
      polling = true;
      let retry = true;
      try {
        await refresh(seen.size === 0 && !tbody.children.length);
      } catch (e) {
        retry = handle(e);
      } finally {
        polling = false;
      }
      if (retry && !paused) later(ctx, LIVE_MS, poll);
    }
  }

  // ---- sessions --------------------------------------------------------------

  async function viewSessions(ctx) {
    if (ctx.path[1]) return viewSession(ctx, ctx.path[1]);
    const q = new URLSearchParams({ since: ctx.since, limit: '200' });
    if (ctx.params.get('server')) q.set('server', ctx.params.get('server'));
    let page;
    try {
      page = await api('/api/sessions', q);
    } catch (e) {
      if (e.kind === 'notfound') { show(h('p', { class: 'empty', text: 'This server does not serve GET /api/sessions yet.' })); return; }
      throw e;
    }
    if (!ctx.alive) return;
    const rows = page.sessions || [];
    show(h('div', {},
      h('h1', { text: 'Sessions' }),
      h('p', { class: 'sub', text: 'One row per run of `kilometers monitor`, newest first. Times in ' + zone() + '.' }),
      rows.length ? h('div', { class: 'panel' }, h('div', { class: 'table-wrap' }, table(
        ['Started', 'Server', 'Client', 'Protocol', 'Command', 'Host', 'Duration', 'Calls', 'Failed', 'Exit', 'Warnings'], [0, 1, 2, 3, 4, 5, 10],
        rows.map((r) => h('tr', { 'data-session': r.id },
          h('td', {}, h('a', { href: link('sessions/' + encodeURIComponent(r.id)), text: fmtTime(r.started_at) })),
          h('td', { text: r.server || '' }),
          h('td', { text: [r.client_name, r.client_version].filter(Boolean).join(' ') }),
          h('td', { class: 'mono', text: r.protocol_version || '' }),
          h('td', { class: 'mono cmd', text: (r.command || []).join(' ') }),
          h('td', { text: r.host || '' }),
          h('td', { class: 'num', text: r.ended_at ? fmtDuration(new Date(r.ended_at) - new Date(r.started_at)) : 'running' }),
          h('td', { class: 'num', text: fmtInt(r.calls) }),
          h('td', { class: 'num', text: fmtInt(r.failed) }),
          h('td', { class: 'num', text: r.exit_code !== undefined ? String(r.exit_code) : '' }),
          h('td', { class: 'wrap', text: (r.warnings || []).join('; ') }))))),
        page.next_cursor ? h('p', { class: 'muted', text: 'Showing the newest ' + rows.length + ' sessions; narrow the window to see older ones.' }) : null)
        : h('p', { class: 'empty', text: 'No sessions started in this window.' })));
  }

  async function findSession(id) {
    const q = new URLSearchParams({ since: '366d', limit: '1000' });
    for (let i = 0; i < 5; i++) {
      const page = await api('/api/sessions', q);
      const hit = (page.sessions || []).find((r) => r.id === id);
      if (hit || !page.next_cursor) return hit || null;
      q.set('cursor', page.next_cursor);
    }
    return null;
  }

  async function viewSession(ctx, id) {
    const [sess, page] = await Promise.all([
      findSession(id).catch((e) => { if (e.kind === 'notfound') return null; throw e; }),
      api('/api/activity', new URLSearchParams({ session: id, limit: '1000' })),
    ]);
    if (!ctx.alive) return;
    // A timeline, in the order the monitor saw the messages.
    const events = page.events.slice().sort((a, b) => a.seq - b.seq);
    const kv = [];
    if (sess) {
      const add = (k, v) => { if (v !== undefined && v !== null && v !== '') kv.push(h('dt', { text: k }), h('dd', { text: v })); };
      add('Server', [sess.server, sess.server_name && sess.server_name !== sess.server ? '(' + sess.server_name + ')' : '', sess.server_version].filter(Boolean).join(' '));
      add('Client', [sess.client_name, sess.client_version].filter(Boolean).join(' '));
      add('Protocol', sess.protocol_version);
      add('Command', (sess.command || []).join(' '));
      add('Host', sess.host);
      add('Started', fmtTime(sess.started_at, true));
      add('Ended', sess.ended_at ? fmtTime(sess.ended_at, true) + ' (' + fmtDuration(new Date(sess.ended_at) - new Date(sess.started_at)) + ')' : 'still running');
      add('Exit code', sess.exit_code !== undefined ? String(sess.exit_code) : '');
      add('Calls', fmtInt(sess.calls) + ' (' + fmtInt(sess.failed) + ' failed)');
      if (sess.dropped_events) add('Dropped', fmtInt(sess.dropped_events) + ' events the monitor could not record');
    }
    show(h('div', {},
      h('p', { class: 'crumbs' }, h('a', { href: link('sessions'), text: 'Sessions' }), ' / ', h('span', { class: 'mono', text: id })),
      h('h1', { text: 'Session ' + (sess ? sess.server || '' : '') }),
      sess ? h('section', { class: 'panel' }, h('dl', { class: 'kv' }, kv),
        (sess.warnings || []).length ? h('div', { class: 'note' }, h('strong', { text: 'Warnings' }),
          h('ul', { class: 'reasons' }, sess.warnings.map((w) => h('li', { text: w })))) : null)
        : h('p', { class: 'muted', text: 'The session record was not found; its events follow.' }),
      h('h2', { class: 'spaced', text: 'Timeline' }),
      events.length ? h('div', { class: 'panel' }, h('div', { class: 'table-wrap' }, table(
        ['#', 'Time', 'Direction', 'Kind', 'Call', 'Latency', 'Risk', 'Error'], [1, 2, 3, 4, 6, 7],
        events.map((e) => h('tr', { 'data-id': e.id },
          h('td', { class: 'num', text: String(e.seq) }),
          h('td', {}, h('a', { href: link('calls/' + encodeURIComponent(e.id)), text: fmtTime(e.ts) })),
          h('td', { class: 'muted', text: dirArrow(e.direction) }),
          h('td', {}, failed(e) ? h('span', { class: 'pill failed', text: e.kind === 'error' ? 'error' : 'failed' }) : e.kind),
          callCell(e),
          h('td', { class: 'num', text: e.latency_ms !== undefined ? fmtMs(e.latency_ms) : '' }),
          h('td', {}, riskPill(e)),
          h('td', { class: 'wrap', text: errorText(e) }))))),
        page.next_cursor ? h('p', { class: 'muted', text: 'Showing the last 1,000 events of this session.' }) : null)
        : h('p', { class: 'empty', text: 'No events recorded for this session.' })));
  }

  // ---- one call ----------------------------------------------------------------

  async function viewCall(ctx) {
    const id = ctx.path[1] || '';
    let call;
    try {
      call = await api('/api/events/' + encodeURIComponent(id));
    } catch (e) {
      if (e.kind === 'notfound') {
        show(h('p', { class: 'empty', text: 'No event with id ' + id + ' (' + e.message + ').' }));
        return;
      }
      throw e;
    }
    if (!ctx.alive) return;
    const req = call.request, res = call.response;
    const any = req || res;
    const what = [any.method, target(any)].filter(Boolean).join(' ');
    const reasons = [...new Set([...(req && req.risk && req.risk.reasons) || [], ...(res && res.risk && res.risk.reasons) || []])];
    const risk = [req, res].filter((e) => e && e.risk).sort((a, b) => b.risk.score - a.risk.score)[0];
    const kv = [];
    const add = (k, v, attrs) => kv.push(h('dt', { text: k }), h('dd', attrs || {}, v));
    add('Server', any.server || '');
    add('Session', h('a', { href: link('sessions/' + encodeURIComponent(any.session_id)), class: 'mono', text: any.session_id }));
    if (any.rpc_id) add('JSON-RPC id', any.rpc_id);
    add('Latency', res && res.latency_ms !== undefined ? fmtMs(res.latency_ms) : '–', { 'data-field': 'latency' });
    add('Outcome', res ? (failed(res) ? h('span', { class: 'pill failed', text: 'failed' }) : 'ok') : req && req.kind === 'notification' ? 'notification (no reply)' : 'no reply recorded');
    add('Risk', risk ? h('span', {}, riskPill(risk), reasons.length ? h('ul', { class: 'reasons' }, reasons.map((r) => h('li', { class: 'mono', text: r }))) : null) : '–');
    show(h('div', {},
      h('p', { class: 'crumbs' }, h('a', { href: link('activity', new URLSearchParams({ session: any.session_id })), text: 'Activity of this session' })),
      h('h1', {}, h('span', { class: 'mono', text: what || any.kind })),
      h('section', { class: 'panel' }, h('dl', { class: 'kv' }, kv),
        res && failed(res) ? h('p', { class: 'error-box', 'data-field': 'error' }, h('strong', { text: 'Error' + (res.error_code !== undefined ? ' ' + res.error_code : '') + ': ' }), res.error_message || '(no message recorded)') : null),
      h('div', { class: 'sides spaced' },
        half('Request', req, 'request', res ? 'The request was not recorded (it may be older than the store keeps).' : ''),
        half('Reply', res, 'response', req && req.kind === 'notification' ? 'Notifications get no reply.' : 'No reply recorded: the call may still be in flight, or the session ended first.'))));
  }

  function half(title, e, role, missing) {
    const sec = h('section', { class: 'panel', 'data-half': role, 'aria-label': title });
    sec.append(h('h2', { text: title + (e ? ' · ' + dirArrow(e.direction) : '') }));
    if (!e) { sec.append(h('p', { class: 'muted', text: missing })); return sec; }
    sec.append(h('dl', { class: 'kv' },
      h('dt', { text: 'Time' }), h('dd', { text: fmtTime(e.ts, true) }),
      h('dt', { text: 'Kind' }), h('dd', { text: e.kind }),
      h('dt', { text: 'Size' }), h('dd', { text: fmtBytes(e.size) + ' on the wire' }),
      e.tokens ? [h('dt', { text: 'Tokens' }), h('dd', { text: fmtInt(e.tokens) })] : null,
      e.risk ? [h('dt', { text: 'Risk' }), h('dd', {}, riskPill(e), ' ', (e.risk.reasons || []).join(', '))] : null,
      h('dt', { text: 'Event id' }), h('dd', { class: 'mono', text: e.id })));
    if (e.payload_truncated) {
      sec.append(h('p', { class: 'note', 'data-field': 'truncated' },
        'Payload truncated: the message was ' + fmtBytes(e.size) + ' and only its beginning was kept (the capture limit), so the text below is incomplete.'));
    }
    const pre = payload(e.payload);
    const marks = pre.querySelectorAll('mark.redacted').length;
    if (marks) {
      sec.append(h('p', { class: 'note', 'data-field': 'redacted' },
        marks + (marks === 1 ? ' value was' : ' values were') + ' replaced by [REDACTED] before the payload left the machine (secrets are never shipped).'));
    }
    sec.append(pre);
    return sec;
  }

  // payload pretty-prints a payload and marks every [REDACTED] so that what
  // the redaction removed is visible.
  function payload(p) {
    const pre = h('pre', { class: 'payload', tabindex: '0' });
    if (p === undefined || p === null) { pre.textContent = '(no payload recorded)'; return pre; }
    const text = typeof p === 'string' ? p : JSON.stringify(p, null, 2);
    const parts = text.split('[REDACTED]');
    parts.forEach((part, i) => {
      if (i > 0) pre.append(h('mark', { class: 'redacted', title: 'removed by redaction before storing', text: '[REDACTED]' }));
      pre.append(document.createTextNode(part));
    });
    return pre;
  }

  // ---- alerts --------------------------------------------------------------------

  async function viewAlerts(ctx) {
    const q = new URLSearchParams({ since: ctx.since, risk: 'medium', limit: '1000' });
    if (ctx.params.get('server')) q.set('server', ctx.params.get('server'));
    const events = [];
    for (let i = 0; i < 5; i++) {
      const page = await api('/api/activity', q);
      events.push(...page.events);
      if (!page.next_cursor) break;
      q.set('cursor', page.next_cursor);
    }
    // What the team's rules fired (GET /api/alerts, served by the backend;
    // the local store has none): shown only when there are some.
    let fired = [];
    try { fired = (await api('/api/alerts', new URLSearchParams({ limit: '50' }))).alerts || []; } catch (_) { fired = []; }
    if (!ctx.alive) return;
    // A poisoned or changed tool shows in every tools/list reply that
    // carries it: one card per server and tool, linked to the latest.
    const poisoned = new Map(), changed = new Map(), risky = [];
    const group = (m, key, e, rs) => {
      const g = m.get(key);
      if (g) { g.count++; g.first = e; return; }
      m.set(key, { latest: e, first: e, count: 1, reasons: rs });
    };
    const toolOf = (r) => r.includes(':') ? r.slice(r.indexOf(':') + 1) : '(in a list too large to read whole)';
    for (const e of events) {
      const rs = (e.risk && e.risk.reasons) || [];
      const poison = rs.filter((r) => r.startsWith('tool_poisoning'));
      const defs = rs.filter((r) => /^definition_(changed|added|removed):/.test(r));
      for (const r of poison) group(poisoned, (e.server || '') + '\0' + toolOf(r), e, rs.filter((x) => !x.startsWith('definition_')));
      for (const r of defs) group(changed, (e.server || '') + '\0' + r, e, [r]);
      if (!poison.length && !defs.length && level(e) === 'high') risky.push([e, rs]);
    }
    const card = (cls, e, title, rs, extra) => h('li', { class: cls, 'data-id': e.id },
      h('div', { class: 'what', text: title }),
      h('div', { class: 'muted' }, (e.server || 'unknown server') + ' · ' + fmtTime(e.ts) + ' · ', riskPill(e), extra ? ' · ' + extra : null),
      rs.length ? h('ul', { class: 'chips', 'aria-label': 'reasons' }, rs.map((r) => h('li', { text: r }))) : null,
      h('a', { href: link('calls/' + encodeURIComponent(e.id)), text: 'Open the call' }));
    const seen = (g) => g.count > 1 ? 'in ' + g.count + ' tool lists since ' + fmtTime(g.first.ts) : '';
    const section = (id, title, explain, list) => h('section', { class: 'spaced', 'aria-labelledby': id, 'data-alerts': id },
      h('h2', { id, text: title + ' (' + list.length + ')' }), h('p', { class: 'sub', text: explain }),
      list.length ? h('ul', { class: 'alerts' }, list) : h('p', { class: 'muted', text: 'None in this window.' }));
    show(h('div', {},
      h('h1', { text: 'Alerts' }),
      h('p', { class: 'sub', text: 'What the risk analysis flagged in this window, newest first. Times in ' + zone() + '.' }),
      fired.length ? section('fired', 'Fired by the team\'s rules', 'The latest alerts the backend\'s rules sent to their webhooks.',
        fired.map((a) => h('li', { 'data-id': a.id },
          h('div', { class: 'what', text: a.text.replace(/^\*Kilometers alert\* \(\w+\): /, '') }),
          h('div', { class: 'muted', text: a.on + ' · ' + fmtTime(a.at) + ' · ' + (a.delivered_at ? 'delivered' : a.last_error ? 'not delivered: ' + a.last_error : 'pending') })))) : null,
      section('poisoned', 'Poisoned tool descriptions',
        'A tool description that tells the model to do something behind the user\'s back (hidden instructions, reading secrets, sending data out).',
        [...poisoned].map(([key, g]) => card('', g.latest, 'Poisoned tool: ' + key.split('\0')[1], g.reasons, seen(g)))),
      section('changed', 'Changed tool definitions',
        'A server changed, added or removed a tool after the client had seen its list (a "rug pull" changes a trusted tool).',
        [...changed].map(([key, g]) => card('changed', g.latest, key.split('\0')[1].replace(/^definition_(\w+):/, 'Tool $1: '), g.reasons, seen(g)))),
      section('risky', 'High-risk calls', 'Calls and replies that scored high: sensitive paths, shell commands, secrets in results and the like.',
        risky.map(([e, rs]) => card('', e, [e.method, target(e)].filter(Boolean).join(' ') || e.kind, rs)))));
  }

  // ---- start -----------------------------------------------------------------------

  document.addEventListener('DOMContentLoaded', () => {
    $('#window').addEventListener('change', onWindow);
    $('#signout').addEventListener('click', () => { sessionStorage.removeItem(KEY); signIn(''); });
    window.addEventListener('hashchange', () => { route(); $('#main').focus({ preventScroll: true }); });
    route();
  });
})();
