// The console: sign-in, router, torrents (status, last action and why), detail, archive, health.
import { api, ApiError, session, stream } from "./api.js";
import { lineChart } from "./chart.js";
import {
  bytes, derived, duration, fill, h, percent, ratio, speed, traceTable, when,
} from "./format.js";
import { rulesView, ruleEditor } from "./rules.js";

const main = document.getElementById("main");
const state = { torrents: [], observedAt: null, sort: ["name", 1], filter: { status: "", rule: "", text: "" } };
let live = null;
let refresh = null; // the current view's reload, called when the event stream says something changed
let pending = null;

export function toast(text) {
  const el = document.getElementById("toast");
  el.textContent = text;
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.hidden = true; }, 4000);
}

export function errorText(error) {
  if (!(error instanceof ApiError)) return String(error);
  return error.field ? `${error.message} (${error.field})` : error.message;
}

// Sign in -----------------------------------------------------------------------------------------

function signInView(message) {
  document.getElementById("bar").hidden = true;
  const input = h("input", { type: "password", id: "key", autocomplete: "off", required: true,
    "aria-describedby": "key-help" });
  const error = h("p", { className: "error", role: "alert", id: "signin-error" }, message ?? "");
  const form = h("form", { className: "card signin", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, "TorBox automation"),
    h("label", { for: "key" }, "TorBox API key"),
    input,
    h("p", { className: "muted small", id: "key-help" },
      "Kept in this tab's session storage only and sent as x-api-key to this backend."),
    error,
    h("button", { type: "submit", className: "primary" }, "Sign in"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    error.textContent = "Checking the key with TorBox…";
    try {
      await api("POST", "/api/backend/api-key/ensure-db", undefined, key);
      session.set(key);
      start();
    } catch (e) {
      error.textContent = signInError(e);
    }
  });
  fill(main, form);
  input.focus();
}

function signInError(e) {
  if (!(e instanceof ApiError)) return String(e);
  if (e.code === "INVALID_API_KEY") return "TorBox refused this API key (or it is not a key).";
  if (e.status === 404) return "This key is not registered with this backend.";
  if (e.status === 429) return "Too many attempts; wait a minute and try again.";
  if (e.status === 0 || e.status >= 500) return "The backend is not available right now.";
  return errorText(e);
}

// Router -----------------------------------------------------------------------------------------

const routes = [
  [/^#\/torrents\/(\d+)$/, (m) => torrentDetail(Number(m[1])), "torrents"],
  [/^#\/rules\/new(?:\/(\d+))?$/, (m) => ruleEditor(null, m[1] ? Number(m[1]) : null), "rules"],
  [/^#\/rules\/(\d+)$/, (m) => ruleEditor(Number(m[1])), "rules"],
  [/^#\/rules$/, () => rulesView(), "rules"],
  [/^#\/archive$/, () => archiveView(), "archive"],
  [/^#\/health$/, () => healthView(), "health"],
  [/^/, () => torrentsView(), "torrents"],
];

export function setRefresh(fn) { refresh = fn; }

async function route() {
  if (!session.key) { signInView(); return; }
  refresh = null;
  hideTip();
  const hash = location.hash || "#/torrents";
  for (const [pattern, view, nav] of routes) {
    const m = hash.match(pattern);
    if (!m) continue;
    for (const a of document.querySelectorAll("[data-nav]")) {
      if (a.dataset.nav === nav) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
    try {
      await view(m);
    } catch (e) {
      if (e instanceof ApiError && (e.status === 401 || e.code === "INVALID_API_KEY")) {
        signOut("Your key was refused; sign in again.");
        return;
      }
      fill(main, h("p", { className: "error", role: "alert" }, errorText(e)));
    }
    main.focus({ preventScroll: true });
    return;
  }
}

function start() {
  document.getElementById("bar").hidden = false;
  if (live) live.close();
  const indicator = document.getElementById("live");
  live = stream(onEvent, (on) => {
    indicator.textContent = on ? "live" : "reconnecting";
    indicator.classList.toggle("on", on);
  });
  route();
}

function signOut(message) {
  session.clear();
  if (live) live.close();
  live = null;
  signInView(message);
}

function onEvent(event) {
  if (event.event === "error") return;
  if (event.event !== "changed") {
    const who = event.torrent_id ? ` (#${event.torrent_id})` : "";
    toast(`Live: ${event.event}${who}`);
  }
  // Coalesce a burst of events into one reload of the current view.
  if (refresh && !pending) {
    pending = setTimeout(async () => {
      pending = null;
      try { await refresh(); } catch { /* the next event retries */ }
    }, 250);
  }
}

// Tooltip: on hover and on keyboard focus -----------------------------------------------------------

const tip = document.getElementById("tooltip");

function showTip(anchor, content) {
  fill(tip, content);
  tip.hidden = false;
  const box = anchor.getBoundingClientRect();
  const width = tip.offsetWidth;
  const left = Math.max(4, Math.min(box.left, window.innerWidth - width - 4));
  let top = box.bottom + 6;
  if (top + tip.offsetHeight > window.innerHeight) top = Math.max(4, box.top - tip.offsetHeight - 6);
  tip.style.left = `${left}px`;
  tip.style.top = `${top}px`;
}

function hideTip() { tip.hidden = true; }
document.addEventListener("keydown", (e) => { if (e.key === "Escape") hideTip(); });

function withTip(anchor, content) {
  anchor.setAttribute("aria-describedby", "tooltip");
  anchor.addEventListener("mouseenter", () => showTip(anchor, content()));
  anchor.addEventListener("focus", () => showTip(anchor, content()));
  anchor.addEventListener("mouseleave", hideTip);
  anchor.addEventListener("blur", hideTip);
  return anchor;
}

function actionTip(a) {
  return h("div", { className: "why" },
    h("p", {}, h("strong", {}, a.rule_name), ` → ${a.action}${a.dry_run ? " (dry run)" : ""}`),
    h("p", {}, "Outcome: ", h("span", { className: `badge ${a.status}` }, a.status),
      a.error_message ? ` ${a.error_message}` : ""),
    h("p", { className: "muted" }, `At ${when(a.created_at)}`),
    a.reason && a.reason.length ? traceTable(a.reason) : h("p", { className: "muted" }, "No condition values recorded."));
}

// Torrents -----------------------------------------------------------------------------------------

const COLUMNS = [
  ["name", "Name", (t) => t.name.toLowerCase()],
  ["status", "State", (t) => t.status],
  ["progress", "Progress", (t) => t.last_progress ?? -1],
  ["ratio", "Ratio", (t) => t.ratio ?? -1],
  ["derived", "Automation status", (t) => t.seeding_time_seconds || t.download_stalled_seconds || 0],
  ["protected", "Protected", (t) => (t.protected ? 1 : 0)],
  ["action", "Last action", (t) => (t.last_action ? t.last_action.created_at : "")],
];

async function loadTorrents() {
  const body = await api("GET", "/api/automation/torrents");
  state.torrents = body.torrents;
  state.observedAt = body.observed_at;
}

async function torrentsView() {
  await loadTorrents();
  const statusSel = h("select", { id: "f-status", "aria-label": "Filter by state" });
  const ruleSel = h("select", { id: "f-rule", "aria-label": "Filter by rule" });
  const text = h("input", { type: "search", id: "f-text", placeholder: "Name contains…",
    "aria-label": "Filter by name", value: state.filter.text });
  const summary = h("p", { className: "muted small", id: "summary", role: "status" });
  const table = h("table", { className: "responsive", id: "torrents" });
  const wrap = h("div", { className: "table-wrap" }, table);

  function options() {
    const statuses = [...new Set(state.torrents.map((t) => t.status))].sort();
    fill(statusSel, h("option", { value: "" }, "Every state"),
      statuses.map((s) => h("option", { value: s, selected: s === state.filter.status }, s)));
    const rules = new Map();
    for (const t of state.torrents) if (t.last_action) rules.set(String(t.last_action.rule_id), t.last_action.rule_name);
    fill(ruleSel, h("option", { value: "" }, "Any rule or none"),
      [...rules].map(([id, name]) => h("option", { value: id, selected: id === state.filter.rule }, `matched by ${name}`)));
  }

  function render() {
    options();
    const f = state.filter;
    const [key, dir] = state.sort;
    const column = COLUMNS.find((c) => c[0] === key);
    const rows = state.torrents
      .filter((t) => !f.status || t.status === f.status)
      .filter((t) => !f.rule || (t.last_action && String(t.last_action.rule_id) === f.rule))
      .filter((t) => !f.text || t.name.toLowerCase().includes(f.text.toLowerCase()))
      .sort((a, b) => {
        const x = column[2](a); const y = column[2](b);
        return (x < y ? -1 : x > y ? 1 : 0) * dir;
      });
    const head = h("tr", {}, COLUMNS.map(([k, label]) => h("th", {
      scope: "col", "aria-sort": k === key ? (dir > 0 ? "ascending" : "descending") : "none",
    }, h("button", { type: "button", onclick: () => {
      state.sort = [k, k === key ? -dir : 1];
      render();
    } }, label))));
    fill(table, h("thead", {}, head), h("tbody", {}, rows.map(row)));
    summary.textContent = `${rows.length} of ${state.torrents.length} torrents · last poll ${when(state.observedAt)}`;
  }

  function row(t) {
    const facts = derived(t);
    const a = t.last_action;
    return h("tr", { "data-torrent": t.torrent_id },
      h("td", { className: "name", "data-label": "Name" },
        t.queued ? t.name : h("a", { href: `#/torrents/${t.torrent_id}` }, t.name)),
      h("td", { "data-label": "State" }, h("span", { className: `badge ${t.status}` }, t.status),
        t.last_state && t.last_state !== t.status ? h("div", { className: "derived" }, t.last_state) : null),
      h("td", { className: "num", "data-label": "Progress" }, percent(t.last_progress)),
      h("td", { className: "num", "data-label": "Ratio" }, ratio(t.ratio)),
      h("td", { "data-label": "Automation status", className: "derived" },
        facts.length ? facts.map((x) => h("div", {}, x)) : "—"),
      h("td", { "data-label": "Protected" }, t.queued ? "—" : h("label", { className: "switch" },
        h("input", { type: "checkbox", checked: t.protected, "aria-label": `Protect ${t.name}`,
          onchange: (e) => protect(t, e.target.checked) }), t.protected ? "yes" : "no")),
      h("td", { "data-label": "Last action" }, a ? withTip(
        h("button", { type: "button", className: "link last-action" },
          `${a.action} · ${a.status}`), () => actionTip(a)) : h("span", { className: "muted" }, "none")));
  }

  statusSel.addEventListener("change", () => { state.filter.status = statusSel.value; render(); });
  ruleSel.addEventListener("change", () => { state.filter.rule = ruleSel.value; render(); });
  text.addEventListener("input", () => { state.filter.text = text.value; render(); });
  fill(main, h("h1", {}, "Torrents"),
    h("div", { className: "row" }, statusSel, ruleSel, text), summary, wrap);
  render();
  setRefresh(async () => {
    await loadTorrents();
    hideTip();
    render();
  });
}

async function protect(t, on) {
  try {
    await api("PUT", "/api/downloads/protect", { download_ids: [t.torrent_id], protected: on });
    toast(on ? `${t.name} is protected` : `${t.name} is no longer protected`);
    t.protected = on;
  } catch (e) {
    toast(errorText(e));
  }
}

// One torrent ---------------------------------------------------------------------------------------

// Parts of a view that a refresh replaces only when their data changed, in place, so the reader
// keeps their scroll position (and focus) while the event stream redraws.
function partial() {
  const parts = new Map();
  return (name, data, build) => {
    const key = JSON.stringify(data);
    const old = parts.get(name);
    if (old && old.key === key) return old.el;
    const el = build() ?? h("div", { hidden: true });
    if (old) old.el.replaceWith(el);
    parts.set(name, { key, el });
    return el;
  };
}

async function torrentDetail(id) {
  const part = partial();
  let drawn = false;
  async function load() {
    const [list, events, history] = await Promise.all([
      api("GET", "/api/automation/torrents?include_removed=true"),
      api("GET", `/api/automation/torrents/${id}/events?limit=200`),
      api("GET", `/api/automation/torrents/${id}/history`),
    ]);
    const t = list.torrents.find((x) => x.torrent_id === id && !x.queued);
    if (!t) throw new ApiError(404, { error: "This torrent is not known" });
    const facts = [
      ["State", `${t.status} (TorBox: ${t.last_state || "—"})`],
      ["Progress", percent(t.last_progress)], ["Ratio", ratio(t.ratio)], ["Size", bytes(t.size)],
      ["Seeds / peers", `${t.seeds ?? "?"} / ${t.peers ?? "?"}`],
      ["Downloaded", bytes(t.last_total_downloaded)], ["Uploaded", bytes(t.last_total_uploaded)],
      ["Real seeding time", duration(t.seeding_time_seconds)],
      ["Downloading time", duration(t.downloading_time_seconds)],
      ["Stalled for", t.stalled_since ? duration(t.download_stalled_seconds) : "not stalled"],
      ["Stalls", String(t.stall_count)],
      ["Avg download 5 m / 1 h", `${speed(t.avg_download_speed_5m)} / ${speed(t.avg_download_speed_1h)}`],
      ["Avg upload 5 m / 1 h", `${speed(t.avg_upload_speed_5m)} / ${speed(t.avg_upload_speed_1h)}`],
      ["Last download activity", when(t.last_download_activity_at)],
      ["Last upload activity", when(t.last_upload_activity_at)],
      ["First seen", when(t.first_seen_at)], ["Protected", t.protected ? "yes" : "no"],
    ];
    const samples = history.samples;
    const time = (x) => new Date(x.observed_at).getTime();
    const title = part("title", t.name, () => h("h1", {}, t.name));
    const factsCard = part("facts", facts, () => h("div", { className: "card facts", id: "facts" },
      facts.map(([k, v]) => h("div", {}, h("span", {}, k), v))));
    const action = part("action", t.last_action, () => (t.last_action
      ? h("section", {}, h("h2", {}, "Last automation action"), h("div", { className: "card" }, actionTip(t.last_action)))
      : null));
    const charts = part("charts", samples, () => h("div", { className: "card grid2", id: "charts" },
      lineChart("Bytes transferred", [
        { label: "downloaded", className: "down", points: samples.map((x) => [time(x), x.downloaded]) },
        { label: "uploaded", className: "up", points: samples.map((x) => [time(x), x.uploaded]) },
      ], bytes),
      lineChart("Speed (average between samples)", [
        { label: "download", className: "down", points: samples.filter((x) => x.download_speed !== null).map((x) => [time(x), x.download_speed]) },
        { label: "upload", className: "up", points: samples.filter((x) => x.upload_speed !== null).map((x) => [time(x), x.upload_speed]) },
      ], speed)));
    const timeline = part("timeline", events.events, () => (events.events.length
      ? h("ol", { className: "timeline card", id: "timeline" }, events.events.map((e) => h("li", {},
        h("strong", {}, e.type), " ", h("span", { className: "muted small" }, when(e.observed_at)),
        e.data && Object.keys(e.data).length ? h("div", {}, h("code", {}, JSON.stringify(e.data))) : null)))
      : h("p", { className: "muted" }, "No events yet.")));
    if (drawn) return;
    drawn = true;
    fill(main, h("p", {}, h("a", { href: "#/torrents" }, "← Torrents")), title, factsCard, action,
      h("h2", {}, "Transfer history"), charts, h("h2", {}, "Event timeline"), timeline);
  }
  await load();
  setRefresh(load);
}

// Archive ------------------------------------------------------------------------------------------

async function archiveView() {
  async function load() {
    const body = await api("GET", "/api/archived-downloads?limit=100");
    const rows = body.data.map((a) => h("tr", {},
      h("td", { className: "name", "data-label": "Name" }, a.name),
      h("td", { "data-label": "Archived" }, when(a.archived_at)),
      h("td", { "data-label": "Tracker" }, a.tracker ?? "—"),
      h("td", { "data-label": "" }, h("button", { type: "button", disabled: !a.magnet, onclick: async (e) => {
        e.target.disabled = true;
        try {
          await api("POST", `/api/archived-downloads/${a.id}/restore`);
          toast(`${a.name} is queued to be added again`);
          await load();
        } catch (err) { toast(errorText(err)); e.target.disabled = false; }
      } }, "Restore"))));
    fill(main, h("h1", {}, "Archive"),
      h("p", { className: "muted" }, "Torrents a rule archived: their magnet was kept before TorBox deleted them."),
      rows.length ? h("div", { className: "table-wrap" }, h("table", { className: "responsive" },
        h("thead", {}, h("tr", {}, ["Name", "Archived", "Tracker", ""].map((x) => h("th", { scope: "col" }, x)))),
        h("tbody", {}, rows))) : h("p", {}, "Nothing archived."));
  }
  await load();
  setRefresh(load);
}

// Health -------------------------------------------------------------------------------------------

// The key as the scheduler sees it; unknown stays unknown (no answer, or no fetch yet).
function keyHealth(a) {
  const p = a.polling;
  if (a.status !== "active") return `${a.status}: not polled`;
  if (!p) return "active · health unknown (the scheduler did not answer)";
  if (p.key_health === "unknown") return "active · health unknown: no fetch with this key yet";
  const failures = p.consecutive_failures
    ? ` · ${p.consecutive_failures} failed fetch${p.consecutive_failures === 1 ? "" : "es"} in a row`
      + (p.last_error_code ? ` (${p.last_error_code})` : "")
    : "";
  return `active · ${p.key_health}${failures}`;
}

// When the scheduler (it owns time) will poll next; never invented when it does not say.
function nextPoll(a) {
  const p = a.polling;
  if (!p) return "unknown: the scheduler did not answer";
  if (!p.scheduled || !p.next_poll_at) {
    return a.status === "active" ? "unknown: not scheduled yet" : `none: the key is ${a.status}`;
  }
  const at = new Date(p.next_poll_at);
  const text = at.getTime() <= Date.now() ? `due now (${at.toLocaleString()})` : when(p.next_poll_at);
  const every = p.interval_seconds ? ` · every ${duration(p.interval_seconds)}` : "";
  return `${text}${every}${p.paused ? " · paused while TorBox is down" : ""}`;
}

function heldEvent(e, names) {
  const held = (e.data && e.data.held) || [];
  return h("li", {},
    h("p", {}, h("strong", {}, `${held.length} action${held.length === 1 ? "" : "s"} held`), " ",
      h("span", { className: "muted small" }, when(e.observed_at))),
    h("p", { className: "reason" }, `Why: ${(e.data && e.data.reason) || "no reason recorded"}`),
    held.length ? h("ul", { className: "held-list" }, held.map((x) => h("li", {},
      `${x.rule_name} → ${x.action} `, h("span", { className: "badge held" }, "held"),
      ` ${names.get(x.torrent_id) ?? `torrent #${x.torrent_id}`}`))) : null);
}

let healthTicker = null;

async function healthView() {
  let latest = null;
  async function load() {
    const [account, events, status, torrents] = await Promise.all([
      api("GET", "/api/automation/account"),
      api("GET", "/api/automation/account/events?limit=20"),
      api("GET", "/api/backend/status").catch(() => null),
      api("GET", "/api/automation/torrents?include_removed=true"),
    ]);
    const a = account.account;
    latest = a;
    // A held item names a torrent or a queued item by id; a torrent wins a shared number.
    const names = new Map([...torrents.torrents].sort((x, y) => Number(y.queued) - Number(x.queued))
      .map((t) => [t.torrent_id, t.name]));
    const holds = events.events.filter((e) => e.type === "AUTOMATION_HELD");
    const held = torrents.torrents.filter((t) => t.present !== false && t.last_action
      && ["held", "skipped", "failed"].includes(t.last_action.status));
    const scheduler = status && status.scheduler;
    const facts = [
      ["Key", keyHealth(a), "key-health"],
      ["Last poll", when(a.last_poll_at), "last-poll"],
      ["Next poll", nextPoll(a), "next-poll"],
      ["Torrents", String(a.torrent_count)],
      ["Enabled rules", a.has_enabled_rules ? "yes" : "none"],
      ["Last seen here", when(a.last_seen_at)],
      ["TorBox polling", scheduler ? (scheduler.breaker_state === "open" ? "paused (TorBox outage)" : "normal") : "unknown"],
      ["Dry run", scheduler ? (scheduler.dry_run ? "on: nothing is sent" : "off") : "unknown"],
    ];
    fill(main, h("h1", {}, "Automation health"),
      h("div", { className: "card facts", id: "health" },
        facts.map(([k, v, id]) => h("div", { id }, h("span", {}, k), v))),
      h("h2", {}, "Held actions and why"),
      h("p", { className: "muted small" },
        "A safety cap holds every destructive action of a poll that would act on too many torrents, or on a list TorBox has not confirmed."),
      holds.length ? h("ol", { className: "timeline card", id: "holds" }, holds.map((e) => heldEvent(e, names)))
        : h("p", { className: "muted", id: "holds-none" }, "No action was held."),
      h("h2", {}, "Torrents whose last action did not go through"),
      held.length ? h("ul", { id: "not-sent" }, held.map((t) => h("li", {}, h("strong", {}, t.name), ": ",
        `${t.last_action.rule_name} → ${t.last_action.action}: ${t.last_action.status}`,
        t.last_action.error_message ? ` (${t.last_action.error_message})` : "")))
        : h("p", { className: "muted" }, "None: every last action went through."));
  }
  await load();
  setRefresh(load);
  // "in 40 s" counts down between the redraws the event stream causes.
  clearInterval(healthTicker);
  healthTicker = setInterval(() => {
    const el = document.getElementById("next-poll");
    if (!el) { clearInterval(healthTicker); return; }
    fill(el, h("span", {}, "Next poll"), nextPoll(latest));
  }, 1000);
}

document.getElementById("signout").addEventListener("click", () => signOut());
window.addEventListener("hashchange", route);
if (session.key) start(); else signInView();
