"""Many ranks: the stragglers named by a robust rule across ranks, the Ranks page and `report` readable at
16 to 64 ranks (a band and a few named lines, a table of the ranks named, a few lines of text), on run logs
written by hand as each rank's Probe writes them (no torch)."""
from __future__ import annotations

import importlib.util
import json
import os
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from app import figures
from app.summaries import rank_notes, rank_spread, rank_table
from probes.report import report_run
from probes.runlog import RunWriter
from probes.stats import high_outliers
from probes.stats import rank_spread as stats_rank_spread
from probes.textreport import render

ROOT = Path(__file__).resolve().parent.parent
MAIN = str(ROOT / "app" / "main.py")
NAMES = ["body.weight", "body.bias", "head.weight", "head.bias"]


def write_ranks(run: Path, world: int, steps: int, slow: dict[int, float] = {}, waiting: dict[int, float] = {},
                step_s: float = 0.05, seed: int = 0) -> None:
    """`world` ranks' logs: 5% step noise, 1% per rank; rank r in `slow` takes slow[r] x the step, rank r in
    `waiting` waits waiting[r] seconds a step for data (part of its step); checksums every 50 steps."""
    for rank in range(world):
        rng = np.random.default_rng(seed + rank)
        w = RunWriter(run / "run.db" if rank == 0 else run / f"rank{rank}" / "run.db")
        w.set_meta(model="Net", device="cpu", status="finished", started=time.time(), rank=rank, world_size=world,
                   backend="gloo", param_numel=100)
        factor = slow.get(rank, 1.0) * (1 + 0.01 * rng.standard_normal())
        for step in range(steps):
            wait = waiting.get(rank, 0.0005) * (1 + 0.2 * abs(rng.standard_normal()))
            compute = step_s * factor * (1 + 0.05 * abs(rng.standard_normal())) + (2.0 if step == 0 else 0.0)
            vectors = {"param_checksum": (NAMES, [1.0, 0.5, 2.0, 0.1])} if step % 50 == 0 else {}
            w.write_step(step, {"loss": 1.0, "step_time_s": compute + wait, "data_wait_s": wait,
                                "mem.rss_bytes": 1e9 + 1e6 * (rank % 3)}, vectors)
        w.close()


# -- the rule ---------------------------------------------------------------------------------------------
def test_a_straggler_is_out_of_line_with_the_spread_of_the_ranks_not_past_a_fixed_gap():
    rng = np.random.default_rng(0)
    alike = {r: 50.0 for r in range(32)}                 # ranks timed alike: the floor (2% of the median) counts
    assert high_outliers({**alike, 3: 52.5}, floor=1.0) == []                       # 5% slower: noise
    assert [r for r, _ in high_outliers({**alike, 3: 55.0}, floor=1.0)] == [3]      # 10% slower: named
    spread = {r: float(v) for r, v in enumerate(rng.uniform(40, 60, 32))}        # ranks that differ anyway
    assert high_outliers({**spread, 3: 62.0}, floor=1.0) == []                      # inside their spread
    assert [r for r, _ in high_outliers({**spread, 3: 100.0, 9: 90.0}, floor=1.0)] == [3, 9]   # worst first
    assert high_outliers({0: 10.0, 1: 30.0}, floor=0.2) == []                       # 2 ranks: either could be it
    # seconds or milliseconds: the same ranks (the floor is a share of the median rank's step)
    ranks = {r: pd_frame(rng, 0.05 * (1.4 if r == 5 else 1.0)) for r in range(12)}
    in_ms = {r: f * 1000 for r, f in ranks.items()}
    assert [o.rank for o in stats_rank_spread(ranks).stragglers] == [5]
    assert [o.rank for o in stats_rank_spread(in_ms).stragglers] == [5]


def pd_frame(rng, step_s: float, n: int = 60) -> pd.DataFrame:
    times = step_s * (1 + 0.03 * np.abs(rng.standard_normal(n)))
    return pd.DataFrame({"step_time_s": times, "data_wait_s": times * 0.01},
                        index=pd.Index(range(n), name="step"))


@pytest.fixture(scope="module")
def many(tmp_path_factory) -> Path:
    """24 ranks x 120 steps: ranks 5 and 17 30% slower, rank 11 waits 20 ms a step for its data."""
    run = tmp_path_factory.mktemp("runs") / "ddp-24"
    write_ranks(run, 24, 120, slow={5: 1.3, 17: 1.3}, waiting={11: 0.02})
    return run


def test_report_names_the_stragglers_in_a_few_lines_and_keeps_its_fields(many):
    result = report_run(many)
    assert result["ranks"] == 24 and result["error"] is None and result["steps"] == 120
    assert {"model", "device", "steps", "run_dir", "error", "findings", "status", "ranks", "notes",
            "loss"} <= set(result)
    summary = result["rank_summary"]
    assert (summary["found"], summary["world_size"]) == (24, 24)
    assert summary["median_step_s"] == pytest.approx(0.05 * 1.04, rel=0.05)       # the median of |noise| ~ 4%
    # rank 11 is slow because it waits: a straggler and waiting for data, the worst first
    named = [s["rank"] for s in summary["stragglers"]]
    assert named[0] == 11 and sorted(named[1:]) == [5, 17]
    assert {s["rank"]: round(s["vs_median"], 1) for s in summary["stragglers"]}[5] == 1.3
    (waits,) = summary["waiting_for_data"]
    assert waits["rank"] == 11 and waits["median_wait_s"] == pytest.approx(0.02 * 1.13, rel=0.1)
    json.dumps(result)                                                      # plain data
    text = render(result, f"report {many}")
    lines = [line for line in text.splitlines() if "rank" in line]
    assert len(lines) <= 4, text                                            # not a line per rank
    assert "ranks: 24 of 24 logged" in text
    (slow,) = [line for line in lines if "stragglers" in line]
    assert re.fullmatch(r" +stragglers, against the median step: rank 11 1\.4\dx, rank (5|17) 1\.[23]\dx, "
                        r"rank (5|17) 1\.[23]\dx", slow), slow
    (waits,) = [line for line in lines if "waiting for data" in line]
    assert re.search(r"rank 11 2\d\.\d ms \(3\d% of its step\)$", waits), waits


def test_a_run_of_alike_ranks_names_none(tmp_path):
    write_ranks(tmp_path / "ok", 12, 80)
    summary = report_run(tmp_path / "ok")["rank_summary"]
    assert summary["stragglers"] == [] and summary["waiting_for_data"] == []
    assert "no straggler" in render(report_run(tmp_path / "ok"), "report")


# -- the figures -----------------------------------------------------------------------------------------
def test_many_ranks_are_a_band_with_only_the_named_ranks_drawn_as_lines(many):
    from app.data import load_run
    view = load_run(many)
    spread = rank_spread(view.ranks)
    table = rank_table(view.ranks, spread)
    notes = rank_notes(spread, table)
    assert sorted(notes["step"]) == [5, 11, 17] and list(notes["wait"]) == [11]
    assert table.set_index("rank").loc[5, "vs median rank"] == pytest.approx(1.3, abs=0.05)
    fig = figures.rank_figure(view.ranks, "step_time_s", title="t", y_title="time (ms)", scale=1000.0,
                              named=notes["step"], skip=1)
    legend = [t.name for t in fig.data if t.showlegend is not False]
    assert len(legend) == 3 + 3, legend                                      # the band's 3 + the 3 named
    assert legend[:3] == ["21 others: min–max", "21 others: middle half", "21 others: median"]
    assert re.fullmatch(r"rank 11 \(1\.4\dx median\)", legend[3]), legend
    by_name = {t.name: t for t in fig.data}
    top, median = np.asarray(by_name["21 others: max"].y), np.asarray(by_name["21 others: median"].y)
    slow = np.asarray(next(t for t in fig.data if t.name.startswith("rank 5 ")).y)
    assert len(median) == 119                                              # step 0 (start-up) left out
    others = np.array([view.ranks[r]["step_time_s"].to_numpy()[1:] for r in range(24) if r not in (5, 11, 17)])
    assert median == pytest.approx(np.median(others, axis=0) * 1000)        # 119 steps: no binning
    assert top == pytest.approx(others.max(axis=0) * 1000)
    assert np.all(top < slow)                          # the named ranks are not in the band: it is the others'
    assert np.median(median) == pytest.approx(52, rel=0.05) and np.median(slow) == pytest.approx(67, rel=0.06)
    # a live run: one rank 40 steps behind the others; the band goes on over the ranks that have the steps
    behind = {**view.ranks, 7: view.ranks[7].iloc[:80]}
    fig = figures.rank_figure(behind, "step_time_s", title="t", y_title="ms", named=notes["step"], skip=1)
    median = np.asarray({t.name: t for t in fig.data}["21 others: median"].y)
    assert len(median) == 119 and np.isfinite(median).all()
    # a few ranks: a line each, whatever is named
    few = {r: view.ranks[r] for r in range(4)}
    fig = figures.rank_figure(few, "step_time_s", title="t", y_title="ms", named={1: "x"})
    assert [t.name for t in fig.data] == ["rank 0", "rank 1", "rank 2", "rank 3"]


# -- the page ---------------------------------------------------------------------------------------------
def page(monkeypatch, run: Path) -> AppTest:
    monkeypatch.setenv("FORGESCOPE_RUN_DIR", str(run.parent))
    monkeypatch.chdir(ROOT)
    at = AppTest.from_file(MAIN, default_timeout=60)
    at.query_params["model"] = "sample_models/unregistered_module.py"
    at.query_params["run"] = run.name
    at.run()
    at.switch_page("views/ranks.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_ranks_page_names_the_stragglers_and_tables_only_them(many, monkeypatch):
    at = page(monkeypatch, many)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Ranks"] == "24 of 24" and metrics["Stragglers"] == "3 of 24"
    assert metrics["Slowest rank"] == "rank 11"
    (warning,) = at.warning
    text = warning.value.replace("\\", "")
    assert re.search(r"Stragglers.*: rank 11 1\.4\dx, rank (5|17) 1\.[23]\dx, rank (5|17) 1\.[23]\dx\.", text), text
    assert re.search(r"Waiting for data.*: rank 11 waits 2\d\.\d ms, 3\d% of its step\.", text), text
    named, everyone = at.dataframe[0].value, at.dataframe[1].value
    assert sorted(named["rank"]) == [5, 11, 17]                      # the table on show: the ranks named
    assert list(everyone["rank"]) == list(range(24))                 # all of them, one click away
    assert at.expander[0].label == "All 24 ranks"


@pytest.mark.skipif(importlib.util.find_spec("playwright") is None, reason="playwright is not installed")
@pytest.mark.skipif(not os.path.exists(os.environ.get("FORGESCOPE_CHROMIUM", "/usr/bin/chromium")),
                    reason="no chromium (apt-get install chromium)")
def test_the_ranks_page_of_64_ranks_in_a_browser(tmp_path, browser):
    import dashboard_server
    run = tmp_path / "ddp-64"
    write_ranks(run, 64, 60, slow={20: 1.3, 41: 1.3}, waiting={33: 0.02})
    proc, url = dashboard_server.start(tmp_path, tmp_path / "streamlit.log")
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        page.goto(f"{url}/ranks?run={run.name}")
        page.get_by_role("heading", name="Ranks").first.wait_for(timeout=60_000)
        page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length >= 3",
                               timeout=60_000)
        assert page.locator("[data-testid='stException']").count() == 0
        legend = page.locator(".js-plotly-plot .legendtext").evaluate_all("els => els.map(e => e.textContent)")
        # step time: band 3 + ranks 33, 20, 41; data wait: band 3 + rank 33; memory: band 3
        assert len(legend) == 13, legend
        assert sum(t.startswith("rank 33") for t in legend) == 2 and sum(t.startswith("rank 20") for t in legend) == 1
        assert "rank 20" in page.inner_text("body")
        if os.environ.get("RANKS_SHOT"):
            page.screenshot(path=os.environ["RANKS_SHOT"], full_page=True)
        page.close()
    finally:
        dashboard_server.stop(proc)


def test_the_ranks_page_follows_new_steps(tmp_path, monkeypatch):
    run = tmp_path / "ddp-12"
    write_ranks(run, 12, 60, slow={4: 1.5})
    at = page(monkeypatch, run)
    assert set(at.dataframe[1].value["steps"]) == {60}
    for rank in range(12):          # every rank writes 80 more steps; rank 9's take 3x as long from now on
        w = RunWriter(run / "run.db" if rank == 0 else run / f"rank{rank}" / "run.db")
        for step in range(60, 140):
            w.write_step(step, {"step_time_s": 0.05 * (3 if rank == 9 else 1), "data_wait_s": 0.0005})
        w.close()
    at.run()
    assert not at.exception
    assert set(at.dataframe[-1].value["steps"]) == {140}              # not the numbers of the first visit
    assert {m.label: m.value for m in at.metric}["Slowest rank"] == "rank 9"
