"""The benchmark harness at toy sizes: every benchmark runs and yields figures (speed untested)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from torbox.automation.v1 import userstore_service_pb2 as pb

from bench import report, userstore
from bench.__main__ import main
from bench.suite import TOY, run_suite
from bench.workload import POLL_INTERVAL, Account, auth_id
from userstore_svc import convert


def _groups(raw: dict[str, Any]) -> dict[str, list[report.Figure]]:
    found: dict[str, list[report.Figure]] = {}
    for figure in report.figures(raw):
        found.setdefault(figure.group, []).append(figure)
    return found


def _sane(figures: list[report.Figure]) -> bool:
    return all(
        math.isfinite(f.summary.median) and f.summary.low <= f.summary.median <= f.summary.high
        for f in figures
    )


def test_the_encoded_request_is_read_as_the_accounts_snapshots() -> None:
    """The benchmark's request (rows, as the scheduler sends them) is read by the userstore as
    exactly the account's torrents, under the poll's id, user and time."""
    account = Account(7, 25)
    account.advance()
    user = auth_id(1, "test")
    encoded = account.ingest_request("poll-1", user)
    snapshot = pb.IngestRequest.FromString(encoded).snapshot
    read = convert.snapshot_in(snapshot)
    assert (read.poll_id, read.auth_id, read.observed_at, read.complete) == (
        "poll-1",
        user,
        account.now,
        True,
    )
    assert snapshot.poll_interval_seconds == POLL_INTERVAL
    assert not snapshot.torrents
    assert read.torrents == account.snapshots


def test_workload_moves_about_half_the_torrents_and_every_active_ones_dates() -> None:
    """Between two polls about half of a user's torrents move bytes; every other active one gets
    new dates only (as TorBox's do), and the inactive ones stay as they were."""
    account = Account(3, 1000)
    before = list(account.snapshots)
    moved = account.advance()
    after = account.snapshots
    bytes_moved = sum(
        1
        for a, b in zip(before, after, strict=True)
        if (a.total_downloaded, a.total_uploaded) != (b.total_downloaded, b.total_uploaded)
    )
    dated = [b for a, b in zip(before, after, strict=True) if a != b]
    assert bytes_moved == moved
    assert 300 < moved < 700
    assert all(b.updated_at == account.now for b in dated)
    assert {b.active for a, b in zip(before, after, strict=True) if a == b} == {False}


async def test_pure_and_in_process_benchmarks_run(tmp_path: Path) -> None:
    """The pipeline, baseline and phases benchmarks and the in-process userstore yield figures."""
    raw = await run_suite(TOY, tmp_path, only=("pipeline", "baseline", "phases"))
    raw["userstore_inprocess"] = await userstore.run_inprocess(
        tmp_path / "inprocess", users=4, torrents=10, rounds=2, concurrency=4, max_open=2, seed=1
    )
    groups = _groups(raw)
    assert {"pipeline", "baseline", "phases", "userstore"} <= set(groups)
    assert all(_sane(figures) for figures in groups.values())
    # More users than open databases: the pool had to close and reopen files.
    assert raw["userstore_inprocess"]["pool_evictions"] > 0


@pytest.mark.e2e
@pytest.mark.slow
async def test_process_benchmarks_run(tmp_path: Path) -> None:
    """The gRPC userstore, latency and full-stack benchmarks run real processes and give figures."""
    raw = await run_suite(TOY, tmp_path, only=("userstore", "latency", "stack", "uploads"))
    groups = _groups(raw)
    assert {"userstore", "latency", "stack", "uploads"} <= set(groups)
    assert raw["uploads"]["creates_per_s"] > 0
    assert all(_sane(figures) for figures in groups.values())
    for scenario in raw["stack"]:
        # The stack really polled during its windows, and no poll failed.
        assert all(window["polls_per_s"] > 0 for window in scenario["windows"])
        assert scenario["polls_failed"] == 0
        shards = scenario["shards"]
        userstores = {"userstore"} if shards == 1 else {f"userstore{i}" for i in range(shards)}
        assert set(scenario["processes"]) == {"simulator", "scheduler", *userstores}


def test_docs_section_is_replaced_and_nothing_else(tmp_path: Path) -> None:
    """Only the text between a mode's markers is rewritten; a file without them is left alone."""
    doc = tmp_path / "benchmarks.md"
    doc.write_text(
        "intro\n<!-- bench:quick:start -->\nold\n<!-- bench:quick:end -->\n"
        "<!-- bench:full:start -->\nkept\n<!-- bench:full:end -->\noutro\n"
    )
    assert report.update_docs(doc, "quick", "new table")
    text = doc.read_text()
    assert "new table" in text
    assert "old" not in text
    assert "kept" in text
    assert text.startswith("intro\n")
    assert text.endswith("outro\n")
    plain = tmp_path / "plain.md"
    plain.write_text("no markers\n")
    assert not report.update_docs(plain, "quick", "new table")
    assert plain.read_text() == "no markers\n"


def test_command_line_writes_the_json_it_is_given(tmp_path: Path) -> None:
    """`python -m bench --toy --only pipeline --json FILE` writes figures and machine facts."""
    out = tmp_path / "toy.json"
    assert (
        main(["--toy", "--only", "pipeline", "--json", str(out), "--data-dir", str(tmp_path)]) == 0
    )
    doc = json.loads(out.read_text())
    assert doc["mode"] == "toy"
    assert doc["machine"]["cpu_count"] >= 1
    assert any(f["group"] == "pipeline" for f in doc["figures"])
