"""The dashboard's data helpers and figure builders, on data whose right answer is known."""
import io
import json

import numpy as np
import pandas as pd
import pytest

from app import figures, htmlreport, tree_figure
from app.data import RunView, load_run, statistics_frame, to_parquet_bytes
from app.summaries import (data_loading_summary, data_wait_share, downsample, growth, memory_summary,
                           nonfinite_steps, per_layer_norm, rank_table, steps_per_second, straggler,
                           update_summary)
from app.tables import tensor_table, tree_counts
from probes.runlog import RunWriter


def frame(data: dict, start: int = 0) -> pd.DataFrame:
    n = len(next(iter(data.values())))
    return pd.DataFrame(data, index=pd.Index(range(start, start + n), name="step"))


def test_per_layer_norm_combines_a_modules_parameters():
    f = frame({"fc.weight": [3.0, 0.0], "fc.bias": [4.0, 1.0], "out.weight": [1.0, 2.0]})
    layers = per_layer_norm(f)
    assert list(layers.columns) == ["fc", "out"]
    assert layers["fc"].tolist() == [5.0, 1.0]            # sqrt(3² + 4²)
    assert layers["out"].tolist() == [1.0, 2.0]


def test_downsample_bins_steps_and_keeps_spikes_with_max():
    f = frame({"a": [1.0] * 1000})
    f.iloc[500, 0] = 99.0
    mean = downsample(f, 100)
    peak = downsample(f, 100, how="max")
    assert len(mean) == len(peak) == 100
    assert peak["a"].max() == 99.0 and mean["a"].max() == pytest.approx(1 + 98 / 10)
    assert mean.index[0] == 0 and mean.index[-1] == 990     # labelled by the first step of each bin
    assert downsample(f.iloc[:50], 100).equals(f.iloc[:50])   # short runs untouched


def test_growth_is_bytes_per_step_after_step_0_and_one_jump_does_not_make_it():
    values = [100.0 + 7 * i for i in range(20)]
    values[0] = 1e9                                  # step 0 allocates once: left out
    values[10] += 5e6                                # one cache filled mid-run: the median slope ignores it
    trend = growth(frame({"mem.rss_bytes": values}), "mem.rss_bytes")
    assert trend.slope == pytest.approx(7.0) and (trend.steps[0], trend.steps[-1]) == (1, 19)
    assert growth(frame({"mem.rss_bytes": [1.0, 2.0, 3.0]}), "mem.rss_bytes") is None      # too few steps
    assert growth(frame({"loss": [1.0] * 9}), "mem.rss_bytes") is None


def test_data_wait_share_leaves_out_start_up_and_reads_the_median_against_the_compute():
    scalars = frame({"data_wait_s": [5.0, 0.3, 0.3, 0.3, 9.0], "step_time_s": [6.0, 1.0, 1.0, 1.0, 10.0]})
    assert data_wait_share(scalars) == pytest.approx(0.3)            # one slow step moves no median
    # with two workers, the first two batches carry the workers' start-up
    scalars = frame({"data_wait_s": [5.0, 4.0, 0.1], "step_time_s": [6.0, 5.0, 1.0]})
    assert data_wait_share(scalars, 2) == pytest.approx(0.1)
    assert data_wait_share(scalars, 0) > 0.1


def test_page_summaries():
    scalars = frame({"data_wait_s": [5.0, 0.1, 0.3, 0.2], "step_time_s": [6.0, 1.0, 3.0, 2.0],
                     "mem.cuda_allocated_bytes": [10.0, 20.0, 30.0, 40.0],
                     "mem.cuda_peak_bytes": [15.0, 90.0, 35.0, 45.0], "mem.rss_bytes": [1e9] * 4})
    numbers = data_loading_summary(scalars)
    assert numbers["median_wait_s"] == pytest.approx(0.2) and numbers["median_step_s"] == pytest.approx(2.0)
    # the median wait (0.2 s) against the lower quartile of the compute (0.9, 2.7, 1.8 s -> 1.35 s)
    assert numbers["share"] == pytest.approx(0.2 / (0.2 + 1.35))
    mem = memory_summary(scalars)
    assert mem["column"] == "mem.cuda_allocated_bytes"         # the accelerator leads over the process RSS
    assert (mem["now"], mem["peak"]) == (40.0, 90.0) and mem["slope"] == pytest.approx(10.0)   # bytes/step
    assert mem["window"] == (1, 3)
    assert memory_summary(frame({"loss": [1.0]})) is None
    ratio = frame({"a.weight": [1e-3, 3e-3, np.nan], "b.weight": [0.1, 0.2, 0.3]})
    norm = frame({"a.weight": [0.0, 1.0, 0.0], "b.weight": [1.0, 1.0, 1.0]})
    summary = update_summary(ratio, norm)
    assert summary.loc["a.weight", "median ratio"] == pytest.approx(2e-3)
    assert summary.loc["a.weight", "last ratio"] == pytest.approx(3e-3)          # carried over the gap
    assert summary["zero-update steps"].to_dict() == {"a.weight": 2, "b.weight": 0}


def test_ranks_side_by_side_name_the_straggler():
    fast = frame({"step_time_s": [5.0, 0.10, 0.10, 0.10], "data_wait_s": [4.0, 0.01, 0.01, 0.01],
                  "mem.rss_bytes": [1e9, 1e9, 1.1e9, 1.2e9]})
    slow = frame({"step_time_s": [5.0, 0.30, 0.30], "data_wait_s": [4.0, 0.20, 0.20], "mem.rss_bytes": [2e9] * 3})
    table = rank_table({0: fast, 1: fast, 2: slow})
    assert list(table["rank"]) == [0, 1, 2] and list(table["steps"]) == [4, 4, 3]
    assert table.loc[2, "median step (ms)"] == pytest.approx(300.0)        # step 0 (start-up) skipped
    assert table.loc[2, "waiting for data"] == pytest.approx(0.4 / 0.6)
    assert table.loc[0, "peak memory"] == pytest.approx(1.2e9)
    assert list(table["vs median rank"]) == pytest.approx([1.0, 1.0, 3.0])      # against the median rank's step
    assert straggler(table) == {"rank": 2, "ratio": pytest.approx(3.0), "behind_steps": 1}
    assert straggler(rank_table({0: fast})) is None                        # one rank: nothing to compare
    fig = figures.rank_figure({0: fast, 2: slow}, "step_time_s", title="t", y_title="time (ms)", scale=1000.0)
    assert [t.name for t in fig.data] == ["rank 0", "rank 2"]
    assert list(fig.data[1].y) == pytest.approx([5000.0, 300.0, 300.0])
    assert fig.data[0].line.color != fig.data[1].line.color
    fig = figures.rank_figure({0: fast, 2: slow}, "step_time_s", title="t", y_title="ms", scale=1000.0, skip=1)
    assert list(fig.data[1].y) == pytest.approx([300.0, 300.0]) and list(fig.data[1].x) == [1, 2]    # no start-up
    empty = figures.rank_figure({0: fast}, "loss", title="t", y_title="x")
    assert "No rank recorded" in empty.layout.annotations[0].text


def test_steps_per_second_over_the_recent_steps():
    scalars = frame({"time": [100.0 + 0.25 * i for i in range(200)]})
    assert steps_per_second(scalars) == pytest.approx(4.0)
    assert steps_per_second(frame({"time": [5.0]})) is None and steps_per_second(frame({"loss": [1.0, 2.0]})) is None


def test_tree_counts_count_a_tied_weight_once():
    tree = json.loads(json.dumps(TREE))
    tree["tensors"].append({**tree["tensors"][0], "name": "tied.weight", "duplicate": True})
    assert tree_counts(tree) == {"modules": 4, "parameters": 48, "not_in_optimizer": 1, "unregistered": 1}


def test_grad_heatmap_is_downsampled_to_the_screen_and_marks_nonfinite_steps():
    rng = np.random.default_rng(0)
    cols = {f"l{i}.weight": rng.uniform(1e-3, 1.0, 5000) for i in range(30)}
    cols["l0.weight"][:] = 0.0                               # no log of 0: a gap, not an error
    fig = figures.grad_heatmap(frame(cols), [1234], max_steps=400)
    heat = fig.data[0]
    z = np.asarray(heat.z, dtype=float)
    assert z.shape == (30, 400)                              # layers x binned steps
    assert np.isnan(z[0]).all() and np.isfinite(z[1:]).all()
    assert -3.1 < np.nanmin(z) and np.nanmax(z) <= 0.0       # log10 of the norms
    assert list(heat.y)[:2] == ["l0", "l1"]                  # model order
    assert any(shape.x0 == 1234 for shape in fig.layout.shapes)
    assert fig.layout.xaxis.title.text == "step" and "layer" in fig.layout.yaxis.title.text


def test_update_ratio_figure_draws_the_guide_band_on_a_log_axis():
    f = frame({"a.weight": [1e-3, 2e-3, 1e-3], "b.weight": [0.5, 0.4, 0.6]})
    fig = figures.update_ratio_figure(f)
    assert fig.layout.yaxis.type == "log"
    (band,) = [s for s in fig.layout.shapes if s.type == "rect"]
    assert (band.y0, band.y1) == figures.UPDATE_RATIO_BAND
    assert {t.name for t in fig.data} == {"a.weight", "b.weight"}


def test_memory_figure_shows_mib_and_the_slope_in_the_legend():
    scalars = frame({"mem.rss_bytes": [float(100 << 20) + i * (1 << 20) for i in range(10)]})
    fig = figures.memory_figure(scalars)
    (trace,) = fig.data
    assert trace.y[0] == pytest.approx(100.0) and trace.y[-1] == pytest.approx(109.0)
    assert "+1,024.0 KiB/step" in trace.name
    assert fig.layout.yaxis.title.text == "memory (MiB)"


def test_memory_figure_on_cuda_names_allocated_reserved_and_peak():
    """The columns the Probe writes on a GPU (probes/quantities/memory.py), each a named line in MiB."""
    mib = float(1 << 20)
    scalars = frame({"mem.cuda_allocated_bytes": [10 * mib, 12 * mib, 14 * mib, 16 * mib],
                     "mem.cuda_reserved_bytes": [32 * mib] * 4, "mem.cuda_peak_bytes": [20 * mib] * 4,
                     "mem.rss_bytes": [900 * mib] * 4})
    names = [t.name for t in figures.memory_figure(scalars).data]
    assert names[0] == "CUDA allocated (+2,048.0 KiB/step)"
    assert names[1:3] == ["CUDA reserved (+0.0 KiB/step)", "CUDA peak in step (+0.0 KiB/step)"]
    assert figures.memory_figure(scalars).data[1].y[0] == pytest.approx(32.0)


def test_data_loading_figure_splits_each_step_into_wait_and_compute():
    scalars = frame({"data_wait_s": [0.004, 0.001], "step_time_s": [0.010, 0.002]})
    fig = figures.data_loading_figure(scalars)
    wait, compute = fig.data
    assert list(wait.y) == pytest.approx([4.0, 1.0]) and list(compute.y) == pytest.approx([6.0, 1.0])
    assert fig.layout.yaxis.title.text == "time (ms)"


TREE = {
    "modules": [
        {"path": "", "class": "Net", "label": "Net", "location": "net.py:3"},
        {"path": "enc", "class": "Sequential", "label": "Sequential", "location": None},
        {"path": "enc.0", "class": "Linear", "label": "Linear 4→8", "location": None},
        {"path": "head", "class": "Linear", "label": "Linear 8→2", "location": None},
    ],
    "tensors": [
        {"name": "enc.0.weight", "module": "enc.0", "kind": "parameter", "shape": [8, 4], "dtype": "float32",
         "device": "cpu", "requires_grad": True, "numel": 32, "optimizer": 0, "shared_with": []},
        {"name": "head.weight", "module": "head", "kind": "parameter", "shape": [2, 8], "dtype": "float32",
         "device": "cpu", "requires_grad": True, "numel": 16, "optimizer": None, "shared_with": []},
    ],
    "unregistered": [{"path": "extra", "module": "", "attribute": "extra", "container": "list", "kind": "module",
                      "count": 2, "numel": 10, "location": "net.py:9"}],
}


def test_tree_frame_sizes_parents_at_least_their_children():
    f = tree_figure.tree_frame(TREE).set_index("id")
    assert f.loc["(model)", "params"] == 48                  # registered parameters only
    assert f.loc["enc", "params"] == 32 and f.loc["enc", "parent"] == "(model)"
    for node, row in f.iterrows():
        children = f[f["parent"] == node]
        assert row["size"] >= children["size"].sum()
    assert f.loc["(model)/extra (unregistered)", "key"] == "unregistered"


def test_tree_colouring_by_optimizer_flags_what_the_optimizer_misses():
    f = tree_figure.tree_frame(TREE, "in optimizer").set_index("id")
    assert f.loc["head", "key"] == "NOT in optimizer" and f.loc["enc.0", "key"] == "in optimizer"
    fig = tree_figure.tree_figure(TREE, "in optimizer")
    colours = dict(zip(fig.data[0].ids, fig.data[0].marker.colors))
    assert colours["head"] == figures.RED and colours["(model)/extra (unregistered)"] == figures.RED


def test_tree_figure_escapes_names_from_user_code():
    tree = json.loads(json.dumps(TREE))
    tree["modules"][0]["class"] = tree["modules"][0]["label"] = "<script>alert(1)</script>"
    fig = tree_figure.tree_figure(tree)
    text = json.dumps(list(fig.data[0].labels) + list(fig.data[0].hovertext))
    assert "<script>" not in text and "&lt;script&gt;" in text


def wide_tree(blocks: int) -> dict:
    """A model of `blocks` blocks, each a Linear and a ReLU, in one ModuleList: 2 + 3 x blocks modules."""
    modules = [{"path": "", "class": "Net", "label": "Net", "children": 1},
               {"path": "blocks", "class": "ModuleList", "label": "ModuleList", "children": blocks}]
    tensors = []
    for i in range(blocks):
        modules += [{"path": f"blocks.{i}", "class": "Block", "label": "Block", "children": 2},
                    {"path": f"blocks.{i}.fc", "class": "Linear", "label": "Linear", "children": 0},
                    {"path": f"blocks.{i}.act", "class": "ReLU", "label": "ReLU", "children": 0}]
        tensors.append({"name": f"blocks.{i}.fc.weight", "module": f"blocks.{i}.fc", "kind": "parameter",
                        "shape": [4, 4], "dtype": "float32", "device": "cpu", "requires_grad": True, "numel": 16,
                        "optimizer": 0})
    return {"modules": modules, "tensors": tensors, "unregistered": []}


def test_a_large_tree_sends_only_the_levels_on_screen_and_focus_reaches_deeper():
    big = wide_tree(700)                                     # 2,102 modules
    assert tree_figure.default_tree_depth(big) == 2              # 700 blocks at level 3: too many to draw at once
    assert tree_figure.default_tree_depth(wide_tree(100)) == 4   # a small model: everything
    ids = list(tree_figure.tree_figure(big, max_depth=3).data[0].ids)
    assert len(ids) == 702 and "blocks.5" in ids and "blocks.5.fc" not in ids
    focused = tree_figure.tree_figure(big, max_depth=3, root="blocks.5").data[0]
    assert sorted(focused.ids) == ["blocks.5", "blocks.5.act", "blocks.5.fc"]
    assert list(focused.parents)[list(focused.ids).index("blocks.5")] == ""    # the focused module is the top
    assert tree_figure.tree_figure(big, root="no.such.module").data[0].ids[0] == "(model)"
    assert "blocks.5" in tree_figure.focus_choices(big) and "blocks.5.fc" not in tree_figure.focus_choices(big)
    small = tree_figure.tree_figure(wide_tree(10), max_depth=2).data[0]
    assert len(small.ids) == 32 and small.maxdepth == 2      # small: all sent, plotly hides the deep levels


def test_tensor_table_lists_unregistered_attributes():
    table = tensor_table(TREE)
    assert table["registered"].tolist() == [True, True, False]
    assert table.loc[1, "in_optimizer"] == False   # noqa: E712 - numpy bool
    assert table.loc[0, "shape"] == "8×4"


@pytest.fixture
def recorded_run(tmp_path):
    """A small real run log: 3 steps, a NaN loss at step 2, one finding whose strings are hostile."""
    writer = RunWriter(tmp_path / "run.db")
    writer.set_meta(model="<script>alert(1)</script>", device="cpu", status="finished", started=0.0)
    for step, loss in enumerate([2.3, 2.1, float("nan")]):
        writer.write_step(step, {"loss": loss, "step_time_s": 0.01, "data_wait_s": 0.001,
                                 "mem.rss_bytes": 1e8 + step},
                          {"grad_norm": (("fc.weight", "fc.bias"), [0.5, 0.1]),
                           "update_ratio": (("fc.weight", "fc.bias"), [1e-3, 2e-3])})
    writer.write_tree(0, TREE)
    writer.write_findings(0, [{"code": "layer-created-in-forward", "severity": "error",
                               "title": "</script><img src=x onerror=alert(1)>", "detail": "d",
                               "module": "<b>m</b>", "location": "x.py:1", "evidence": {"k": "</script>"},
                               "fix": "f"}])
    writer.close()
    return tmp_path


def test_load_run_and_nonfinite_steps(recorded_run):
    run = load_run(recorded_run)
    assert isinstance(run, RunView) and run.steps == 3 and run.status == "finished"
    assert nonfinite_steps(run) == [2]
    assert list(run.get("grad_norm").columns) == ["fc.weight", "fc.bias"]
    assert run.findings[0]["severity"] == "error"           # errors sort first


def test_statistics_export_is_long_form_and_round_trips_parquet(recorded_run):
    run = load_run(recorded_run)
    stats = statistics_frame(run)
    assert list(stats.columns) == ["step", "statistic", "name", "value"]
    grad = stats[(stats["statistic"] == "grad_norm") & (stats["name"] == "fc.weight")]
    assert grad["value"].tolist() == pytest.approx([0.5, 0.5, 0.5])
    back = pd.read_parquet(io.BytesIO(to_parquet_bytes(stats)))
    assert len(back) == len(stats)


def test_html_report_is_one_file_with_every_user_string_escaped(recorded_run):
    page = htmlreport.render(load_run(recorded_run))
    assert page.startswith("<!DOCTYPE html>") and "Plotly.newPlot" in page
    assert "<script>alert(1)</script>" not in page
    assert "<img src=x" not in page and "<b>m</b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "layer-created-in-forward" in page
    assert 'src="http' not in page and "src='http" not in page     # nothing fetched: opens offline
    # every script element closes where we close it: user strings cannot end one early
    assert page.count("<script") == page.count("</script>")


def test_empty_inputs_give_a_message_not_an_error():
    empty = pd.DataFrame(index=pd.Index([], name="step"))
    for fig in (figures.grad_heatmap(empty), figures.memory_figure(empty), figures.data_loading_figure(empty),
                figures.loss_figure(empty), tree_figure.tree_figure(None)):
        assert fig.layout.annotations and fig.layout.annotations[0].text


def test_a_growing_run_is_extended_with_only_its_new_rows(tmp_path):
    """extend_run appends what was written after the last step seen, and ends up equal to reading the
    whole log again; a watcher's finding logged since shows without waiting for the run checks; a log
    started over under the same name is read whole."""
    from app.data import extend_run
    names = ("fc.weight", "fc.bias")
    writer = RunWriter(tmp_path / "run.db")
    writer.set_meta(model="Net", device="cpu", status="running", started=1.0)

    def steps(start, stop):
        for k in range(start, stop):
            vectors = {"grad_norm": (names, [0.5 + k, 0.1])}
            if k >= 15:                                    # a series that starts late
                vectors["update_ratio"] = (names, [1e-3, 2e-3])
            writer.write_step(k, {"loss": 2.0 / (k + 1), "step_time_s": 0.01}, vectors)

    steps(0, 10)
    first = load_run(tmp_path)
    assert first.steps == 10 and first.get("update_ratio").empty
    steps(10, 20)
    writer.write_findings(12, [{"code": "forward-called-directly", "severity": "warning", "title": "t",
                                "module": "", "location": "train.py:9"}])
    grown = extend_run(first, recheck=False)
    whole = load_run(tmp_path)
    pd.testing.assert_frame_equal(grown.scalars, whole.scalars)
    for name in ("grad_norm", "update_ratio"):
        pd.testing.assert_frame_equal(grown.get(name), whole.get(name), check_dtype=False)
    assert list(grown.get("update_ratio").index) == list(range(15, 20))
    assert [f["code"] for f in grown.findings] == ["forward-called-directly"]
    assert first.steps == 10                               # the view it grew from is left as it was
    writer.close()
    restarted = RunWriter(tmp_path / "run.db")
    restarted.set_meta(started=2.0)                        # another run under the same name
    restarted.write_step(0, {"loss": 9.0, "step_time_s": 0.01})
    restarted.close()
    assert extend_run(grown).scalars.loc[0, "loss"] == 9.0      # read whole: its step 0 is the new one


def test_the_depth_chart_draws_the_findings_own_blocks():
    """The chart under a vanishing-gradients card is the finding's evidence, block by block, the blocks it
    names in red: it cannot disagree with the card (no run needed, nothing recomputed)."""
    from app.evidence import evidence_chart
    blocks = [{"block": f"layers.{i}", "grad_rms": 10.0 ** (i - 3), "update_ratio": None} for i in range(4)]
    finding = {"code": "vanishing-gradients", "evidence": {
        "blocks": blocks, "layers": [{"module": "layers.0"}, {"module": "layers.1"}]}}
    fig = evidence_chart(finding, None)
    bar = fig.data[0]
    assert list(bar.y) == [b["block"] for b in blocks] and list(bar.x) == [b["grad_rms"] for b in blocks]
    assert [c == figures.RED for c in bar.marker.color] == [True, True, False, False]


def test_the_gradients_accumulate_chart_draws_the_watched_gradients():
    from app.evidence import evidence_chart
    params = [{"name": "net.2.bias", "applied_norm": 0.5, "now_norm": 1.1, "new_gradients": 1},
              {"name": "net.0.bias", "applied_norm": 0.2, "now_norm": 0.45, "new_gradients": 1}]
    fig = evidence_chart({"code": "gradients-accumulate", "evidence": {"step": 1, "parameters": params}}, None)
    applied, now = fig.data
    assert list(applied.y) == list(now.y) == ["net.2.bias", "net.0.bias"]
    assert list(applied.x) == [0.5, 0.2] and list(now.x) == [1.1, 0.45]
    assert evidence_chart({"code": "gradients-accumulate", "evidence": {}}, None) is None
