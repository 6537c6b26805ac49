"""The benchmark suite runs and reports well-formed results (structure only: no timing assertion)."""

from __future__ import annotations

import json
import math

import jax.numpy as jnp
import pytest

import benchmarks as bm
from benchmarks import __main__ as cli
from benchmarks import _core

#: In-process runs: tiny sizes, few rounds, no subprocesses.
CFG = bm.Config(quick=True, repeats=3, min_time=0.0, memory=False)
#: Ratios are recomputed from the reported medians; only float round-off may differ.
RATIO_RTOL = 1e-12


@pytest.fixture(scope="module")
def results():
    return bm.run(CFG, ["two_layer_ntk", "kernels_ntk"])


def check_result(r: bm.CaseResult, cfg: bm.Config) -> None:
    assert r.status == "ok", r.reason
    assert r.wall_s > 0
    assert r.sizes
    labels = [m.label for m in r.timings]
    assert len(labels) == len(set(labels)) >= 2
    for m in r.timings:
        assert len(m.times_s) == cfg.repeats
        assert all(t > 0 for t in m.times_s)
        assert m.min_s <= m.median_s <= m.max_s
        assert m.median_s == pytest.approx(sorted(m.times_s)[cfg.repeats // 2])
        assert m.number >= 1
        assert m.first_call_s > 0
        assert m.compile_s >= 0
    medians = r.medians()
    assert r.ratios
    for q in r.ratios:
        assert q.kind == "time"
        assert q.value == pytest.approx(medians[q.num] / medians[q.den], rel=RATIO_RTOL)
        if q.op is None:
            assert q.passed is None
            assert q.target is None
        else:
            assert q.passed == (q.value >= q.target if q.op == ">=" else q.value <= q.target)


def test_cases_run_and_report_consistent_ratios(results):
    assert [r.name for r in results] == ["two_layer_ntk", "kernels_ntk"]
    for r in results:
        check_result(r, CFG)


def test_two_layer_ntk_case_has_its_targets_and_baselines(results):
    r = results[0]
    targets = {q.name: (q.op, q.target) for q in r.ratios if q.op}
    assert targets == {"vmap(grad) / two_layer_ntk": (">=", 20), "two_layer_ntk / matmul proxy": ("<=", 1.5)}
    # every baseline computes the same kernel as the closed form (float32 round-off)
    errors = r.extra["rel_frobenius_error_vs_two_layer_ntk"]
    assert set(errors) == {"empirical_ntk jacobian", "vmap(grad) Gram", "jacrev Gram"}
    assert max(errors.values()) < 1e-4


def test_markdown_and_json(results, tmp_path):
    table = bm.markdown_tables(results)
    assert table.startswith("| case | ratio | value | target | status |")
    for r in results:
        for q in r.ratios:
            assert f"| {r.name} | {q.name} |" in table
    assert ("PASS" in table) or ("MISS" in table)
    path = bm.write_json(results, CFG, tmp_path / "out.json")
    data = json.loads(path.read_text())
    for key in ("cpu_count", "jax", "backend", "platform", "date", "config"):
        assert key in data["machine"]
    assert data["machine"]["config"]["quick"] is True
    case = data["cases"][0]
    assert {"name", "status", "sizes", "timings", "ratios", "memory", "extra"} <= set(case)
    med = {**{t["label"]: t["median_s"] for t in case["timings"]}, **(case["derived"] or {})}
    for q in case["ratios"]:
        assert q["value"] == pytest.approx(med[q["num"]] / med[q["den"]], rel=RATIO_RTOL)
    # a stored run re-prints the same tables (python -m benchmarks --table PATH)
    assert bm.markdown_tables(bm.from_json(data)) == table


def test_time_group_protocol():
    calls = {"n": 0}

    def f():
        calls["n"] += 1
        return jnp.ones(3)

    (m,) = bm.time_group({"f": f}, bm.Config(repeats=4, min_time=0.0))
    # warm-up + calibration (also the first round, since one call already meets min_time = 0) + 3 rounds
    assert calls["n"] == 2 + 3 * m.number
    assert len(m.times_s) == 4
    assert m.median_s > 0


def test_ratio_and_slope_helpers():
    q = bm.ratio("a / b", "a", "b", {"a": 6.0, "b": 2.0}, target=2, op=">=")
    assert q.value == 3.0
    assert q.passed is True
    q = bm.ratio("a / b", "a", "b", {"a": 6.0, "b": 2.0}, target=2, op="<=")
    assert q.passed is False
    with pytest.raises(ValueError, match="target and op"):
        bm.ratio("a / b", "a", "b", {"a": 1.0, "b": 1.0}, target=2)
    xs = [64, 128, 256, 512]
    assert bm.loglog_slope(xs, [3.0 * x**2 for x in xs]) == pytest.approx(2.0)
    assert bm.loglog_slope(xs, [5.0 / math.sqrt(x) for x in xs]) == pytest.approx(-0.5)


def test_select_and_missing_modules(monkeypatch):
    assert {c.name for c in bm.select(["ntk"])} >= {"two_layer_ntk", "empirical_ntk", "empirical_ntk_memory"}
    with pytest.raises(ValueError, match="unknown benchmark case"):
        bm.select(["no_such_case"])
    fake = bm.Case(
        "fake",
        "fake",
        "needs a name nobody exports",
        lambda cfg: {},
        requires=(("taylorlib.randomize", "no_such_function"),),
    )
    monkeypatch.setitem(bm.REGISTRY, "fake", fake)
    r = bm.run_case(fake, CFG)
    assert (r.status, r.reason) == ("skipped", "module not available")
    assert "| fake | — | — | — | SKIPPED: module not available |" in bm.markdown_tables([r])


def test_every_registered_case_names_existing_baselines():
    cases = bm.select(None)
    assert len(cases) >= 8
    assert {"ntk", "scaling", "taylor", "kernels", "randomize", "landscape", "train"} <= {
        c.family for c in cases
    }


def test_peak_memory_worker():
    out = bm.peak_memory("benchmarks.bench_ntk:probe", {"method": "jacobian", "d": 2, "m": 4, "n": 3})
    assert set(out) == {"peak_bytes", "delta_bytes", "seconds", "source"}
    assert out["peak_bytes"] > 0
    assert out["seconds"] > 0


def test_cli_list_and_quick_run(tmp_path, capsys):
    assert cli.main(["--list"]) == 0
    assert "two_layer_ntk" in capsys.readouterr().out
    out = tmp_path / "quick.json"
    assert cli.main(["--quick", "--only", "kernels_ntk", "--repeats", "2", "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| kernels_ntk | numpy / kernels.ntk |" in printed
    assert json.loads(out.read_text())["cases"][0]["status"] == "ok"


def _case_with(ratios, derived=None, measured=("measured", "other", "a", "b")):
    timings = tuple(bm.Measurement(label, 1.0, 1.0, 1.0, (1.0,), 1, 1.0, 0.0) for label in measured)
    out = {"timings": timings, "ratios": ratios, "derived": derived or {}}
    case = bm.Case("demo", "demo", "a demo case", lambda cfg: out)
    return _core._result_from(case, out, 0.0)


def test_an_extrapolated_ratio_is_never_judged_and_strict_counts_misses():
    med = {"measured": 1.0, "other": 30.0, "extrapolated cost": 30.0}
    passing = bm.ratio("extrapolated / measured", "extrapolated cost", "measured", med, target=10, op=">=")
    assert passing.passed is True  # as computed; the case result must not keep it
    missed = bm.ratio("measured / other", "measured", "other", med, target=10, op=">=")
    res = _case_with([passing, missed], derived={"extrapolated cost": 30.0})
    assert res.ratios[0].passed is None
    assert res.ratios[0].note.startswith("extrapolated")
    assert res.ratios[1].passed is False
    assert bm.misses([res]) == ["demo: measured / other"]
    table = bm.markdown_tables([res])
    assert "extrapolated (not judged)" in table
    assert "PASS" not in table.split("\n\n")[0]


def test_cli_strict_exits_non_zero_on_a_miss(monkeypatch, tmp_path):
    med = {"a": 1.0, "b": 30.0}
    res = _case_with([bm.ratio("a / b", "a", "b", med, target=10, op=">=")])
    monkeypatch.setattr(cli, "run", lambda cfg, only, log=None: [res])
    monkeypatch.setattr(cli, "write_json", lambda results, cfg, output: output)
    out = str(tmp_path / "r.json")
    assert cli.main(["--output", out, "--no-memory"]) == 0
    assert cli.main(["--strict", "--output", out, "--no-memory"]) == 2
    assert cli.main(["--strict", "--quick", "--output", out]) == 0  # tiny sizes judge nothing
