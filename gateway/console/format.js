// Formatting: DOM building without innerHTML, durations, sizes, derived status, condition text.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "className") el.className = value;
    else if (value === true) el.setAttribute(name, "");
    else el.setAttribute(name, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "unknown";
  let s = Math.max(0, Math.round(seconds));
  const d = Math.floor(s / 86400); s -= d * 86400;
  const hrs = Math.floor(s / 3600); s -= hrs * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  if (d) return `${d} d ${hrs} h`;
  if (hrs) return `${hrs} h ${m} m`;
  if (m) return `${m} m`;
  return `${s} s`;
}

export function bytes(n) {
  if (n === null || n === undefined) return "unknown";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0; let v = Number(n);
  while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
  return `${v.toFixed(v >= 100 || i === 0 ? 0 : 1)} ${units[i]}`;
}

export const speed = (n) => (n === null || n === undefined ? "unknown" : `${bytes(n)}/s`);

export function when(iso) {
  if (!iso) return "never";
  const t = new Date(iso);
  const ago = (Date.now() - t.getTime()) / 1000;
  const rel = ago >= 0 ? `${duration(ago)} ago` : `in ${duration(-ago)}`;
  return `${rel} (${t.toLocaleString()})`;
}

export function percent(p) {
  return p === null || p === undefined ? "unknown" : `${Math.round(p * 1000) / 10}%`;
}

export function ratio(r) {
  return r === null || r === undefined ? "unknown" : r.toFixed(2);
}

// The telemetry TorBox does not give, in a sentence per fact.
export function derived(t) {
  const out = [];
  if (t.stalled_since) out.push(`stalled for ${duration(t.download_stalled_seconds)}`);
  if (t.seeding_time_seconds > 0) {
    out.push(`seeding ${duration(t.seeding_time_seconds)} of real seeding time`);
  }
  if (t.avg_upload_speed_1h !== null && t.avg_upload_speed_1h !== undefined) {
    out.push(`avg upload ${speed(t.avg_upload_speed_1h)} over 1 h`);
  } else if (t.avg_upload_speed_5m !== null && t.avg_upload_speed_5m !== undefined) {
    out.push(`avg upload ${speed(t.avg_upload_speed_5m)} over 5 m`);
  }
  if (t.status === "downloading" && t.avg_download_speed_5m !== null
      && t.avg_download_speed_5m !== undefined) {
    out.push(`avg download ${speed(t.avg_download_speed_5m)} over 5 m`);
  }
  return out;
}

const OPERATORS = {
  gt: ">", lt: "<", gte: "≥", lte: "≤", eq: "=", is_any_of: "is any of", is_none_of: "is none of",
};

export function shown(value) {
  if (value === null || value === undefined) return "unknown";
  if (typeof value === "number") return String(Math.round(value * 1000) / 1000);
  if (Array.isArray(value)) return value.join(", ");
  if (typeof value === "object") {
    if ("at_least" in value) return `at least ${shown(value.at_least)}`;
    if ("value" in value) {
      const extra = value.hours !== undefined ? ` over ${value.hours} h`
        : value.for_minutes !== undefined ? ` for ${value.for_minutes} min` : "";
      return `${shown(value.value)}${extra}`;
    }
    return JSON.stringify(value);
  }
  return String(value);
}

// One condition trace as a table row: type, value seen, operator and threshold, result.
export function traceRow(c) {
  return h("tr", {},
    h("td", {}, c.type),
    h("td", { className: "num" }, shown(c.value)),
    h("td", {}, `${OPERATORS[c.operator] ?? c.operator} ${shown(c.threshold)}`),
    h("td", {}, h("span", { className: `badge ${c.result}` }, c.result.replace("_", " "))));
}

export function traceTable(conditions) {
  return h("table", { className: "traces" },
    h("thead", {}, h("tr", {}, h("th", {}, "condition"), h("th", {}, "value"),
      h("th", {}, "threshold"), h("th", {}, "result"))),
    h("tbody", {}, conditions.map(traceRow)));
}

// replaceChildren that takes arrays and skips null, undefined and false (as h does).
export function fill(el, ...children) {
  el.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
}
