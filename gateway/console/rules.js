// Rules: list with toggles, run now, logs, delete; an editor (form and raw JSON) with a preview.
import { api } from "./api.js";
import { errorText, setRefresh, toast } from "./app.js";
import { fill, h, traceTable, when } from "./format.js";

const main = document.getElementById("main");
export const DESTRUCTIVE = new Set(["delete", "archive"]);
const ACTIONS = ["stop_seeding", "pause", "resume", "reannounce", "force_start", "delete", "archive",
  "add_tag", "remove_tag", "add_airlock", "remove_airlock"];
const NUMBER = ["RATIO", "SEEDING_TIME", "DOWNLOADING_TIME", "ACTIVE_TIME", "AGE",
  "DOWNLOAD_STALLED_TIME", "UPLOAD_STALLED_TIME", "LAST_DOWNLOAD_ACTIVITY_AT",
  "LAST_UPLOAD_ACTIVITY_AT", "STALL_COUNT", "PROGRESS", "PROGRESS_CHANGE", "DOWNLOAD_SPEED",
  "UPLOAD_SPEED", "AVG_DOWNLOAD_SPEED", "AVG_UPLOAD_SPEED", "MAX_DOWNLOAD_SPEED", "ETA", "SEEDS",
  "PEERS", "AVAILABILITY", "FILE_COUNT", "TOTAL_UPLOADED", "TOTAL_DOWNLOADED", "FILE_SIZE",
  "EXPIRES_AT"];
const KINDS = {
  ...Object.fromEntries(NUMBER.map((t) => [t, "number"])),
  NAME: "text", TRACKER: "text", ORIGINAL_URL: "text", STATUS: "status", TAGS: "tags",
  PRIVATE: "flag", CACHED: "flag", IS_ACTIVE: "flag", SEEDING_ENABLED: "flag",
  LONG_TERM_SEEDING: "flag", IS_AIRLOCKED: "flag", ALLOW_ZIP: "flag",
};
const OPERATORS = {
  number: ["gt", "gte", "lt", "lte", "eq"],
  text: ["contains", "not_contains", "equals", "not_equals", "starts_with", "ends_with", "matches"],
  status: ["is_any_of", "is_none_of"],
  tags: ["is_any_of", "is_all_of", "is_none_of", "is_set", "is_not_set"],
  flag: ["is_true", "is_false"],
};
const NEEDS_HOURS = new Set(["AVG_DOWNLOAD_SPEED", "AVG_UPLOAD_SPEED", "PROGRESS_CHANGE"]);

const sentence = (action, n) => `would ${action.replace("_", " ")} ${n} torrent${n === 1 ? "" : "s"}`;

// Preview ------------------------------------------------------------------------------------------

async function preview(rule) {
  const body = await api("POST", "/api/automation/rules/preview", { rule });
  const acting = body.torrents.filter((t) => t.matched && t.actionable);
  const names = acting.map((t) => t.name);
  const text = `${sentence(rule.action.type, acting.length)}${names.length ? `: ${names.slice(0, 10).join(", ")}${names.length > 10 ? ", …" : ""}` : ""}`;
  const details = body.torrents.filter((t) => t.matched).map((t) => h("details", {},
    h("summary", {}, `${t.name} (${t.status})${t.actionable ? "" : ` — skipped: ${t.skip_reason}`}`),
    traceTable(t.conditions)));
  const box = h("div", {
    className: `preview${DESTRUCTIVE.has(rule.action.type) ? " destructive" : ""}`, id: "preview",
    role: "status",
  }, h("p", {}, h("strong", {}, text)),
  h("p", { className: "muted small" }, `${body.matched_torrents} of ${body.total_torrents} torrents match now.`),
  details);
  return { box, acting: acting.length };
}

// The console's one confirmation dialog (a modal <dialog>, not the browser's confirm()):
// resolves true when the user confirms, false on Cancel or Escape.
function ask(title, body, okLabel) {
  const dialog = h("dialog", { "aria-labelledby": "confirm-title", id: "confirm" },
    h("h2", { id: "confirm-title" }, title),
    body,
    h("div", { className: "row" },
      h("button", { type: "button", value: "cancel", id: "confirm-cancel", onclick: () => dialog.close("cancel") }, "Cancel"),
      h("button", { type: "button", className: "danger", id: "confirm-ok", onclick: () => dialog.close("ok") }, okLabel)));
  document.body.append(dialog);
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(dialog.returnValue === "ok");
    });
  });
}

// Ask before a destructive rule acts: show what it would do now, resolve true on confirm.
async function confirmDestructive(rule, verb) {
  const { box } = await preview(rule);
  return ask(`${verb} "${rule.name}"?`, [
    h("p", {}, `This rule ${rule.action.type}s torrents; here is what it would do right now.`),
    box,
  ], `Confirm and ${verb.toLowerCase()}`);
}

// The list ------------------------------------------------------------------------------------------

export async function rulesView() {
  const logs = new Map();
  async function load() {
    const [{ rules }, { presets }] = await Promise.all([
      api("GET", "/api/automation/rules"), api("GET", "/api/automation/presets"),
    ]);
    const rows = rules.map((r) => {
      const toggle = h("input", { type: "checkbox", checked: r.enabled, id: `enable-${r.id}`,
        "aria-label": `Enable ${r.name}` });
      toggle.addEventListener("change", async () => {
        const on = toggle.checked;
        if (on && DESTRUCTIVE.has(r.action.type) && !r.dry_run) {
          if (!(await confirmDestructive({ ...r, enabled: true }, "Enable"))) {
            toggle.checked = false;
            return;
          }
        }
        try {
          await api("PUT", `/api/automation/rules/${r.id}`, { enabled: on });
          toast(`${r.name} ${on ? "enabled" : "disabled"}`);
          r.enabled = on;
          toggle.nextSibling.textContent = on ? "on" : "off";
        } catch (e) {
          toggle.checked = !on;
          toast(errorText(e));
        }
      });
      const logBox = h("div", { id: `logs-${r.id}` });
      if (logs.has(r.id)) logBox.append(logs.get(r.id));
      return h("tr", { "data-rule": r.id },
        h("td", { className: "name", "data-label": "Rule" }, h("a", { href: `#/rules/${r.id}` }, r.name),
          logBox),
        h("td", { "data-label": "Enabled" }, h("label", { className: "switch" }, toggle, r.enabled ? "on" : "off")),
        h("td", { "data-label": "Action" }, r.action.type, r.dry_run ? " (dry run)" : ""),
        h("td", { "data-label": "Trigger" }, r.trigger?.type === "event" ? `on ${(r.trigger.events || []).join(", ")}`
          : `every ${r.trigger?.value ?? 0} min`),
        h("td", { "data-label": "Last run" }, when(r.last_executed_at ?? r.lastExecutedAt ?? null)),
        h("td", { "data-label": "" }, h("div", { className: "row" },
          h("button", { type: "button", onclick: (e) => run(r, e.target) }, "Run now"),
          h("button", { type: "button", onclick: () => showLogs(r, logBox) }, "Logs"),
          h("button", { type: "button", className: "danger", onclick: () => remove(r) }, "Delete"))));
    });
    fill(main,
      h("h1", {}, "Rules"),
      h("div", { className: "row" }, h("a", { href: "#/rules/new", className: "shrink", id: "new-rule" }, "New rule")),
      rows.length ? h("div", { className: "table-wrap" }, h("table", { className: "responsive", id: "rules" },
        h("thead", {}, h("tr", {}, ["Rule", "Enabled", "Action", "Trigger", "Last run", ""].map((x) => h("th", { scope: "col" }, x)))),
        h("tbody", {}, rows))) : h("p", {}, "No rules yet: start from a preset or a new rule."),
      h("h2", {}, "Presets"),
      h("ul", { id: "presets" }, presets.map((p, i) => h("li", {},
        h("a", { href: `#/rules/new/${i}` }, p.name), h("span", { className: "muted small" }, ` → ${p.action.type}`)))));
  }
  async function run(r, button) {
    button.disabled = true;
    try {
      const { result } = await api("POST", `/api/automation/rules/${r.id}/run`);
      toast(`${r.name}: ${result.message ?? `${result.itemsProcessed ?? 0} processed`}`);
      await load();
    } catch (e) { toast(errorText(e)); }
    button.disabled = false;
  }
  async function showLogs(r, box) {
    if (logs.has(r.id)) { logs.delete(r.id); fill(box); return; }
    const body = await api("GET", `/api/automation/rules/${r.id}/logs?limit=20`);
    const list = body.logs.length ? h("ul", { className: "small" }, body.logs.map((l) => h("li", {},
      `${when(l.executed_at ?? l.executedAt)}: ${l.execution_type ?? l.executionType} · ${l.items_processed ?? l.itemsProcessed} items · `,
      l.success ? "ok" : `failed${l.error_message ? `: ${l.error_message}` : ""}`)))
      : h("p", { className: "muted small" }, "No runs logged.");
    logs.set(r.id, list);
    fill(box, list);
  }
  async function remove(r) {
    const sure = await ask(`Delete "${r.name}"?`,
      h("p", {}, "The rule and its logs are deleted; this cannot be undone."), "Delete the rule");
    if (!sure) return;
    try {
      await api("DELETE", `/api/automation/rules/${r.id}`);
      toast(`${r.name} deleted`);
      await load();
    } catch (e) { toast(errorText(e)); }
  }
  await load();
  setRefresh(load);
}

// The editor ----------------------------------------------------------------------------------------

function blank() {
  return {
    name: "New rule", enabled: false, trigger: { type: "interval", value: 5 },
    groups: [{ logicOperator: "and", conditions: [{ type: "RATIO", operator: "gte", value: 1 }] }],
    action: { type: "stop_seeding" },
  };
}

function parseValue(kind, text) {
  if (kind === "number") return text === "" ? 0 : Number(text);
  if (kind === "status" || kind === "tags") {
    return text.split(",").map((x) => x.trim()).filter(Boolean).map((x) => (kind === "tags" ? Number(x) : x));
  }
  if (kind === "flag") return true;
  return text;
}

export async function ruleEditor(id, presetIndex = null) {
  let rule;
  if (id !== null) rule = (await api("GET", `/api/automation/rules/${id}`)).rule;
  else if (presetIndex !== null) {
    const { presets } = await api("GET", "/api/automation/presets");
    rule = { ...presets[presetIndex], enabled: false };
    delete rule.id;
  } else rule = blank();
  rule = structuredClone(rule);
  let mode = "form";
  const error = h("p", { className: "error", role: "alert", id: "editor-error" });
  const previewBox = h("div", { id: "preview-box" });
  const formBox = h("div", { id: "rule-form" });
  const json = h("textarea", { id: "rule-json", "aria-label": "Rule as JSON", spellcheck: "false" });
  const tabs = h("div", { className: "tabs", role: "tablist" });

  function fromJson() {
    if (mode !== "json") return true;
    try { rule = JSON.parse(json.value); return true; } catch (e) {
      error.textContent = `The JSON does not parse: ${e.message}`;
      return false;
    }
  }

  function setMode(next) {
    if (!fromJson()) return;
    mode = next;
    error.textContent = "";
    draw();
  }

  function condition(group, c, index) {
    const kind = KINDS[c.type] ?? "number";
    const type = h("select", { "aria-label": "Condition", className: "c-type" },
      Object.keys(KINDS).map((t) => h("option", { value: t, selected: t === c.type }, t)));
    type.addEventListener("change", () => {
      c.type = type.value;
      const k = KINDS[c.type];
      c.operator = OPERATORS[k][0];
      c.value = k === "number" ? 0 : k === "text" ? "" : k === "flag" ? true : [];
      if (NEEDS_HOURS.has(c.type)) c.hours = c.hours ?? 1; else delete c.hours;
      draw();
    });
    const op = h("select", { "aria-label": "Operator", className: "c-op" },
      OPERATORS[kind].map((o) => h("option", { value: o, selected: o === c.operator }, o)));
    op.addEventListener("change", () => { c.operator = op.value; });
    const value = h("input", {
      type: kind === "number" ? "number" : "text", step: "any", "aria-label": "Value", className: "c-value",
      value: Array.isArray(c.value) ? c.value.join(", ") : c.value ?? "", disabled: kind === "flag",
    });
    value.addEventListener("input", () => { c.value = parseValue(kind, value.value); });
    const hours = h("input", { type: "number", step: "any", min: "0", "aria-label": "Over hours",
      placeholder: "hours", value: c.hours ?? "", disabled: !NEEDS_HOURS.has(c.type) });
    hours.addEventListener("input", () => { c.hours = Number(hours.value); });
    const held = h("input", { type: "number", step: "any", min: "0", "aria-label": "Held for minutes",
      placeholder: "held min", value: c.for_minutes ?? "" });
    held.addEventListener("input", () => {
      if (held.value === "") delete c.for_minutes; else c.for_minutes = Number(held.value);
    });
    return h("div", { className: "cond" }, type, op, value, hours, held,
      h("button", { type: "button", "aria-label": "Remove condition", onclick: () => {
        group.conditions.splice(index, 1);
        draw();
      } }, "✕"));
  }

  function form() {
    const name = h("input", { type: "text", id: "rule-name", value: rule.name ?? "" });
    name.addEventListener("input", () => { rule.name = name.value; });
    const enabled = h("input", { type: "checkbox", id: "rule-enabled", checked: !!rule.enabled });
    enabled.addEventListener("change", () => { rule.enabled = enabled.checked; });
    const dry = h("input", { type: "checkbox", id: "rule-dry", checked: !!rule.dry_run });
    dry.addEventListener("change", () => { rule.dry_run = dry.checked; });
    const action = h("select", { id: "rule-action" },
      ACTIONS.map((a) => h("option", { value: a, selected: a === rule.action?.type }, a)));
    action.addEventListener("change", () => { rule.action = { ...rule.action, type: action.value }; });
    rule.trigger = rule.trigger ?? { type: "interval", value: 5 };
    const every = h("input", { type: "number", min: "0", step: "any", id: "rule-interval",
      value: rule.trigger.value ?? 0, disabled: rule.trigger.type !== "interval" });
    every.addEventListener("input", () => { rule.trigger.value = Number(every.value); });
    const cooldown = h("input", { type: "number", min: "0", step: "any", id: "rule-cooldown",
      value: rule.cooldown_minutes ?? "" });
    cooldown.addEventListener("input", () => {
      rule.cooldown_minutes = cooldown.value === "" ? null : Number(cooldown.value);
    });
    rule.groups = rule.groups ?? [];
    return [
      h("div", { className: "row" },
        h("div", {}, h("label", { for: "rule-name" }, "Name"), name),
        h("div", {}, h("label", { for: "rule-action" }, "Action"), action)),
      h("div", { className: "row" },
        h("div", {}, h("label", { for: "rule-interval" }, "Every (minutes; 0 = every poll)"), every),
        h("div", {}, h("label", { for: "rule-cooldown" }, "Cooldown per torrent (minutes)"), cooldown),
        h("label", { className: "switch shrink" }, enabled, "Enabled"),
        h("label", { className: "switch shrink" }, dry, "Dry run")),
      rule.groups.map((g, gi) => {
        const logic = h("select", { "aria-label": `Group ${gi + 1} logic` },
          ["and", "or"].map((o) => h("option", { value: o, selected: o === g.logicOperator }, o === "and" ? "all of" : "any of")));
        logic.addEventListener("change", () => { g.logicOperator = logic.value; });
        return h("fieldset", {}, h("legend", {}, `Group ${gi + 1}: match `, logic),
          g.conditions.map((c, ci) => condition(g, c, ci)),
          h("button", { type: "button", onclick: () => {
            g.conditions.push({ type: "RATIO", operator: "gte", value: 1 });
            draw();
          } }, "Add condition"));
      }),
      h("button", { type: "button", onclick: () => {
        rule.groups.push({ logicOperator: "and", conditions: [{ type: "RATIO", operator: "gte", value: 1 }] });
        draw();
      } }, "Add group"),
    ];
  }

  function draw() {
    fill(tabs, ...["form", "json"].map((m) => h("button", {
      type: "button", role: "tab", "aria-selected": String(m === mode), id: `tab-${m}`,
      onclick: () => setMode(m),
    }, m === "form" ? "Form" : "Raw JSON")));
    if (mode === "form") {
      fill(formBox, ...form());
      json.hidden = true;
      formBox.hidden = false;
    } else {
      json.value = JSON.stringify(rule, null, 2);
      json.hidden = false;
      formBox.hidden = true;
    }
  }

  async function doPreview() {
    if (!fromJson()) return null;
    error.textContent = "";
    try {
      const result = await preview(rule);
      fill(previewBox, result.box);
      return result;
    } catch (e) {
      error.textContent = errorText(e);
      return null;
    }
  }

  async function save() {
    if (!fromJson()) return;
    error.textContent = "";
    if (rule.enabled && !rule.dry_run && DESTRUCTIVE.has(rule.action?.type)) {
      try {
        if (!(await confirmDestructive(rule, "Save"))) return;
      } catch (e) { error.textContent = errorText(e); return; }
    }
    try {
      const { rules } = await api("GET", "/api/automation/rules");
      const others = rules.filter((r) => r.id !== rule.id);
      const index = rules.findIndex((r) => r.id === rule.id);
      const next = index >= 0 ? rules.map((r) => (r.id === rule.id ? rule : r)) : [...others, rule];
      const saved = await api("POST", "/api/automation/rules", { rules: next });
      for (const w of saved.warnings ?? []) toast(w);
      toast(`${rule.name} saved`);
      location.hash = "#/rules";
    } catch (e) {
      error.textContent = errorText(e);
    }
  }

  draw();
  fill(main,
    h("p", {}, h("a", { href: "#/rules" }, "← Rules")),
    h("h1", {}, id === null ? "New rule" : `Edit: ${rule.name}`),
    tabs, h("div", { className: "card" }, formBox, json), error,
    h("div", { className: "row" },
      h("button", { type: "button", id: "preview-rule", onclick: doPreview }, "Preview"),
      h("button", { type: "button", className: "primary", id: "save-rule", onclick: save }, "Save")),
    previewBox);
}
