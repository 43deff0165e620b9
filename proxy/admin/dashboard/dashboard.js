// proxy/admin/dashboard/dashboard.js — the operator's dashboard. Reads only the admin API
// of the origin it was served from (CSP connect-src 'self') with the admin token, which is
// kept in this tab's sessionStorage only. A token may also arrive in the URL fragment
// (#token=…, never sent to a server by the browser): it is moved to sessionStorage and
// the fragment is removed at once. Every value from the API reaches the page as text
// (textContent, SVG <title>), never as markup. body[data-state] is "login", "loading",
// "ready" or "error", for people and for the browser test.
"use strict";

const TOKEN_KEY = "ringway-admin-token";
const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);

// ---- The token -------------------------------------------------------------------------

function takeTokenFromFragment() {
  const match = /^#token=([^&]+)/.exec(location.hash);
  if (match) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
}

function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

function showLogin(message) {
  document.body.dataset.state = "login";
  $("main").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
  $("token").focus();
}

// ---- The admin API -----------------------------------------------------------------------

class AuthError extends Error {}

async function api(path) {
  const response = await fetch(path, {
    headers: { Authorization: "Bearer " + token() },
    cache: "no-store",
    credentials: "omit",
  });
  if (response.status === 401) {
    throw new AuthError("the admin token was refused");
  }
  const body = await response.json();
  if (!response.ok) {
    const message = body && body.error ? body.error.message : response.statusText;
    throw new Error(path + ": " + response.status + " " + message);
  }
  return body;
}

// ---- Formatting --------------------------------------------------------------------------

function utcDay(date) {
  return date.toISOString().slice(0, 10);
}

function rangeDays() {
  const days = Number($("range").value) || 30;
  const list = [];
  const today = new Date();
  for (let i = days - 1; i >= 0; i--) {
    list.push(utcDay(new Date(today.getTime() - i * 86400000)));
  }
  return list;
}

const usd = (text) => Number(text || 0);
function money(value) {
  const n = typeof value === "string" ? Number(value) : value;
  return "$" + (n >= 100 ? n.toFixed(2) : n >= 1 ? n.toFixed(3) : n.toFixed(6));
}
const ms = (us) => (us === null || us === undefined ? "–" : (us / 1000).toFixed(1));

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) {
    node.textContent = String(text);
  }
  if (cls) {
    node.className = cls;
  }
  return node;
}

// Fills `table` from columns [{title, value(row) → text|Node, numeric?}] and rows.
function fillTable(table, columns, rows, emptyText) {
  table.replaceChildren();
  const head = el("tr");
  for (const column of columns) {
    head.append(el("th", column.title, column.numeric ? "n" : ""));
  }
  table.append(el("thead"));
  table.tHead.append(head);
  const body = el("tbody");
  if (rows.length === 0) {
    const cell = el("td", emptyText || "nothing yet", "empty");
    cell.colSpan = columns.length;
    body.append(el("tr"));
    body.lastChild.append(cell);
  }
  for (const row of rows) {
    const tr = el("tr");
    for (const column of columns) {
      const value = column.value(row);
      const td = value instanceof Node ? el("td") : el("td", value);
      if (value instanceof Node) {
        td.append(value);
      }
      td.className = (column.numeric ? "n " : "") + (column.cls ? column.cls(row) : "");
      tr.append(td);
    }
    body.append(tr);
  }
  table.append(body);
}

// ---- Charts (inline SVG) -----------------------------------------------------------------

function svgNode(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    node.setAttribute(name, String(value));
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

const W = 640, H = 200, L = 56, R = 10, T = 10, B = 26;

function niceMax(value) {
  if (!(value > 0)) return 1;
  const power = Math.pow(10, Math.floor(Math.log10(value)));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (step * power >= value) return step * power;
  }
  return 10 * power;
}

// The frame: y grid with 4 steps up to `max`, day labels under the first, middle, last.
function chartFrame(days, max, format) {
  const svg = svgNode("svg", { viewBox: `0 0 ${W} ${H}`, role: "img" });
  for (let i = 0; i <= 4; i++) {
    const y = T + ((H - T - B) * (4 - i)) / 4;
    svg.append(svgNode("line", { x1: L, x2: W - R, y1: y, y2: y, class: "axis" }));
    svg.append(svgNode("text", { x: L - 6, y: y + 4, "text-anchor": "end" },
      format((max * i) / 4)));
  }
  const picks = new Set([0, Math.floor((days.length - 1) / 2), days.length - 1]);
  for (const i of picks) {
    const x = L + ((W - L - R) * (i + 0.5)) / days.length;
    const anchor = i === 0 && days.length > 1 ? "start" : i === days.length - 1 ? "end" : "middle";
    svg.append(svgNode("text", { x, y: H - 8, "text-anchor": anchor }, days[i]));
  }
  return svg;
}

function barChart(container, days, values, format) {
  const max = niceMax(Math.max(0, ...values));
  const svg = chartFrame(days, max, format);
  const slot = (W - L - R) / days.length;
  days.forEach((day, i) => {
    const h = ((H - T - B) * values[i]) / max;
    const bar = svgNode("rect", {
      x: L + slot * i + slot * 0.15, y: H - B - h, width: slot * 0.7, height: Math.max(h, 0),
      class: "bar",
    });
    bar.append(svgNode("title", {}, day + ": " + format(values[i])));
    svg.append(bar);
  });
  container.replaceChildren(svg);
}

// series: [{name, values (null: no point), cls}]
function lineChart(container, days, series, format) {
  const all = series.flatMap((s) => s.values.filter((v) => v !== null));
  const max = niceMax(Math.max(0, ...all));
  const svg = chartFrame(days, max, format);
  const slot = (W - L - R) / days.length;
  const legend = el("div", null, "legend");
  for (const s of series) {
    let path = "";
    s.values.forEach((v, i) => {
      if (v === null) return;
      const x = L + slot * (i + 0.5);
      const y = H - B - ((H - T - B) * v) / max;
      path += (path && s.values[i - 1] !== null ? "L" : "M") + x.toFixed(1) + " " + y.toFixed(1);
      const dot = svgNode("circle", { cx: x, cy: y, r: 2.5, class: s.cls });
      dot.append(svgNode("title", {}, `${days[i]} ${s.name}: ${format(v)}`));
      svg.append(dot);
    });
    svg.append(svgNode("path", { d: path || "M0 0", class: "line " + s.cls }));
    const item = el("span", s.name);
    item.prepend(el("i", null, s.cls.split(" ")[0]));
    legend.append(item);
  }
  container.replaceChildren(svg, legend);
}

// ---- Views -------------------------------------------------------------------------------

function byDay(rows, days, field) {
  const index = new Map(rows.map((r) => [r.day, r]));
  return days.map((d) => (index.has(d) ? field(index.get(d)) : 0));
}

function renderSummary(dayRows) {
  const sum = (f) => dayRows.reduce((a, r) => a + f(r), 0);
  const cards = [
    ["requests", sum((r) => r.requests)],
    ["prompt tokens", sum((r) => r.prompt_tokens)],
    ["completion tokens", sum((r) => r.completion_tokens)],
    ["total tokens", sum((r) => r.total_tokens)],
    ["spend", money(sum((r) => usd(r.cost_usd)))],
    ["unpriced requests", sum((r) => r.unpriced_requests)],
  ];
  $("summary").replaceChildren(...cards.map(([k, v]) => {
    const card = el("div", null, "card");
    card.append(el("div", v, "v"), el("div", k, "k"));
    card.dataset.metric = k;
    return card;
  }));
}

const totalsColumns = [
  { title: "requests", value: (r) => r.requests, numeric: true },
  { title: "prompt tokens", value: (r) => r.prompt_tokens, numeric: true },
  { title: "completion tokens", value: (r) => r.completion_tokens, numeric: true },
  { title: "cached input", value: (r) => r.cached_input_tokens, numeric: true },
  { title: "reasoning", value: (r) => r.reasoning_tokens, numeric: true },
  { title: "total tokens", value: (r) => r.total_tokens, numeric: true },
  { title: "spend (USD)", value: (r) => r.cost_usd, numeric: true },
];

function renderCharts(days, dayRows, latency) {
  barChart($("chart-spend"), days, byDay(dayRows, days, (r) => usd(r.cost_usd)),
    (v) => "$" + Number(v.toPrecision(3)));
  barChart($("chart-requests"), days, byDay(dayRows, days, (r) => r.requests),
    (v) => String(Number(v.toPrecision(3))));
  lineChart($("chart-tokens"), days, [
    { name: "prompt", values: byDay(dayRows, days, (r) => r.prompt_tokens), cls: "s0" },
    { name: "completion", values: byDay(dayRows, days, (r) => r.completion_tokens), cls: "s1" },
  ], (v) => String(Math.round(v)));
  const index = new Map(latency.map((r) => [r.day, r]));
  const pick = (field, p) => days.map((d) => {
    const r = index.get(d);
    return r && r[field][p] !== null ? r[field][p] / 1000 : null;
  });
  lineChart($("chart-latency"), days, [
    { name: "latency p50", values: pick("latency_us", "p50"), cls: "s0" },
    { name: "latency p99", values: pick("latency_us", "p99"), cls: "s0 dash" },
    { name: "first byte p50", values: pick("ttfb_us", "p50"), cls: "s1" },
    { name: "first byte p99", values: pick("ttfb_us", "p99"), cls: "s1 dash" },
  ], (v) => v.toFixed(v < 10 ? 1 : 0));
}

function renderChannels(channels) {
  fillTable($("channels"), [
    { title: "id", value: (c) => c.id, numeric: true },
    { title: "channel", value: (c) => c.name },
    { title: "kind", value: (c) => c.kind },
    { title: "enabled", value: (c) => (c.enabled ? "yes" : "no") },
    { title: "state", value: (c) => c.health.state, cls: (c) => "state-" + c.health.state },
    { title: "reason", value: (c) => c.health.reason || "" },
    { title: "since", value: (c) => (c.health.since ? new Date(c.health.since * 1000)
      .toISOString().replace("T", " ").slice(0, 19) : "") },
    { title: "last error", value: (c) => c.health.last_error || "" },
    { title: "retry in (ms)", value: (c) => c.health.retry_in_ms, numeric: true },
  ], channels, "no channel");
}

function renderLimits(keys) {
  const now = Date.now() / 1000;
  const rows = keys.filter((k) => k.status === "active").map((k) => {
    const ratio = k.quota_tokens ? k.quota_used_tokens / k.quota_tokens : null;
    const expiresIn = k.expires_at ? (k.expires_at - now) / 86400 : null;
    return { key: k, ratio, expiresIn };
  }).filter((r) => r.ratio !== null || (r.expiresIn !== null && r.expiresIn < 7));
  rows.sort((a, b) => (b.ratio || 0) - (a.ratio || 0));
  fillTable($("limits"), [
    { title: "key", value: (r) => r.key.name },
    { title: "quota used", value: (r) => {
      if (r.ratio === null) return "no quota";
      const meter = el("span", null, "meter");
      const bar = el("span", null, r.ratio >= 1 ? "spent" : r.ratio >= 0.8 ? "near" : "");
      bar.style.width = Math.min(100, r.ratio * 100).toFixed(1) + "%";  // CSSOM, not markup.
      meter.append(bar);
      const wrap = el("span");
      wrap.append(meter, el("span", (r.ratio * 100).toFixed(1) + "%"));
      return wrap;
    }, cls: (r) => (r.ratio >= 0.8 ? "near" : "") },
    { title: "used / quota (tokens)", value: (r) => r.ratio === null ? "" :
      r.key.quota_used_tokens + " / " + r.key.quota_tokens, numeric: true },
    { title: "spend (USD)", value: (r) => r.key.spend_usd, numeric: true },
    { title: "rpm", value: (r) => r.key.rpm || "–", numeric: true },
    { title: "concurrency", value: (r) => r.key.max_concurrency || "–", numeric: true },
    { title: "expires", value: (r) => r.expiresIn === null ? "never" :
      r.expiresIn <= 0 ? "expired" : r.expiresIn.toFixed(1) + " days",
      cls: (r) => (r.expiresIn !== null && r.expiresIn < 7 ? "near" : "") },
  ], rows, "no active key has a quota or expires within 7 days");
}

function renderGroups(keyRows, modelRows, channelRows, dayRows, names) {
  const keyName = (id) => names.keys.get(id) || "key " + id;
  const channelName = (id) => names.channels.get(id) || "channel " + id;
  const bySpend = (a, b) => usd(b.cost_usd) - usd(a.cost_usd) || b.total_tokens - a.total_tokens;
  fillTable($("by-key"), [{ title: "key", value: (r) => keyName(r.key_id) }, ...totalsColumns],
    keyRows.sort(bySpend));
  fillTable($("by-model"), [{ title: "model", value: (r) => r.model }, ...totalsColumns],
    modelRows.sort(bySpend));
  fillTable($("by-channel"), [{ title: "channel", value: (r) => channelName(r.channel_id) },
    ...totalsColumns], channelRows.sort(bySpend));
  fillTable($("by-day"), [{ title: "day", value: (r) => r.day }, ...totalsColumns],
    dayRows.slice().reverse());
}

async function loadLogs(names) {
  const params = new URLSearchParams({ limit: "100" });
  if ($("filter-status").value) params.set("status", $("filter-status").value);
  if ($("filter-end").value) params.set("end_reason", $("filter-end").value);
  const logs = await api("/admin/logs?" + params.toString());
  $("logs-count").textContent = logs.data.length + " newest rows";
  fillTable($("logs"), [
    { title: "time (UTC)", value: (r) => new Date(r.ts_ms).toISOString().replace("T", " ")
      .slice(0, 19) },
    { title: "key", value: (r) => names.keys.get(r.key_id) || "key " + r.key_id },
    { title: "channel", value: (r) => names.channels.get(r.channel_id) || String(r.channel_id) },
    { title: "endpoint", value: (r) => r.endpoint },
    { title: "model", value: (r) => r.model_sent || r.model_requested },
    { title: "status", value: (r) => r.status, numeric: true,
      cls: (r) => (r.status >= 400 ? "bad" : "") },
    { title: "end reason", value: (r) => r.end_reason,
      cls: (r) => (r.end_reason === "complete" ? "" : "bad") },
    { title: "tokens", value: (r) => r.total_tokens, numeric: true },
    { title: "cost (USD)", value: (r) => r.cost_usd, numeric: true },
    { title: "latency (ms)", value: (r) => ms(r.latency_us), numeric: true },
    { title: "first byte (ms)", value: (r) => ms(r.ttfb_us), numeric: true },
    { title: "request id", value: (r) => r.request_id },
  ], logs.data, "no request matches");
}

let names = { keys: new Map(), channels: new Map() };

async function load() {
  if (!token()) {
    showLogin();
    return;
  }
  document.body.dataset.state = "loading";
  $("status").textContent = "loading…";
  $("login").hidden = true;
  $("main").hidden = false;
  const days = rangeDays();
  const since = days[0];
  $("range-text").textContent = since + " … " + days[days.length - 1] + " (UTC)";
  const q = "/admin/usage?since=" + since + "&group_by=";
  try {
    const [keys, channels, perDay, perKey, perModel, perChannel, latency] = await Promise.all([
      api("/admin/keys"), api("/admin/channels"), api(q + "day"), api(q + "key"),
      api(q + "model"), api(q + "channel"), api("/admin/latency?since=" + since),
    ]);
    names = {
      keys: new Map(keys.data.map((k) => [k.id, k.name])),
      channels: new Map(channels.data.map((c) => [c.id, c.name])),
    };
    renderSummary(perDay.data);
    renderCharts(days, perDay.data, latency.data);
    renderChannels(channels.data);
    renderLimits(keys.data);
    renderGroups(perKey.data, perModel.data, perChannel.data, perDay.data, names);
    await loadLogs(names);
    $("status").textContent = "updated " + new Date().toISOString().slice(11, 19) + " UTC";
    document.body.dataset.state = "ready";
  } catch (error) {
    if (error instanceof AuthError) {
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin(error.message);
      return;
    }
    $("status").textContent = "error: " + error.message;
    document.body.dataset.state = "error";
  }
}

document.addEventListener("DOMContentLoaded", () => {
  takeTokenFromFragment();
  $("login").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
    $("token").value = "";
    load();
  });
  $("logout").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    showLogin();
  });
  $("refresh").addEventListener("click", load);
  $("range").addEventListener("change", load);
  for (const id of ["filter-status", "filter-end"]) {
    $(id).addEventListener("change", () => loadLogs(names).catch((error) => {
      $("status").textContent = "error: " + error.message;
    }));
  }
  load();
});
