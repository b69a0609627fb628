// The edgesim inspector: requests as they flow, each request's trip, the cache, the functions.
// Everything comes from the admin listener this page was served by; values from requests are
// only ever put into the page as text (textContent), never as HTML.
"use strict";

const MAX_ROWS = 1000;
const REFRESH_MS = 2000;
const rows = new Map(); // request id -> {summary, tr}
let selected = null;

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function resultOf(xCache) {
  return String(xCache || "").split(" ")[0];
}

function badge(text, cls) {
  return el("span", { class: "badge " + (cls || "") }, text);
}

function statusBadge(status) {
  return badge(status === 0 ? "000" : status, "s" + String(status)[0]);
}

function clock(iso) {
  return iso ? iso.slice(11, 23) : "";
}

// -- the request list ------------------------------------------------------------

function matches(s) {
  const status = document.getElementById("f-status").value;
  const xCache = document.getElementById("f-xcache").value;
  const path = document.getElementById("f-path").value;
  if (status && String(s.status)[0] !== status[0]) return false;
  if (xCache && resultOf(s.x_cache) !== xCache) return false;
  if (path && !s.url.includes(path)) return false;
  return true;
}

function applyFilters() {
  for (const { summary, tr } of rows.values()) tr.hidden = !matches(summary);
  showCount();
}

function showCount() {
  let shown = 0;
  for (const { tr } of rows.values()) if (!tr.hidden) shown += 1;
  document.getElementById("count").textContent = `${shown} of ${rows.size} requests`;
}

function knowXCache(xCache) {
  const select = document.getElementById("f-xcache");
  const result = resultOf(xCache);
  if (![...select.options].some((o) => o.value === result)) select.append(el("option", {}, result));
}

function addRequest(s, live) {
  if (rows.has(s.id)) return;
  const tr = el(
    "tr",
    { "data-id": s.id, class: live ? "fresh" : "" },
    el("td", {}, clock(s.time)),
    el("td", {}, s.method),
    el("td", { class: "url", title: s.url }, s.url),
    el("td", {}, statusBadge(s.status)),
    el("td", { title: s.x_cache }, badge(resultOf(s.x_cache), "x-" + resultOf(s.x_cache))),
    el("td", { class: "num" }, s.duration_ms.toFixed(1)),
  );
  tr.addEventListener("click", () => select(s.id));
  const body = document.querySelector("#request-list tbody");
  if (live) body.prepend(tr);
  else body.append(tr);
  rows.set(s.id, { summary: s, tr });
  knowXCache(s.x_cache);
  tr.hidden = !matches(s);
  while (rows.size > MAX_ROWS) {
    const oldest = body.lastElementChild;
    rows.delete(oldest.dataset.id);
    oldest.remove();
  }
  showCount(); // the new row's filter is applied above
}

// -- one request's trip ----------------------------------------------------------------

function kv(pairs) {
  const dl = el("dl", { class: "kv" });
  for (const [key, value] of pairs) {
    if (value === undefined || value === null || value === "") continue;
    dl.append(el("dt", {}, key), el("dd", {}, value));
  }
  return dl;
}

function headerTable(title, headers) {
  const table = el("table", { class: "headers" });
  for (const [name, value] of headers || []) table.append(el("tr", {}, el("td", {}, name), el("td", {}, value)));
  return el("details", {}, el("summary", {}, `${title} (${(headers || []).length})`), table);
}

function changeList(changes) {
  const list = el("ul", { class: "changes" });
  for (const c of changes) {
    const what = c.field === "header" ? c.name : c.field;
    let kind = "changed";
    let text = `~ ${what}: ${c.before} \u2192 ${c.after}`;
    if (c.before === null) {
      kind = "added";
      text = `+ ${what}: ${c.after}`;
    } else if (c.after === null) {
      kind = "removed";
      text = `- ${what}: ${c.before}`;
    }
    list.append(el("li", { class: kind }, text));
  }
  return list;
}

const OUTCOMES = {
  ContinueRequest: "continued with the request",
  GeneratedResponse: "generated a response",
  ModifiedResponse: "returned the response",
};

function hookStep(step) {
  if (!step.fired) {
    return el(
      "li",
      { class: "step skipped", "data-stage": step.stage },
      el("h3", {}, `${step.stage} \u00b7 ${step.function} \u2014 skipped`),
      el("p", { class: "why" }, step.skipped),
    );
  }
  const failed = Boolean(step.failure);
  const li = el(
    "li",
    { class: "step fired" + (failed ? " failed" : ""), "data-stage": step.stage },
    el(
      "h3",
      {},
      `${step.stage} \u00b7 ${step.function} \u2014 `,
      failed ? badge(step.outcome, "x-" + step.outcome) : OUTCOMES[step.outcome] || step.outcome,
    ),
    kv([
      ["duration", `${step.duration_ms.toFixed(2)} ms (billed ${step.billed_ms} ms)`],
      ["cold start", step.init_duration_ms === null ? "no (warm)" : `yes, Init Duration ${step.init_duration_ms.toFixed(2)} ms`],
      ["round trip", `${step.round_trip_ms.toFixed(2)} ms at the edge`],
      ["max memory", step.compute_utilization === null ? `${step.max_memory_mb} MB` : null],
      ["compute utilization", step.compute_utilization === null ? null : `${step.compute_utilization} of 100`],
      ["failure", step.failure],
    ]),
  );
  if (step.changes && step.changes.length) li.append(changeList(step.changes));
  else if (!failed && !step.generated) li.append(el("p", { class: "why muted" }, "no changes"));
  if (step.generated) {
    li.append(
      el("p", { class: "why" }, `generated ${step.generated.status} ${step.generated.reason} (${step.generated.body_bytes} bytes)`),
      headerTable("generated headers", step.generated.headers),
    );
  }
  const logs = (step.logs || []).filter((line) => !line.startsWith("REPORT "));
  if (logs.length) li.append(el("pre", { class: "logs" }, logs.join("\n")));
  if (step.report) li.append(el("pre", { class: "report" }, step.report));
  return li;
}

function cacheStep(step) {
  const li = el(
    "li",
    { class: "step", "data-stage": "cache" },
    el("h3", {}, "cache \u2014 ", step.decision),
    el("p", { class: "why" }, step.why || ""),
  );
  const pairs = (step.key_parts || []).map(([k, v]) => [`key ${k}`, v]);
  if (step.ttl !== undefined && step.ttl !== null) pairs.push(["TTL", `${step.ttl} s`]);
  if (step.age !== undefined) pairs.push(["age", `${step.age} s`]);
  if (step.ttl_left !== undefined) pairs.push(["TTL left", `${step.ttl_left} s`]);
  if (step.stored !== undefined) pairs.push(["stored", step.stored ? "yes" : "no"]);
  li.append(kv(pairs));
  return li;
}

function originStep(step) {
  const outcome = step.error ? step.error : `${step.status}`;
  const li = el(
    "li",
    { class: "step" + (step.error ? " failed" : ""), "data-stage": "origin" },
    el("h3", {}, `origin \u00b7 ${step.origin} \u2014 ${outcome} in ${step.ms.toFixed(2)} ms`),
    el("p", { class: "why" }, `${step.method} ${step.target}`),
    headerTable("request headers sent", step.request_headers),
  );
  if (step.response_headers) li.append(headerTable("response headers received", step.response_headers));
  return li;
}

function behaviorStep(step) {
  const policy = step.cache_policy;
  const functions = Object.entries(step.functions).map(([e, f]) => `${e}: ${f}`).join(", ");
  return el(
    "li",
    { class: "step", "data-stage": "behavior" },
    el("h3", {}, `behavior ${step.path_pattern} \u2192 origin ${step.origin}`),
    kv([
      ["allowed", step.allowed_methods.join(", ")],
      ["cached", step.cached_methods.join(", ")],
      ["cache policy", `${policy.name || "custom"}: min ${policy.min_ttl} s, default ${policy.default_ttl} s, max ${policy.max_ttl} s`],
      ["functions", functions || "none"],
    ]),
  );
}

function renderTrace(t) {
  const detail = document.getElementById("detail");
  const trip = el("ol", { class: "trip" });
  for (const step of t.trip) {
    if (step.stage === "behavior") trip.append(behaviorStep(step));
    else if (step.stage === "cache") trip.append(cacheStep(step));
    else if (step.stage === "origin") trip.append(originStep(step));
    else if (step.stage === "refused") trip.append(el("li", { class: "step failed", "data-stage": "refused" }, el("h3", {}, "refused"), el("p", {}, step.detail)));
    else trip.append(hookStep(step));
  }
  const timings = t.timings;
  detail.replaceChildren(
    el("h2", {}, `${t.method} ${t.url}`),
    el(
      "div",
      { class: "summary" },
      statusBadge(t.status),
      badge(t.x_cache, "x-" + resultOf(t.x_cache)),
      badge(`${timings.total_ms.toFixed(2)} ms`),
      t.aborted ? badge("cut off", "x-Error") : null,
    ),
    kv([
      ["request id", t.id],
      ["time", t.time],
      ["client", `${t.client.ip}:${t.client.port} HTTP/${t.http_version}`],
      ["simulated viewer", t.simulated_viewer ? Object.entries(t.simulated_viewer).filter(([k, v]) => v !== null && k !== "port").map(([k, v]) => `${k}=${v}`).join(", ") : null],
      ["result", `${t.result_type} (${t.detailed_result_type})`],
      ["timings", `first byte ${timings.first_byte_ms} ms \u00b7 origin ${timings.origin_ms} ms \u00b7 functions ${timings.functions_ms} ms \u00b7 edge ${timings.edge_ms} ms`],
      ["bytes", `${t.bytes.received} in, ${t.bytes.sent} out`],
      ["notes", t.notes.join("; ")],
    ]),
    trip,
    headerTable("viewer request headers", t.request.headers),
    t.response ? headerTable(`response headers (${t.response.status} ${t.response.reason})`, t.response.headers) : null,
  );
  detail.dataset.id = t.id;
}

async function select(id) {
  selected = id;
  for (const { tr } of rows.values()) tr.classList.toggle("selected", tr.dataset.id === id);
  const detail = document.getElementById("detail");
  const response = await fetch(`/requests/${encodeURIComponent(id)}`);
  if (selected !== id) return;
  if (!response.ok) {
    const problem = await response.json().catch(() => ({}));
    detail.replaceChildren(el("p", { class: "hint" }, (problem.Error && problem.Error.Message) || `HTTP ${response.status}`));
    return;
  }
  renderTrace(await response.json());
}

// -- live updates ---------------------------------------------------------------------

async function startRequests() {
  const response = await fetch("/requests?limit=200");
  const { requests } = await response.json();
  for (const s of requests) addRequest(s, false);
  const after = requests.length ? `?after=${encodeURIComponent(requests[0].id)}` : "";
  const live = document.getElementById("live");
  const events = new EventSource(`/inspector/events${after}`);
  events.addEventListener("request", (e) => addRequest(JSON.parse(e.data), true));
  events.addEventListener("open", () => {
    live.className = "live on";
    live.textContent = "live";
  });
  events.addEventListener("error", () => {
    live.className = "live off";
    live.textContent = "reconnecting\u2026";
  });
}

// -- the cache ------------------------------------------------------------------------

async function invalidate(paths) {
  const result = document.getElementById("invalidate-result");
  const response = await fetch("/invalidations", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ paths }),
  });
  const body = await response.json();
  result.textContent = response.ok
    ? `${paths.join(", ")}: ${body.Invalidation.ObjectsRemoved} removed`
    : `${body.Error.Code}: ${body.Error.Message}`;
  await refreshCache();
}

async function refreshCache() {
  const response = await fetch("/cache");
  const { stats, entries } = await response.json();
  document.getElementById("cache-stats").textContent =
    `${stats.entries} objects, ${stats.bytes} of ${stats.max_bytes} bytes \u00b7 ${stats.hits} hits, ${stats.misses} misses, ${stats.evictions} evicted, ${stats.invalidated} invalidated`;
  const body = document.querySelector("#cache-list tbody");
  body.replaceChildren(
    ...entries.map((e) => {
      const button = el("button", { type: "button", class: "invalidate" }, "Invalidate");
      button.addEventListener("click", () => invalidate([e.path]));
      return el(
        "tr",
        { "data-path": e.path, class: e.fresh ? "" : "muted" },
        el("td", { class: "path", title: e.key }, e.path),
        el("td", {}, statusBadge(e.status)),
        el("td", {}, e.content_type || ""),
        el("td", { class: "num" }, e.bytes),
        el("td", { class: "num" }, e.ttl),
        el("td", { class: "num" }, e.age.toFixed(0)),
        el("td", { class: "num" }, e.ttl_left.toFixed(0)),
        el("td", {}, button),
      );
    }),
  );
}

// -- functions -------------------------------------------------------------------------

async function refreshFunctions() {
  const response = await fetch("/functions");
  const { functions } = await response.json();
  const ms = (v) => (v === null ? "\u2013" : v.toFixed(2));
  document.querySelector("#function-list tbody").replaceChildren(
    ...functions.map((f) =>
      el(
        "tr",
        { "data-function": f.name },
        el("td", {}, f.name),
        el("td", {}, f.runtime),
        el("td", { class: "num" }, f.invocations),
        el("td", { class: "num" }, f.errors),
        el("td", { class: "num" }, f.throttles),
        el("td", { class: "num" }, f.cold_starts),
        el("td", { class: "num" }, ms(f.duration_ms.p50)),
        el("td", { class: "num" }, ms(f.duration_ms.p90)),
        el("td", { class: "num" }, ms(f.duration_ms.p99)),
        el("td", { class: "num" }, f.warm),
        el("td", { class: "num" }, f.busy),
        el("td", { class: "num" }, f.concurrency),
      ),
    ),
  );
}

// -- tabs ------------------------------------------------------------------------------

const refreshers = { cache: refreshCache, functions: refreshFunctions };
let current = "requests";

function show(tab) {
  current = tab;
  for (const button of document.querySelectorAll("nav button")) button.classList.toggle("active", button.dataset.tab === tab);
  for (const section of document.querySelectorAll("section.tab")) section.classList.toggle("active", section.id === tab);
  if (refreshers[tab]) refreshers[tab]();
}

for (const button of document.querySelectorAll("nav button")) button.addEventListener("click", () => show(button.dataset.tab));
for (const id of ["f-status", "f-xcache", "f-path"]) document.getElementById(id).addEventListener("input", applyFilters);
document.getElementById("filters").addEventListener("submit", (e) => e.preventDefault());
document.getElementById("invalidate-form").addEventListener("submit", (e) => {
  e.preventDefault();
  invalidate([document.getElementById("invalidate-path").value]);
});
document.getElementById("invalidate-all").addEventListener("click", () => invalidate(["/*"]));
setInterval(() => {
  if (refreshers[current] && !document.hidden) refreshers[current]();
}, REFRESH_MS);
startRequests();
