// cairn console: polls this node's /api/v1/cluster and draws it. No
// framework, no build step; everything the page shows comes from the API.
"use strict";

const REFRESH_MS = 1500;
const $ = (id) => document.getElementById(id);
let inFlight = false;
let lastOK = 0;
let inspected = null; // {bucket, key} being inspected

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k);
  return e;
}

function dur(ms) {
  if (ms == null || ms < 0) return "\u2014";
  const s = Math.floor(ms / 1000);
  if (s < 60) return s + "s";
  const m = Math.floor(s / 60);
  if (m < 60) return m + "m " + (s % 60) + "s";
  const h = Math.floor(m / 60);
  if (h < 48) return h + "h " + (m % 60) + "m";
  return Math.floor(h / 24) + "d " + (h % 24) + "h";
}

function bytes(n) {
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + " " + u[i];
}

async function getJSON(url) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), 5000);
  try {
    const r = await fetch(url, { signal: ctl.signal, cache: "no-store" });
    const body = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(body.error || r.status + " " + r.statusText);
    return body;
  } finally {
    clearTimeout(timer);
  }
}

async function refresh() {
  if (inFlight) return;
  inFlight = true;
  try {
    const c = await getJSON("/api/v1/cluster");
    lastOK = Date.now();
    render(c);
  } catch (e) {
    const line = $("status-line");
    line.dataset.state = "down";
    line.textContent = "this console's node does not answer: " + e.message +
      (lastOK ? " (last answer " + dur(Date.now() - lastOK) + " ago)" : "");
  } finally {
    inFlight = false;
  }
  if (inspected) inspect(inspected, false);
}

function render(c) {
  $("cluster-name").textContent = c.cluster ? "\u00b7 " + c.cluster : "";
  const line = $("status-line");
  line.dataset.state = "ok";
  line.textContent = "via " + c.via + " \u00b7 updated " + new Date(c.at).toLocaleTimeString();
  const silent = Object.keys(c.unanswered || {}).sort();
  const down = c.members.filter((m) => !m.alive && m.status !== "removed").map((m) => m.name);
  const banner = $("banner");
  const msgs = [];
  if (down.length) msgs.push(down.join(", ") + (down.length > 1 ? " are" : " is") + " down (as " + c.via + " sees it)");
  for (const n of silent) msgs.push(n + " does not answer: " + c.unanswered[n]);
  banner.hidden = msgs.length === 0;
  banner.textContent = msgs.join(" \u00b7 ");
  renderMembers(c);
  renderOwned(c);
  renderSeries(c);
  renderHints(c.hints);
  renderAAE(c.aae, c.ring.partitions);
  renderTransfers(c.transfers);
}

// renderTransfers shows the membership change in flight (as `cairn
// transfers` does) and every answering node's partition streams.
function renderTransfers(t) {
  const sum = $("transfers-summary");
  const tb = $("transfers-streams").tBodies[0];
  tb.replaceChildren();
  if (!t || !t.changing) {
    sum.textContent = "no membership change in flight";
  } else {
    sum.textContent = "members " + (t.members || []).join(", ") + " \u2192 " + (t.next || []).join(", ") +
      " \u00b7 " + t.flipped + " partitions flipped, " + t.moving + " moving";
  }
  const streams = (t && t.streams) || [];
  for (const s of streams) {
    const tr = el("tr", { "data-state": s.state });
    tr.append(el("td", { class: "num", text: String(s.partition) }));
    tr.append(el("td", { text: s.from }));
    tr.append(el("td", { text: s.to }));
    tr.append(el("td", { text: s.state + (s.error ? ": " + s.error : "") }));
    tr.append(el("td", { class: "num", text: s.keys + (s.total_keys > 0 ? " / " + s.total_keys : "") }));
    tr.append(el("td", { class: "num", text: bytes(s.bytes) + (s.total_bytes > 0 ? " / " + bytes(s.total_bytes) : "") }));
    tr.append(el("td", { class: "num", text: s.bytes_per_sec > 0 ? bytes(s.bytes_per_sec) + "/s" : "\u2014" }));
    tr.append(el("td", { class: "num", text: s.eta_ms >= 0 && s.state === "streaming" ? dur(s.eta_ms) : "\u2014" }));
    tb.append(tr);
  }
  if (!streams.length && t && t.changing) {
    tb.append(el("tr", {}, el("td", { colspan: "8", text: "no stream running on the nodes that answered" })));
  }
}

function renderMembers(c) {
  const tb = $("members").tBodies[0];
  tb.replaceChildren();
  for (const m of c.members) {
    // Gossip's verdict lags a crash by seconds; a member that stopped
    // answering is said so at once.
    const live = m.status === "removed" ? "removed" : !m.alive ? "down" : m.answered ? "alive" : "alive (gossip), not answering";
    const tr = el("tr", { "data-node": m.name, "data-alive": String(m.alive), "data-answered": String(m.answered),
      class: (m.alive ? "alive" : "down") + (m.answered ? "" : " noanswer") });
    tr.append(el("td", { text: m.name }));
    tr.append(el("td", { class: m.alive ? "alive" : "down" }, el("span", { class: "dot" }), live));
    tr.append(el("td", { text: m.addr }));
    tr.append(el("td", { text: m.admin || "\u2014" }));
    tr.append(el("td", { class: "num", text: m.answered ? dur(m.uptime_ms) : "\u2014" }));
    tr.append(el("td", { text: m.answered ? m.build : "\u2014" }));
    tr.append(el("td", { text: m.status }));
    tr.append(el("td", { class: "num", text: String(m.owned || 0) }));
    tb.append(tr);
    if (!m.answered && m.error) {
      tb.append(el("tr", { class: "noanswer" }, el("td", {}), el("td", { class: "why", colspan: "7", text: "does not answer: " + m.error })));
    }
  }
  $("members-note").textContent = "liveness as " + c.via + " sees it";
}

function renderOwned(c) {
  const box = $("owned");
  box.replaceChildren();
  const q = c.ring.partitions || 1;
  const most = Math.max(1, ...Object.values(c.ring.owned || {}));
  for (const m of c.members) {
    const n = (c.ring.owned || {})[m.name] || 0;
    const bar = el("div", { class: "bar" + (m.alive ? "" : " down"), "data-node": m.name },
      el("span", { text: m.name }),
      el("div", { class: "fill", style: "width:" + (70 * n / most).toFixed(1) + "%" }),
      el("span", { text: n + " (" + (100 * n / q).toFixed(1) + "%)" }));
    box.append(bar);
  }
  $("ring-note").textContent = "Q=" + c.ring.partitions + " N=" + c.ring.n;
}

function line(svg, cls, values, top, w, h) {
  if (!values.length) return;
  const step = values.length > 1 ? w / (values.length - 1) : 0;
  let d = "";
  let pen = false;
  values.forEach((v, i) => {
    if (v == null) { pen = false; return; }
    const x = (i * step).toFixed(1);
    const y = (h - 4 - (h - 16) * v / top).toFixed(1);
    d += (pen ? "L" : "M") + x + " " + y + " ";
    pen = true;
  });
  const p = document.createElementNS("http://www.w3.org/2000/svg", "path");
  p.setAttribute("class", cls);
  p.setAttribute("d", d);
  svg.append(p);
}

function chart(svg, series, fmt) {
  const w = 400, h = Number(svg.getAttribute("viewBox").split(" ")[3]);
  svg.replaceChildren();
  let top = 0;
  for (const s of series) for (const v of s.values) if (v != null) top = Math.max(top, v);
  top = top > 0 ? top * 1.1 : 1;
  const ns = "http://www.w3.org/2000/svg";
  const g = document.createElementNS(ns, "line");
  g.setAttribute("class", "grid");
  g.setAttribute("x1", 0); g.setAttribute("x2", w); g.setAttribute("y1", 12); g.setAttribute("y2", 12);
  svg.append(g);
  // The label is HTML beside the SVG: text inside a stretched viewBox
  // would be stretched too.
  let label = svg.previousElementSibling;
  if (!label || !label.classList.contains("scale")) {
    label = el("div", { class: "scale" });
    svg.before(label);
  }
  label.textContent = "max " + fmt(top);
  for (const s of series) line(svg, s.cls, s.values, top, w, h);
}

function renderSeries(c) {
  const s = c.series, get = s.ops.get, put = s.ops.put;
  const n = (x) => x.toFixed(x < 10 ? 1 : 0);
  chart($("chart-rate"), [{ cls: "get", values: get.rate }, { cls: "put", values: put.rate }], n);
  chart($("chart-errors"), [{ cls: "get", values: get.errors }, { cls: "put", values: put.errors }], n);
  chart($("chart-p99"), [{ cls: "get", values: get.p99_ms }, { cls: "put", values: put.p99_ms }], (x) => x.toFixed(1) + " ms");
  chart($("chart-repairs"), [{ cls: "rep", values: s.repairs_per_min }], n);
  $("window").textContent = dur(s.t.length * 1000);
  const last = (a) => (a.length ? a[a.length - 1] : 0);
  const p = (v) => (v == null ? "\u2014" : v.toFixed(2) + " ms");
  const silent = Object.keys(c.unanswered || {});
  $("series-note").textContent = "now: get " + last(get.rate) + "/s (p99 " + p(last(get.p99_ms)) + "), put " + last(put.rate) +
    "/s (p99 " + p(last(put.p99_ms)) + ")" + (silent.length ? "; missing the share of " + silent.sort().join(", ") : "");
}

function renderHints(h) {
  const total = $("hints-total");
  total.textContent = String(h.pending);
  total.dataset.pending = String(h.pending);
  const ob = $("hints-owners").tBodies[0];
  ob.replaceChildren();
  for (const o of h.owners) {
    ob.append(el("tr", { "data-owner": o.owner, "data-pending": String(o.pending) },
      el("td", { text: o.owner }), el("td", { class: "num", text: String(o.pending) }),
      el("td", { class: "num", text: o.pending ? dur(o.oldest_ms) : "\u2014" }), el("td", { class: "num", text: bytes(o.bytes) })));
  }
  if (!h.owners.length) ob.append(el("tr", {}, el("td", { colspan: "4", text: "no hints kept" })));
  const qb = $("hints-queues").tBodies[0];
  qb.replaceChildren();
  for (const q of h.queues) {
    qb.append(el("tr", {}, el("td", { text: q.holder }), el("td", { text: q.owner }),
      el("td", { class: "num", text: String(q.pending) }), el("td", { class: "num", text: String(q.delivered) }),
      el("td", { text: q.delivering ? "yes" : "no" }), el("td", { class: "num", text: String(q.failures) })));
  }
}

const GRID_COLORS = { s: "--s", n: "--n", r: "--r", d: "--d", ".": "--u" };
const GRID_NAMES = { s: "in sync", n: "never exchanged", r: "repairing", d: "diverged", ".": "not replicated / unknown" };
let gridState = { grid: "", cols: 1, cell: 1 };

function renderAAE(a, q) {
  const cv = $("aae-grid");
  const ctx = cv.getContext("2d");
  const cols = Math.ceil(Math.sqrt(q * 2));
  const rows = Math.ceil(q / cols);
  const cell = Math.max(2, Math.floor(768 / cols));
  cv.width = cols * cell;
  cv.height = rows * cell;
  const css = getComputedStyle(document.documentElement);
  const color = {};
  for (const [k, v] of Object.entries(GRID_COLORS)) color[k] = css.getPropertyValue(v).trim();
  for (let p = 0; p < q; p++) {
    const s = a.grid[p] || ".";
    ctx.fillStyle = color[s] || color["."];
    ctx.fillRect((p % cols) * cell, Math.floor(p / cols) * cell, cell - (cell > 3 ? 1 : 0), cell - (cell > 3 ? 1 : 0));
  }
  gridState = { grid: a.grid, cols, cell };
  for (const k of ["in_sync", "never_exchanged", "repairing", "diverged", "unreplicated"]) {
    $("aae-" + k).textContent = String((a.counts || {})[k] || 0);
  }
  $("aae-note").textContent = a.enabled ? a.exchanges + " exchanges, " + a.failures + " failed" : "anti-entropy is off";
  $("repairs-per-min").textContent = String(a.repairs_last_minute);
}

function onGridHover(ev) {
  const cv = $("aae-grid");
  const r = cv.getBoundingClientRect();
  const scale = cv.width / r.width;
  const x = Math.floor((ev.clientX - r.left) * scale / gridState.cell);
  const y = Math.floor((ev.clientY - r.top) * scale / gridState.cell);
  const p = y * gridState.cols + x;
  const s = gridState.grid[p];
  $("aae-hover").textContent = s ? "partition " + p + ": " + GRID_NAMES[s] : "\u00a0";
}

let inspecting = false;

async function inspect(what, user) {
  if (inspecting && !user) return; // the last refresh's ask is still out
  inspecting = true;
  const note = $("inspect-note");
  try {
    const q = "/api/v1/key?bucket=" + encodeURIComponent(what.bucket) + "&key=" + encodeURIComponent(what.key);
    const k = await getJSON(q);
    if (inspected !== what) return;
    renderKey(k);
    note.textContent = "partition " + k.partition + " \u00b7 " + k.replicas.length + " replica(s)" +
      (k.differing.length ? " \u00b7 differing: " + k.differing.join(", ") : " \u00b7 all replicas agree");
    note.className = "";
  } catch (e) {
    if (inspected !== what) return;
    note.textContent = "inspecting " + what.bucket + "/" + what.key + " failed: " + e.message;
    note.className = "err";
    if (user) $("inspector").replaceChildren();
  } finally {
    inspecting = false;
  }
}

function renderKey(k) {
  const box = $("inspector");
  box.replaceChildren();
  for (const r of k.replicas) {
    const differs = k.differing.includes(r.node);
    const card = el("div", { class: "replica", "data-node": r.node, "data-differs": String(differs),
      "data-found": String(r.found), "data-siblings": String(r.siblings.length) });
    card.append(el("h4", {}, r.node + " ", el("span", { class: "role", text: r.primary ? "primary" : "fallback" })));
    if (r.error) card.append(el("p", { class: "err", text: "error: " + r.error }));
    else if (!r.found) card.append(el("p", { text: "missing" }));
    else card.append(el("p", { text: r.siblings.length + " sibling(s)" }));
    const ctx = Object.entries(r.context).sort().map(([a, n]) => a + ":" + n).join(" ");
    card.append(el("p", { class: "ctx", text: "context {" + ctx + "}" }));
    for (const s of r.siblings) {
      const val = s.tombstone ? el("span", { class: "tomb", text: "<tombstone>" })
        : (s.value_encoding === "base64" ? "base64:" + s.value : JSON.stringify(s.value));
      card.append(el("div", { class: "sibling" },
        el("span", { class: "dotv", text: "(" + s.actor + "," + s.counter + ") " }), val,
        el("div", { class: "ctx", text: "written " + new Date(s.written_at / 1e6).toISOString() })));
    }
    box.append(card);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("aae-grid").addEventListener("mousemove", onGridHover);
  $("inspect-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    inspected = { bucket: $("inspect-bucket").value, key: $("inspect-key").value };
    $("inspect-note").textContent = "asking every replica\u2026";
    inspect(inspected, true);
  });
  refresh();
  setInterval(refresh, REFRESH_MS);
});
