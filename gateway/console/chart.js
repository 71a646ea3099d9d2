// A small SVG line chart (no library): one or more series over time, axes labelled at the ends.
import { h } from "./format.js";

const NS = "http://www.w3.org/2000/svg";

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

// series: [{label, className, points: [[timeMs, value], ...]}]; format: value -> text.
export function lineChart(title, series, format) {
  const W = 640; const H = 220; const L = 70; const R = 10; const T = 10; const B = 28;
  const all = series.flatMap((x) => x.points);
  if (Math.max(0, ...series.map((x) => x.points.length)) < 2) {
    return h("p", { className: "muted" }, `${title}: not enough history yet.`);
  }
  const t0 = Math.min(...all.map((p) => p[0])); const t1 = Math.max(...all.map((p) => p[0]));
  const vmax = Math.max(1, ...all.map((p) => p[1]));
  const x = (t) => L + ((t - t0) / Math.max(1, t1 - t0)) * (W - L - R);
  const y = (v) => T + (1 - v / vmax) * (H - T - B);
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title },
    s("title", {}, title),
    s("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, class: "axis" }),
    s("line", { x1: L, y1: T, x2: L, y2: H - B, class: "axis" }),
    s("text", { x: L - 6, y: T + 10, "text-anchor": "end" }, format(vmax)),
    s("text", { x: L - 6, y: H - B, "text-anchor": "end" }, format(0)),
    s("text", { x: L, y: H - 8 }, new Date(t0).toLocaleTimeString()),
    s("text", { x: W - R, y: H - 8, "text-anchor": "end" }, new Date(t1).toLocaleTimeString()));
  for (const one of series) {
    if (one.points.length < 1) continue;
    const d = one.points.map((p, i) => `${i ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`);
    svg.append(s("path", { d: d.join(" "), class: one.className }));
  }
  const legend = h("p", { className: "legend small" },
    series.map((one) => [h("span", { className: one.className }), ` ${one.label}  `]));
  return h("figure", { className: "chart" }, h("figcaption", {}, h("strong", {}, title)), svg, legend);
}
