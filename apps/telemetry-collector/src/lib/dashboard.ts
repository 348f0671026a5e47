/**
 * The collector's dashboard: one self-contained page (no external scripts, styles or fonts)
 * that polls the graph, timeseries and canaries APIs and draws the service graph (versioned app
 * nodes), per-service golden signals and each canary's weight over time as inline SVG. Query parameters: `window` (graph window, default 60s), `refresh`
 * (poll period in ms, default 2000).
 */
export const dashboardHtml = /* html */ `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Aviary service graph</title>
<style>
  :root { --bg:#0f172a; --panel:#111c33; --ink:#e2e8f0; --muted:#94a3b8; --line:#1e293b; }
  * { box-sizing: border-box; }
  body { margin:0; font:14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; background:var(--bg); color:var(--ink); }
  header { display:flex; align-items:center; gap:16px; padding:12px 20px; border-bottom:1px solid var(--line); }
  header h1 { font-size:18px; margin:0; }
  header .meta { color:var(--muted); font-size:12px; }
  header .legend { margin-left:auto; display:flex; gap:14px; font-size:12px; color:var(--muted); align-items:center; }
  .sw { display:inline-block; width:18px; height:4px; border-radius:2px; vertical-align:middle; margin-right:4px; }
  main { padding:16px 20px; display:grid; gap:16px; }
  section { background:var(--panel); border:1px solid var(--line); border-radius:8px; padding:12px; }
  section h2 { margin:0 0 8px; font-size:14px; color:var(--muted); font-weight:600; }
  #graph { width:100%; height:460px; display:block; }
  .node text { fill:var(--ink); font-size:12px; }
  .node .sub { fill:var(--muted); font-size:10px; }
  .edge-label { fill:var(--muted); font-size:10px; }
  #charts { display:grid; grid-template-columns:repeat(auto-fill, minmax(330px, 1fr)); gap:12px; }
  .card { border:1px solid var(--line); border-radius:6px; padding:8px; }
  .card h3 { margin:0 0 4px; font-size:13px; }
  .card .now { color:var(--muted); font-size:11px; margin-bottom:4px; }
  .chart { width:100%; height:56px; display:block; }
  .chart text { fill:var(--muted); font-size:9px; }
  .empty { color:var(--muted); padding:24px; text-align:center; }
  #status.err { color:#f87171; }
  #canaries { display:grid; grid-template-columns:repeat(auto-fill, minmax(330px, 1fr)); gap:12px; }
  .canary .phase { font-weight:600; }
  .canary .gates { color:var(--muted); font-size:11px; }
  .canary .gates .bad { color:#f87171; }
</style>
</head>
<body>
<header>
  <h1>Aviary service graph</h1>
  <span class="meta">window <b id="window"></b> · <span id="status">loading…</span></span>
  <span class="legend">
    <span><span class="sw" style="background:#22c55e"></span>&lt;1% errors</span>
    <span><span class="sw" style="background:#f59e0b"></span>1–5%</span>
    <span><span class="sw" style="background:#ef4444"></span>≥5%</span>
    <span>● workload</span><span>▲ service</span><span>■ unknown caller</span>
    <span><svg width="12" height="15" viewBox="0 0 12 16" aria-hidden="true"><path d="M3 7 V4.5 a3 3 0 0 1 6 0 V7" fill="none" stroke="#e2e8f0" stroke-width="1.6"/><rect x="1" y="7" width="10" height="8" rx="1.5" fill="#e2e8f0"/></svg> mTLS</span>
  </span>
</header>
<main>
  <section><h2>Traffic</h2><svg id="graph" role="img" aria-label="service graph"></svg></section>
  <section id="canaries-section"><h2>Canaries (canary weight over time · last analysis)</h2><div id="canaries"></div></section>
  <section><h2>Golden signals per service (rate · errors · p99)</h2><div id="charts"></div></section>
</main>
<script>
(() => {
  'use strict';
  const params = new URLSearchParams(location.search);
  const windowParam = params.get('window') || '60s';
  const refresh = Math.max(250, Number(params.get('refresh')) || 2000);
  const NS = 'http://www.w3.org/2000/svg';
  document.getElementById('window').textContent = windowParam;

  function el(name, attrs, parent) {
    const e = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (parent) parent.appendChild(e);
    return e;
  }
  function errorColour(ratio) {
    if (ratio < 0.01) return '#22c55e';
    if (ratio < 0.05) return '#f59e0b';
    return '#ef4444';
  }
  function fmt(n, unit) {
    if (n >= 1000) return (n / 1000).toFixed(1) + 'k' + unit;
    if (n >= 100) return n.toFixed(0) + unit;
    if (n >= 10) return n.toFixed(1) + unit;
    return n.toFixed(2) + unit;
  }

  // Columns by longest path from the nodes nobody calls; rows in id order.
  function layout(nodes, edges, width, height) {
    const incoming = new Map(nodes.map((n) => [n.id, 0]));
    for (const e of edges) incoming.set(e.target, (incoming.get(e.target) || 0) + 1);
    const depth = new Map();
    for (const n of nodes) if (!incoming.get(n.id)) depth.set(n.id, 0);
    if (depth.size === 0 && nodes.length) depth.set(nodes[0].id, 0);
    for (let pass = 0; pass < nodes.length; pass++) {
      let changed = false;
      for (const e of edges) {
        const d = depth.get(e.source);
        if (d === undefined) continue;
        if ((depth.get(e.target) ?? -1) < d + 1 && d + 1 < nodes.length) { depth.set(e.target, d + 1); changed = true; }
      }
      if (!changed) break;
    }
    for (const n of nodes) if (!depth.has(n.id)) depth.set(n.id, 0);
    const cols = new Map();
    for (const n of nodes) { const d = depth.get(n.id); if (!cols.has(d)) cols.set(d, []); cols.get(d).push(n); }
    const ncol = Math.max(...cols.keys()) + 1;
    const pos = new Map();
    for (const [d, list] of cols) {
      list.forEach((n, i) => {
        pos.set(n.id, { x: 90 + (ncol === 1 ? (width - 180) / 2 : (d * (width - 180)) / (ncol - 1)), y: ((i + 1) * height) / (list.length + 1) });
      });
    }
    return pos;
  }

  function lock(parent, x, y) {
    const g = el('g', { class: 'lock', transform: 'translate(' + (x - 6) + ',' + (y - 8) + ')' }, parent);
    el('title', {}, g).textContent = 'mutual TLS';
    el('path', { d: 'M3 7 V4.5 a3 3 0 0 1 6 0 V7', fill: 'none', stroke: '#e2e8f0', 'stroke-width': 1.6 }, g);
    el('rect', { x: 1, y: 7, width: 10, height: 8, rx: 1.5, fill: '#e2e8f0' }, g);
    el('circle', { cx: 6, cy: 11, r: 1.3, fill: '#0f172a' }, g);
  }

  function drawGraph(g) {
    const svg = document.getElementById('graph');
    svg.replaceChildren();
    const width = svg.clientWidth || 1000, height = svg.clientHeight || 460;
    svg.setAttribute('viewBox', '0 0 ' + width + ' ' + height);
    if (g.nodes.length === 0) {
      const t = el('text', { x: width / 2, y: height / 2, 'text-anchor': 'middle', fill: '#94a3b8' }, svg);
      t.textContent = 'no traffic in the last ' + windowParam;
      return;
    }
    const defs = el('defs', {}, svg);
    for (const c of ['#22c55e', '#f59e0b', '#ef4444']) {
      const m = el('marker', { id: 'arrow' + c.slice(1), viewBox: '0 0 10 10', refX: 9, refY: 5, markerUnits: 'userSpaceOnUse', markerWidth: 11, markerHeight: 11, orient: 'auto-start-reverse' }, defs);
      el('path', { d: 'M0 0 L10 5 L0 10 z', fill: c }, m);
    }
    const pos = layout(g.nodes, g.edges, width, height);
    const maxRate = Math.max(...g.edges.map((e) => e.requestsPerSecond), 0.001);
    const edgeLayer = el('g', { class: 'edges' }, svg);
    for (const e of g.edges) {
      const a = pos.get(e.source), b = pos.get(e.target);
      if (!a || !b) continue;
      const colour = errorColour(e.errorRatio);
      const w = 1.5 + 8 * Math.sqrt(e.requestsPerSecond / maxRate);
      const x1 = a.x + 16, x2 = b.x - 18, mx = (x1 + x2) / 2;
      const path = el('path', {
        class: 'edge', 'data-id': e.id, 'data-source': e.source, 'data-target': e.target,
        'data-rate': e.requestsPerSecond, 'data-error-ratio': e.errorRatio, 'data-mtls': e.mtlsShare,
        d: 'M' + x1 + ' ' + a.y + ' C' + mx + ' ' + a.y + ',' + mx + ' ' + b.y + ',' + x2 + ' ' + b.y,
        fill: 'none', stroke: colour, 'stroke-width': w.toFixed(2), 'stroke-opacity': 0.85, 'marker-end': 'url(#arrow' + colour.slice(1) + ')',
      }, edgeLayer);
      el('title', {}, path).textContent = e.source + ' → ' + e.target + '\\n' + fmt(e.requestsPerSecond, ' rps') + ', ' + (e.errorRatio * 100).toFixed(1) + '% errors, p50 ' + fmt(e.p50Ms, 'ms') + ' p90 ' + fmt(e.p90Ms, 'ms') + ' p99 ' + fmt(e.p99Ms, 'ms') + ', mTLS ' + (e.mtlsShare * 100).toFixed(0) + '%';
      const my = (a.y + b.y) / 2;
      const label = el('text', { class: 'edge-label', x: mx, y: my - 10 - w / 2, 'text-anchor': 'middle' }, edgeLayer);
      label.textContent = fmt(e.requestsPerSecond, ' rps') + ' · ' + (e.errorRatio * 100).toFixed(1) + '%';
      if (e.mtlsShare >= 0.5) lock(edgeLayer, mx, my + 10);
    }
    const nodeLayer = el('g', { class: 'nodes' }, svg);
    for (const n of g.nodes) {
      const p = pos.get(n.id);
      const grp = el('g', { class: 'node', 'data-id': n.id, 'data-kind': n.kind, transform: 'translate(' + p.x + ',' + p.y + ')' }, nodeLayer);
      const fill = n.requestsPerSecond > 0 ? errorColour(n.errorRatio) : '#64748b';
      if (n.kind === 'service') el('path', { d: 'M0 -15 L15 11 L-15 11 z', fill: '#1e293b', stroke: fill, 'stroke-width': 2.5 }, grp);
      else if (n.kind === 'unknown') el('rect', { x: -13, y: -13, width: 26, height: 26, rx: 4, fill: '#1e293b', stroke: '#94a3b8', 'stroke-width': 2.5 }, grp);
      else el('circle', { r: 14, fill: '#1e293b', stroke: fill, 'stroke-width': 2.5 }, grp);
      const t = el('text', { class: 'name', y: 30, 'text-anchor': 'middle' }, grp);
      t.textContent = n.name + (n.version ? ' ' + n.version : '');
      const s = el('text', { class: 'sub', y: 43, 'text-anchor': 'middle' }, grp);
      s.textContent = n.namespace + (n.requestsPerSecond > 0 ? ' · in ' + fmt(n.requestsPerSecond, ' rps') : '');
      el('title', {}, grp).textContent = n.id;
    }
  }

  function sparkline(card, label, points, key, unit, colour) {
    const w = 300, h = 56;
    const svg = el('svg', { class: 'chart', viewBox: '0 0 ' + w + ' ' + h, preserveAspectRatio: 'none', 'data-series': key }, card);
    const values = points.map((p) => p[key]);
    const max = Math.max(...values, key === 'errorRatio' ? 0.05 : 0.001);
    const step = values.length > 1 ? w / (values.length - 1) : w;
    const ys = values.map((v) => h - 12 - (v / max) * (h - 20));
    const line = values.map((v, i) => (i === 0 ? 'M' : 'L') + (i * step).toFixed(1) + ' ' + ys[i].toFixed(1)).join(' ');
    if (values.length > 0) {
      el('path', { d: line + ' L' + ((values.length - 1) * step).toFixed(1) + ' ' + (h - 12) + ' L0 ' + (h - 12) + ' z', fill: colour, 'fill-opacity': 0.15 }, svg);
      el('path', { d: line, fill: 'none', stroke: colour, 'stroke-width': 1.5 }, svg);
    }
    const t = el('text', { x: 2, y: h - 2 }, svg);
    const last = values.length ? values[values.length - 1] : 0;
    t.textContent = label + ' ' + (key === 'errorRatio' ? (last * 100).toFixed(1) + '%' : fmt(last, unit)) + ' (max ' + (key === 'errorRatio' ? (max * 100).toFixed(1) + '%' : fmt(max, unit)) + ')';
  }

  function drawCharts(series) {
    const root = document.getElementById('charts');
    root.replaceChildren();
    if (series.length === 0) {
      const d = document.createElement('div'); d.className = 'empty'; d.textContent = 'no services with traffic yet'; root.appendChild(d);
      return;
    }
    for (const s of series) {
      const card = document.createElement('div');
      card.className = 'card'; card.dataset.service = s.service;
      const h = document.createElement('h3'); h.textContent = s.service; card.appendChild(h);
      sparkline(card, 'rate', s.points, 'requestsPerSecond', ' rps', '#38bdf8');
      sparkline(card, 'errors', s.points, 'errorRatio', '', '#ef4444');
      sparkline(card, 'p99', s.points, 'p99Ms', 'ms', '#a78bfa');
      root.appendChild(card);
    }
  }

  const phaseColour = { Progressing: '#38bdf8', Paused: '#f59e0b', Promoted: '#22c55e', RolledBack: '#ef4444', Failed: '#ef4444', Pending: '#94a3b8' };

  function drawCanaries(list, nowMs) {
    const root = document.getElementById('canaries');
    root.replaceChildren();
    if (list.length === 0) {
      const d = document.createElement('div'); d.className = 'empty'; d.textContent = 'no canary transitions seen yet'; root.appendChild(d);
      return;
    }
    for (const c of list) {
      const card = document.createElement('div');
      card.className = 'card canary'; card.dataset.canary = c.namespace + '/' + c.name; card.dataset.phase = c.phase; card.dataset.weight = String(c.weight);
      const h = document.createElement('h3'); h.textContent = c.namespace + '/' + c.name; card.appendChild(h);
      const now = document.createElement('div'); now.className = 'now';
      const ph = document.createElement('span'); ph.className = 'phase'; ph.style.color = phaseColour[c.phase] || '#e2e8f0'; ph.textContent = c.phase;
      now.append(ph, ' · canary ' + c.weight + '% · ' + c.reason);
      card.appendChild(now);
      // The weight as a step line from the first transition to now (0–100 %).
      const w = 300, hgt = 56;
      const svg = el('svg', { class: 'chart weights', viewBox: '0 0 ' + w + ' ' + hgt, preserveAspectRatio: 'none' }, card);
      const t0 = Date.parse(c.history[0].time), span = Math.max(1, nowMs - t0);
      const x = (t) => ((Date.parse(t) - t0) / span) * w;
      const y = (v) => hgt - 12 - (v / 100) * (hgt - 20);
      let d = 'M0 ' + y(0).toFixed(1);
      let previous = 0;
      for (const p of c.history) {
        d += ' L' + x(p.time).toFixed(1) + ' ' + y(previous).toFixed(1) + ' L' + x(p.time).toFixed(1) + ' ' + y(p.weight).toFixed(1);
        previous = p.weight;
      }
      d += ' L' + w + ' ' + y(c.weight).toFixed(1);
      el('path', { d, fill: 'none', stroke: phaseColour[c.phase] || '#38bdf8', 'stroke-width': 1.8 }, svg);
      const lbl = el('text', { x: 2, y: hgt - 2 }, svg);
      lbl.textContent = c.history.map((p) => p.weight + '%').join(' → ');
      const gates = document.createElement('div'); gates.className = 'gates';
      const a = c.analysis;
      if (a) {
        gates.textContent = 'last analysis ' + a.verdict + ': ' + a.canary.requests + ' req, ' + a.canary.successRate + '% ok, p99 ' + fmt(a.canary.p99Ms, 'ms') +
          (a.stable ? ' (stable ' + a.stable.successRate + '% ok, p99 ' + fmt(a.stable.p99Ms, 'ms') + ')' : '');
        for (const r of a.reasons) { const b = document.createElement('div'); b.className = 'bad'; b.textContent = r; gates.appendChild(b); }
      } else gates.textContent = c.message;
      card.appendChild(gates);
      root.appendChild(card);
    }
  }

  async function getJson(url) {
    const res = await fetch(url, { headers: { accept: 'application/json' } });
    if (!res.ok) throw new Error(url + ': HTTP ' + res.status);
    return res.json();
  }

  async function tick() {
    const status = document.getElementById('status');
    try {
      const [graph, ts, canaries] = await Promise.all([
        getJson('/api/v1/graph?window=' + encodeURIComponent(windowParam)),
        getJson('/api/v1/services/timeseries?window=5m&step=10s'),
        getJson('/api/v1/canaries'),
      ]);
      drawGraph(graph);
      drawCanaries(canaries.canaries, graph.timeMs);
      drawCharts(ts.services);
      status.className = '';
      status.textContent = graph.nodes.length + ' nodes, ' + graph.edges.length + ' edges · updated ' + new Date().toLocaleTimeString();
      document.body.dataset.loaded = 'true';
    } catch (err) {
      status.className = 'err';
      status.textContent = String(err && err.message || err);
    } finally {
      setTimeout(tick, refresh);
    }
  }
  void tick();
})();
</script>
</body>
</html>
`;
