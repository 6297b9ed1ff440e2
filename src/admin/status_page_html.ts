/**
 * The status page `GET /` serves: one HTML document with its CSS and script inline, no external asset and no
 * build step. It holds no data itself: its script reads `clusters`, `pools` and `sessions` (relative URLs, so
 * a reverse proxy may mount the admin API under a prefix) every few seconds and fills the tables with
 * `textContent` only, so a name a client chose (an application_name such as `<script>`) is always text.
 *
 * The admin token: the page sends `Authorization: Bearer <token>` when it has one, from the URL fragment
 * (`/#token=...`; a fragment never reaches the server or its logs, and the script removes it from the address
 * bar and history at once) or from the form, and keeps it in sessionStorage (this tab only). Without a token
 * it tries anyway (an admin listener on loopback without `admin.token_file` needs none) and asks for one on 401.
 */

export const STATUS_STYLE = `
:root { color-scheme: light dark; --line: #8884; --dim: #888; --bad: #c0392b; --good: #1e8449; --warn: #b9770e; }
body { font: 14px/1.4 system-ui, sans-serif; margin: 1rem 1.5rem; }
h1 { font-size: 1.3rem; margin: 0 0 .2rem; }
h2 { font-size: 1.05rem; margin: 1.4rem 0 .4rem; }
#meta, .note { color: var(--dim); }
#error { color: var(--bad); font-weight: 600; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid var(--line); padding: .25rem .5rem; text-align: left; white-space: nowrap; }
td.num, th.num { text-align: right; }
td.wrap { white-space: normal; word-break: break-all; max-width: 28rem; }
.up { color: var(--good); font-weight: 600; }
.down { color: var(--bad); font-weight: 600; }
.role-primary { font-weight: 600; }
.active { color: var(--warn); }
form { margin: .6rem 0; }
form[hidden] { display: none; }
input { font: inherit; width: 22rem; }
`;

export const STATUS_SCRIPT = `
"use strict";
const REFRESH_MS = 3000;
const KEY = "pgrelay.admin_token";
const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem(KEY) || "";
const fromFragment = new URLSearchParams(location.hash.slice(1)).get("token");
if (fromFragment) {
  token = fromFragment;
  sessionStorage.setItem(KEY, token);
  history.replaceState(null, "", location.pathname + location.search);
}

/** A table cell holding text only: never parsed as HTML. */
function cell(value, className) {
  const td = document.createElement("td");
  td.textContent = value === null || value === undefined ? "" : String(value);
  if (className) td.className = className;
  return td;
}
function row(cells) {
  const tr = document.createElement("tr");
  tr.append(...cells);
  return tr;
}
function note(columns, text) {
  const td = cell(text, "note");
  td.colSpan = columns;
  return row([td]);
}
function bytes(n) {
  if (typeof n !== "number") return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? String(n) : n.toFixed(1)) + " " + units[i];
}
function age(iso) {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return "";
  const s = Math.max(0, Math.round((Date.now() - t) / 1000));
  return s < 120 ? s + " s ago" : s < 7200 ? Math.round(s / 60) + " min ago" : Math.round(s / 3600) + " h ago";
}

class Unauthorized extends Error {}
async function get(path) {
  const response = await fetch(path, {
    headers: token ? { authorization: "Bearer " + token } : {},
    cache: "no-store",
    credentials: "omit",
  });
  if (response.status === 401) throw new Unauthorized(token ? "the admin token was refused" : "this pgrelay needs its admin token");
  if (response.status === 404) return null;
  if (!response.ok) throw new Error(path + ": HTTP " + response.status + " " + (await response.text()).slice(0, 200));
  return await response.json();
}

function renderClusters(data) {
  const body = $("clusters").tBodies[0];
  const rows = [];
  for (const cluster of (data && data.clusters) || []) {
    for (const host of cluster.hosts || []) {
      const health = host.up ? "up" : "down";
      rows.push(row([
        cell(cluster.name),
        cell(host.host),
        cell(host.role, "role-" + String(host.role)),
        cell(health + (host.consecutive_failures ? " (" + host.consecutive_failures + " failed)" : ""), health),
        cell(host.lag_bytes === null || host.lag_bytes === undefined ? "" : bytes(host.lag_bytes), "num"),
        cell(host.timeline, "num"),
        cell(host.last_check ? age(host.last_check) : "never"),
        cell(host.error, "wrap"),
      ]));
    }
  }
  body.replaceChildren(...(rows.length ? rows : [note(8, "no clusters")]));
}

function renderPools(data) {
  const body = $("pools").tBodies[0];
  const pools = (data && data.pools) || [];
  if (pools.length === 0) return body.replaceChildren(note(12, "pooling not configured"));
  body.replaceChildren(...pools.map((pool) => row([
    cell(pool.route), cell(pool.cluster), cell(pool.host), cell(pool.database), cell(pool.user), cell(pool.mode),
    cell(pool.clients_active, "num"), cell(pool.clients_waiting, "num"), cell(pool.servers_active, "num"),
    cell(pool.servers_idle, "num"), cell(pool.servers_used, "num"), cell(pool.servers_login, "num"),
  ])));
}

function renderSessions(data) {
  const body = $("sessions").tBodies[0];
  const sessions = (data && data.sessions) || [];
  $("session-count").textContent = String(sessions.length);
  if (sessions.length === 0) return body.replaceChildren(note(11, "no sessions"));
  body.replaceChildren(...sessions.map((s) => row([
    cell(s.id), cell(s.user), cell(s.database), cell(s.application_name, "wrap"), cell(s.client), cell(s.route),
    cell(s.host), cell(s.state, s.state === "active" ? "active" : ""), cell(bytes(s.bytes_from_client), "num"),
    cell(bytes(s.bytes_from_server), "num"), cell(age(s.started_at)),
  ])));
}

async function refresh() {
  try {
    const [clusters, pools, sessions] = await Promise.all([get("clusters"), get("pools"), get("sessions")]);
    renderClusters(clusters);
    renderPools(pools);
    renderSessions(sessions);
    $("error").textContent = "";
    $("login").hidden = true;
    $("meta").textContent = "updated " + new Date().toLocaleTimeString() + ", every " + REFRESH_MS / 1000 + " s";
    document.body.dataset.state = "ok";
  } catch (error) {
    $("error").textContent = error.message;
    if (error instanceof Unauthorized) {
      $("login").hidden = false;
      for (const id of ["clusters", "pools", "sessions"]) $(id).tBodies[0].replaceChildren();
      document.body.dataset.state = "unauthorized";
    } else {
      document.body.dataset.state = "error";
    }
  }
}

async function loop() {
  if (!document.hidden) await refresh();
  setTimeout(loop, REFRESH_MS);
}

$("login").addEventListener("submit", (event) => {
  event.preventDefault();
  token = $("token").value.trim();
  $("token").value = "";
  if (token) sessionStorage.setItem(KEY, token);
  else sessionStorage.removeItem(KEY);
  void refresh();
});
loop();
`;

export const STATUS_BODY = `
<h1>pgrelay</h1>
<div id="meta">loading…</div>
<div id="error" role="alert"></div>
<form id="login" hidden autocomplete="off">
  <label>Admin token <input id="token" type="password" placeholder="the contents of admin.token_file"></label>
  <button type="submit">Show</button>
</form>
<h2>Clusters</h2>
<table id="clusters">
  <thead><tr><th>cluster</th><th>host</th><th>role</th><th>health</th><th class="num">lag</th><th class="num">timeline</th><th>last check</th><th>error</th></tr></thead>
  <tbody></tbody>
</table>
<h2>Pools</h2>
<table id="pools">
  <thead><tr><th>route</th><th>cluster</th><th>host</th><th>database</th><th>user</th><th>mode</th><th class="num">clients active</th><th class="num">clients waiting</th><th class="num">servers active</th><th class="num">servers idle</th><th class="num">servers used</th><th class="num">servers login</th></tr></thead>
  <tbody></tbody>
</table>
<h2>Sessions (<span id="session-count">0</span>)</h2>
<table id="sessions">
  <thead><tr><th>id</th><th>user</th><th>database</th><th>application</th><th>client</th><th>route</th><th>host</th><th>state</th><th class="num">from client</th><th class="num">from server</th><th>started</th></tr></thead>
  <tbody></tbody>
</table>
`;

export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>pgrelay status</title>
<link rel="icon" href="data:,">
<style>${STATUS_STYLE}</style>
</head>
<body>${STATUS_BODY}<script>${STATUS_SCRIPT}</script>
</body>
</html>
`;
