"""Figures from raw results: the table on stdout, the JSON file, and the section of the docs.

Every figure is the median of its runs with min and max beside it; throughputs are also shown as
a share of the raw SQLite baseline at the same torrents per user (what the storage allows), and
figures with a target say whether the median meets it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.stats import Summary, summarize


@dataclass(frozen=True, slots=True)
class Target:
    """A goal for a figure's median: at least (`at_least`) or under `value`."""

    value: float
    at_least: bool

    def met(self, median: float) -> bool:
        """Whether the median meets the goal."""
        return median >= self.value if self.at_least else median < self.value

    def text(self, unit: str) -> str:
        """The goal as the issue states it."""
        return f"{'>=' if self.at_least else '<'} {_num(self.value)} {unit}"


@dataclass(frozen=True, slots=True)
class Figure:
    """One line of the report."""

    group: str
    label: str
    unit: str
    summary: Summary
    target: Target | None = None
    # Rows per second of the raw SQLite baseline this throughput is compared with.
    baseline: float | None = None

    @property
    def share(self) -> float | None:
        """The median as a share of the baseline."""
        return None if not self.baseline else self.summary.median / self.baseline

    def as_json(self) -> dict[str, Any]:
        """The figure as a JSON object."""
        doc: dict[str, Any] = {
            "group": self.group,
            "label": self.label,
            "unit": self.unit,
            **self.summary.as_json(),
        }
        if self.target is not None:
            doc["target"] = self.target.text(self.unit)
            doc["met"] = self.target.met(self.summary.median)
            doc["missed_by"] = _missed_by(self)
        if self.share is not None:
            doc["share_of_baseline"] = self.share
        return doc


def _num(value: float) -> str:
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _missed_by(figure: Figure) -> str | None:
    """How far the median is from its target, when it misses."""
    target = figure.target
    median = figure.summary.median
    if target is None or target.met(median):
        return None
    if target.at_least:
        return f"{median / target.value:.0%} of the target ({_num(target.value - median)} short)"
    return f"{median / target.value:.1f}x the limit ({_num(median - target.value)} over)"


# Building the figures -----------------------------------------------------------------------

PHASE_KINDS = {
    "warm": "warm poll",
    "released": "released poll (file open, state read again)",
    "cold": "cold poll",
}
PHASE_MEANINGS = {
    "convert": "protobuf to snapshot (convert.snapshot_in)",
    "open": "open (close the evicted file, connect, pragmas, migrations check; released: "
    "release another user's cache)",
    "load": "load (every row, rules, holds, actions, ids)",
    "apply": "apply (run_poll, plan, rows to write)",
    "write": "write (one transaction of what changed)",
    "total": "total",
}


def _runs(items: Sequence[dict[str, Any]], key: str) -> Summary:
    return summarize([float(item[key]) for item in items])


# The CPU budgets per 100-torrent poll, by process (shards are judged together).
_CPU_TARGETS = {"userstore": Target(5.0, False), "scheduler": Target(2.5, False)}


def _cpu_ms_per_100(
    cores: Sequence[float], windows: Sequence[dict[str, Any]], torrents: int
) -> list[float]:
    """CPU milliseconds a process spent per poll, scaled to a 100-torrent poll, per window."""
    return [
        c * 1000.0 / w["polls_per_s"] * 100.0 / torrents
        for c, w in zip(cores, windows, strict=True)
        if w["polls_per_s"] > 0
    ]


def figures(raw: dict[str, Any]) -> list[Figure]:
    """Every figure the raw results support (a benchmark that did not run adds none)."""
    out: list[Figure] = []
    base: dict[int, float] = {}
    baseline = raw.get("baseline")
    if baseline:
        for size, rates in baseline["rows_per_s"].items():
            summary = summarize(rates)
            base[int(size)] = summary.median
            out.append(
                Figure(
                    "baseline",
                    f"raw SQLite upsert, {size} rows per user file (open, upsert all, close)",
                    "rows/s",
                    summary,
                )
            )

    def add(group: str, label: str, unit: str, summary: Summary, **kw: Any) -> None:
        out.append(Figure(group, label, unit, summary, **kw))

    pipeline = raw.get("pipeline")
    if pipeline:
        for size, runs in pipeline.items():
            n = int(size)
            add(
                "pipeline",
                f"{n}-torrent users, young state: run_poll + plan",
                "torrents/s",
                _runs(runs, "torrents_per_s"),
                baseline=base.get(n),
            )
            add(
                "pipeline",
                f"{n}-torrent users, young state: run_poll (diff/derive/events)",
                "torrents/s",
                _runs(runs, "run_poll_torrents_per_s"),
            )
            add(
                "pipeline",
                f"{n}-torrent users, young state: plan (rules and safety)",
                "torrents/s",
                _runs(runs, "plan_torrents_per_s"),
            )
            add(
                "pipeline",
                f"{n}-torrent users, young state: plan cost per torrent per rule",
                "us",
                _runs(runs, "plan_us_per_torrent_rule"),
            )
            if n != min(int(k) for k in pipeline):
                continue  # a rule's cost per torrent does not depend on the user's size
            for name in runs[0]["rule_eval_us"]:
                add(
                    "pipeline",
                    f"{n}-torrent users, young state: test of rule '{name}' per torrent",
                    "us",
                    summarize([r["rule_eval_us"][name] for r in runs]),
                )

    for size, result in raw.get("phases", {}).items():
        for kind, title in PHASE_KINDS.items():
            if kind not in result["runs"][0]:
                continue  # a result from before released polls were measured
            for phase, meaning in PHASE_MEANINGS.items():
                if kind == "warm" and phase in ("open", "load"):
                    continue  # nothing to open or read: the database and its state are cached
                add(
                    "phases",
                    f"{title}, {size} torrents, young state: {meaning}",
                    "ms",
                    summarize([run[kind][phase] for run in result["runs"]]),
                )

    for key, title in (
        ("userstore_inprocess", "in process"),
        ("userstore_grpc", "gRPC"),
        ("userstore_grpc_2shards", "gRPC, two shards"),
    ):
        result = raw.get(key)
        if not result:
            continue
        n = int(result["torrents_per_user"])
        where = f"userstore {title}, {result['users']} users x {n}, young state"
        if result["users"] <= result["max_open_dbs"]:
            where += " (every database stays open)"
        rounds = result["rounds"]
        add(
            "userstore",
            f"{where}: steady polls (half the torrents change)",
            "torrents/s",
            _runs(rounds, "torrents_per_s"),
            target=Target(30_000, True),
            baseline=base.get(n),
        )
        add(
            "userstore",
            f"{where}: first poll (every row inserted)",
            "torrents/s",
            summarize([result["first_poll"]["torrents_per_s"]]),
            baseline=base.get(n),
        )
        add("userstore", f"{where}: per-poll latency p50 under load", "ms", _runs(rounds, "p50_ms"))
        add("userstore", f"{where}: per-poll latency p99 under load", "ms", _runs(rounds, "p99_ms"))
        if "cpu_cores" in result:
            add("userstore", f"{where}: CPU", "cores", summarize(result["cpu_cores"]))
            if "client_cpu_cores" in result:
                add(
                    "userstore",
                    f"{where}: the benchmark's gRPC client CPU (same machine)",
                    "cores",
                    summarize(result["client_cpu_cores"]),
                )
            add(
                "userstore",
                f"{where}: RSS with {result['open_databases']} databases open",
                "MiB",
                summarize(result["rss_mib"]),
                target=Target(300, False),
            )
            add(
                "userstore",
                f"{where}: peak RSS",
                "MiB",
                summarize([result["peak_rss_mib"]]),
                target=Target(300, False),
            )

    latency = raw.get("latency")
    if latency:
        n = int(latency["torrents_per_user"])
        runs = latency["runs"]
        for state, label in (("warm", "database open"), ("cold", "database closed")):
            add(
                "latency",
                f"snapshot-to-plan, {n} torrents, {label}: p50",
                "ms",
                _runs(runs, f"{state}_p50_ms"),
                target=Target(25, False),
            )
            add(
                "latency",
                f"snapshot-to-plan, {n} torrents, {label}: p99",
                "ms",
                _runs(runs, f"{state}_p99_ms"),
                target=Target(60, False),
            )

    for scenario in raw.get("stack", []):
        n = int(scenario["torrents_per_user"])
        where = f"full stack, {scenario['users']} users x {n}"
        if scenario.get("shards", 1) > 1:
            where += f", {scenario['shards']} userstore shards"
        if scenario["users"] <= scenario.get("max_open_dbs", 50):
            cached = scenario.get("max_cached_users", scenario["users"])
            where += (
                " (every database stays open)"
                if scenario["users"] <= cached
                else f" (every database stays open, {cached} users' state cached)"
            )
        if scenario.get("state", "").startswith("young"):
            where += " (young state)"
        # The targets: two shards 20,000/s, one shard (a self-hoster) 12,000/s.
        goal = 40_000 if n > 100 else 20_000 if scenario.get("shards", 1) > 1 else 12_000
        windows = scenario["windows"]
        add(
            "stack",
            f"{where}: sustained",
            "torrents/s",
            _runs(windows, "torrents_per_s"),
            target=Target(goal, True),
            baseline=base.get(n),
        )
        add("stack", f"{where}: sustained", "polls/s", _runs(windows, "polls_per_s"))
        add(
            "stack",
            f"{where}: offered load",
            "torrents/s",
            summarize([scenario["offered_torrents_per_s"]]),
        )
        add(
            "stack",
            f"{where}: failed polls in the windows",
            "polls",
            summarize([scenario["polls_failed"]]),
        )
        if "polls_after_gap" in scenario:
            add(
                "stack",
                f"{where}: polls after a gap (late: histories restart)",
                "polls",
                summarize([scenario["polls_after_gap"]]),
            )
        add(
            "stack",
            f"{where}: scheduler ticks skipped (user still waiting)",
            "ticks",
            summarize([scenario["skipped_ticks"]]),
        )
        processes = scenario["processes"]
        shards = [p for name, p in processes.items() if name.startswith("userstore")]
        for name, proc in processes.items():
            add("stack", f"{where}: {name} CPU", "cores", summarize(proc["cpu_cores"]))
            if len(shards) > 1 and name.startswith("userstore"):
                continue  # a shard serves part of the polls: judged together below
            add(
                "stack",
                f"{where}: {name} CPU per 100-torrent poll",
                "ms",
                summarize(_cpu_ms_per_100(proc["cpu_cores"], windows, n)),
                target=_CPU_TARGETS.get(name),
            )
        if len(shards) > 1:
            summed = [sum(cores) for cores in zip(*(p["cpu_cores"] for p in shards), strict=True)]
            add(
                "stack",
                f"{where}: userstore shards together, CPU per 100-torrent poll",
                "ms",
                summarize(_cpu_ms_per_100(summed, windows, n)),
                target=_CPU_TARGETS["userstore"],
            )
            add("stack", f"{where}: {name} RSS", "MiB", summarize(proc["rss_mib"]))
            add(
                "stack",
                f"{where}: {name} peak RSS (whole run)",
                "MiB",
                summarize([proc["peak_rss_mib"]]),
            )
    queue = raw.get("uploads")
    if queue:
        add(
            "uploads",
            f"queue throughput, {queue['creates']} magnets, TorBox without limits",
            "creates/s",
            summarize([queue["creates_per_s"]]),
        )
        add(
            "uploads",
            "POST /api/uploads to TorBox create, one magnet, idle queue",
            "ms",
            summarize(queue["latency_ms"]),
            target=Target(1000.0, at_least=False),
        )
    return out


# Output -------------------------------------------------------------------------------------


def _row(figure: Figure) -> list[str]:
    s = figure.summary
    target = ""
    if figure.target is not None:
        target = figure.target.text(figure.unit)
        target += "  ok" if figure.target.met(s.median) else "  MISSED"
    share = f"{figure.share:.0%}" if figure.share is not None else ""
    return [
        figure.label,
        f"{_num(s.median)} {figure.unit}",
        f"{_num(s.low)} .. {_num(s.high)}" if s.runs > 1 else "(1 run)",
        share,
        target,
    ]


HEADER = ["figure", "median", "min .. max", "of baseline", "target"]


def table(items: Sequence[Figure]) -> str:
    """A plain-text table grouped by benchmark."""
    rows = [_row(f) for f in items]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(HEADER)] if rows else []
    lines = []
    group = None
    for figure, row in zip(items, rows, strict=True):
        if figure.group != group:
            group = figure.group
            lines.append("")
            lines.append(f"== {group}")
            lines.append("  ".join(h.ljust(w) for h, w in zip(HEADER, widths, strict=True)))
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def markdown(items: Sequence[Figure], meta: dict[str, Any]) -> str:
    """The figures as Markdown, with the machine they were measured on."""
    m = meta["machine"]
    lines = [
        f"Measured {meta['date']} with `{meta['command']}` in {meta['seconds']:.0f} s on "
        f"{m['cpu_count']} x {m['cpu_model']}, {m['memory_gib']} GiB, Python {m['python']}, "
        f"SQLite {m['sqlite']}, databases on {m['disk']} (load average at start "
        f"{m['load_average_at_start']}). Raw results: `{meta['json']}`.",
        "",
        "| figure | median | min .. max | of baseline | target |",
        "|---|---|---|---|---|",
    ]
    group = None
    for figure in items:
        if figure.group != group:
            group = figure.group
            lines.append(f"| **{group}** | | | | |")
        cells = [c.replace("|", "/") for c in _row(figure)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_json(
    path: Path, items: Sequence[Figure], raw: dict[str, Any], meta: dict[str, Any]
) -> None:
    """Write the figures, the raw results and the metadata as one JSON document."""
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {**meta, "figures": [f.as_json() for f in items], "raw": raw}
    path.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n")


def update_docs(path: Path, section: str, body: str) -> bool:
    """Replace the text between ``<!-- bench:<section>:start/end -->``; False if they are absent."""
    if not path.exists():
        return False
    text = path.read_text()
    start, end = f"<!-- bench:{section}:start -->", f"<!-- bench:{section}:end -->"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if not pattern.search(text):
        return False

    def replacement(_match: re.Match[str]) -> str:
        return f"{start}\n{body}\n{end}"

    path.write_text(pattern.sub(replacement, text, count=1))
    return True
