"""taylorlib.sweep: vmapped grids over seeds, caching and resume, sharding, threshold exponents."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import RTOL, raises

import taylorlib as tl

ROOT = Path(__file__).resolve().parents[1]
RTOL32 = RTOL[np.dtype("float32")]


def _fn(key, n, d):
    x = jax.random.normal(key, (n, d))
    return {"mean_sq": jnp.mean(x**2), "top": jnp.linalg.norm(x.T @ x / n)}


def _seeds(k=3, seed=0):
    return jax.random.split(jax.random.key(seed), k)


GRID = {"n": [5, 17], "d": [2, 3, 4]}


def _loop_reference(fn, grid, seeds):
    """Plain Python loop over grid points and keys (the second implementation)."""
    names = list(grid)
    shape = tuple(len(v) for v in grid.values())
    out = {}
    for idx in np.ndindex(*shape):
        point = {nm: grid[nm][i] for nm, i in zip(names, idx, strict=True)}
        for s, key in enumerate(seeds):
            for name, v in fn(key, **point).items():
                out.setdefault(name, np.full(shape + (len(seeds),), np.nan))[idx + (s,)] = float(v)
    return out


def test_run_matches_python_loop():
    seeds = _seeds()
    res = tl.sweep.run(_fn, GRID, seeds=seeds)
    ref = _loop_reference(_fn, GRID, seeds)
    assert res.n_seeds == 3
    assert list(res.axes) == ["n", "d"]
    assert res.axes["n"].tolist() == [5, 17]
    assert res.axes["d"].tolist() == [2, 3, 4]
    for name in ref:
        assert res.values[name].shape == (2, 3, 3)
        np.testing.assert_allclose(res.values[name], ref[name], rtol=10 * RTOL32)


def test_vectorize_false_agrees():
    seeds = _seeds(2)
    a = tl.sweep.run(_fn, GRID, seeds=seeds)
    b = tl.sweep.run(_fn, GRID, seeds=seeds, vectorize=False)
    for name in a.values:
        np.testing.assert_allclose(a.values[name], b.values[name], rtol=10 * RTOL32)


class _Out(NamedTuple):
    first: jax.Array
    second: jax.Array


def test_scalar_and_namedtuple_outputs_and_empty_grid():
    res = tl.sweep.run(lambda key, n: jax.random.normal(key, (n,)).sum(), {"n": [1, 2]}, seeds=_seeds(4))
    assert list(res.values) == ["value"]
    assert res.values["value"].shape == (2, 4)
    res = tl.sweep.run(lambda key: _Out(jax.random.uniform(key), jnp.float32(2.0)), {}, seeds=_seeds(2))
    assert sorted(res.values) == ["first", "second"]
    assert res.values["second"].tolist() == [2.0, 2.0]


def test_cache_round_trip(tmp_path):
    path = tmp_path / "sweep.npz"
    seeds = _seeds()
    calls = []

    def counted(key, n, d):  # a fresh function: traced (once per grid point) only when computed
        calls.append((n, d))
        return _fn(key, n, d)

    first = tl.sweep.run(counted, GRID, seeds=seeds, cache=path)
    assert len(calls) == 6
    calls.clear()
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["grid"] == {"n": [5, 17], "d": [2, 3, 4]}
    assert meta["complete"] is True
    assert meta["jax_version"] == jax.__version__
    assert "date" in meta
    assert meta["fn"].endswith("counted")
    assert meta["seeds"] == np.asarray(jax.random.key_data(seeds)).tolist()

    again = tl.sweep.run(counted, GRID, seeds=seeds, cache=path)
    assert calls == []  # a complete cache is loaded, not recomputed
    for name in first.values:
        np.testing.assert_array_equal(again.values[name], first.values[name])
    assert again.metadata["date"] == meta["date"]


def test_cache_refuses_other_grid_or_seeds(tmp_path):
    path = tmp_path / "sweep.npz"
    tl.sweep.run(_fn, GRID, seeds=_seeds(), cache=path)
    with raises(ValueError, match="different grid"):
        tl.sweep.run(_fn, {"n": [5, 18], "d": [2, 3, 4]}, seeds=_seeds(), cache=path)
    with raises(ValueError, match="different seeds"):
        tl.sweep.run(_fn, GRID, seeds=_seeds(seed=1), cache=path)
    with raises(ValueError, match="different seeds"):
        tl.sweep.run(_fn, GRID, seeds=jax.random.split(jax.random.key(7), 4), cache=path)


def test_interrupted_sweep_resumes_without_recomputing(tmp_path):
    path = tmp_path / "resume.npz"
    seeds = _seeds()
    n_points = 6
    fail_at = 4  # the 4th grid point raises; points 1..3 are finished and saved
    calls = []

    def flaky(key, n, d):
        calls.append((n, d))  # called once per grid point (tracing under vmap)
        if len(calls) == fail_at:
            raise RuntimeError("interrupted")
        return _fn(key, n, d)

    with raises(RuntimeError, match="interrupted"):
        tl.sweep.run(flaky, GRID, seeds=seeds, cache=path)
    assert json.loads(path.with_suffix(".json").read_text())["complete"] is False
    with np.load(path) as data:
        assert int(data["__done__"].sum()) == (fail_at - 1) * len(seeds)  # (point, seed) pairs
    calls.clear()
    resumed = tl.sweep.run(flaky, GRID, seeds=seeds, cache=path)
    assert len(calls) == n_points - (fail_at - 1)
    fresh = tl.sweep.run(_fn, GRID, seeds=seeds)
    for name in fresh.values:
        np.testing.assert_array_equal(resumed.values[name], fresh.values[name])
    assert json.loads(path.with_suffix(".json").read_text())["complete"] is True


def test_progress_bar(capsys):
    tl.sweep.run(_fn, {"n": [3], "d": [2]}, seeds=_seeds(1), progress=True)
    assert "sweep" in capsys.readouterr().err
    tl.sweep.run(_fn, {"n": [3], "d": [2]}, seeds=_seeds(1), progress=False)
    assert capsys.readouterr().err == ""


_SHARD_SCRIPT = textwrap.dedent(
    """
    import json, jax, jax.numpy as jnp, numpy as np
    import taylorlib as tl

    def fn(key, n, d):
        x = jax.random.normal(key, (n, d))
        return {"mean_sq": jnp.mean(x**2), "top": jnp.linalg.norm(x.T @ x / n)}

    seeds = jax.random.split(jax.random.key(0), 5)  # odd: padded to 6 over 2 devices
    grid = {"n": [5, 17], "d": [2, 3]}
    sharded = tl.sweep.run(fn, grid, seeds=seeds)
    plain = tl.sweep.run(fn, grid, seeds=seeds, shard=False)
    print(json.dumps({"devices": jax.device_count(),
                      "sharded": {k: v.tolist() for k, v in sharded.values.items()},
                      "plain": {k: v.tolist() for k, v in plain.values.items()}}))
    """
)


def test_sharded_and_unsharded_sweeps_agree():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu")
    proc = subprocess.run(
        [sys.executable, "-c", _SHARD_SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["devices"] == 2
    single = tl.sweep.run(_fn, {"n": [5, 17], "d": [2, 3]}, seeds=_seeds(5))  # this process: one device
    for name in ("mean_sq", "top"):
        np.testing.assert_array_equal(np.array(out["sharded"][name]), np.array(out["plain"][name]))
        np.testing.assert_allclose(np.array(out["sharded"][name]), single.values[name], rtol=10 * RTOL32)


def test_bad_inputs(tmp_path):
    seeds = _seeds(2)
    with raises(TypeError, match="static Python values"):
        tl.sweep.run(_fn, {"n": [jnp.int32(5)], "d": [2]}, seeds=seeds)
    with raises(TypeError, match="static Python values"):
        tl.sweep.run(_fn, {"n": [True], "d": [2]}, seeds=seeds)
    with raises(TypeError, match="static Python values"):
        tl.sweep.run(_fn, {"n": [float("nan")], "d": [2]}, seeds=seeds)
    with raises(TypeError, match="mixes strings and numbers"):
        tl.sweep.run(_fn, {"n": [5, "5"], "d": [2]}, seeds=seeds)
    with raises(ValueError, match="repeated values"):
        tl.sweep.run(_fn, {"n": [5, 5], "d": [2]}, seeds=seeds)
    with raises(TypeError, match="grid"):
        tl.sweep.run(_fn, [("n", [5])], seeds=seeds)
    with raises(TypeError, match="grid"):
        tl.sweep.run(_fn, {"n": 5, "d": [2]}, seeds=seeds)
    with raises(ValueError, match="non-empty"):
        tl.sweep.run(_fn, {"n": [], "d": [2]}, seeds=seeds)
    with raises(ValueError, match="axis names"):
        tl.sweep.run(_fn, {"key": [1]}, seeds=seeds)
    with raises(TypeError, match="seeds"):
        tl.sweep.run(_fn, GRID, seeds=3)
    with raises(TypeError, match="seeds"):
        tl.sweep.run(_fn, GRID, seeds=jnp.arange(3))
    with raises(ValueError, match="cache"):
        tl.sweep.run(_fn, GRID, seeds=seeds, cache=tmp_path / "x.pkl")
    with raises(ValueError, match="same shape"):
        tl.sweep.run(lambda key, n: jax.random.normal(key, (n,)), {"n": [3, 4]}, seeds=seeds)
    with raises(TypeError, match="fn"):
        tl.sweep.run(None, GRID, seeds=seeds)


def test_load(tmp_path):
    path = tmp_path / "s.npz"
    res = tl.sweep.run(_fn, GRID, seeds=_seeds(), cache=path)
    back = tl.sweep.load(path)
    assert back.n_seeds == 3
    assert {k: v.tolist() for k, v in back.axes.items()} == GRID
    for name in res.values:
        np.testing.assert_array_equal(back.values[name], res.values[name])
    with raises(FileNotFoundError, match="does not exist"):
        tl.sweep.load(tmp_path / "missing.npz")


def test_load_refuses_incomplete(tmp_path):
    path = tmp_path / "partial.npz"

    def fail_on_big(key, n, d):
        if n == 17:
            raise RuntimeError("stop")
        return _fn(key, n, d)

    with pytest.raises(RuntimeError):
        tl.sweep.run(fail_on_big, GRID, seeds=_seeds(), cache=path)
    with raises(ValueError, match="incomplete"):
        tl.sweep.load(path)


# --- script arguments and library version in the sidecar ------------------------------------------


def test_cache_records_version_and_args_and_refuses_other_args(tmp_path):
    path = tmp_path / "args.npz"
    args = {"steps": 10, "lr": 0.5, "widths": (4, 8)}
    grid = {"n": [5], "d": [2]}
    tl.sweep.run(_fn, grid, seeds=_seeds(), cache=path, args=args)
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["taylorlib_version"] == tl.__version__
    assert meta["args"] == {"steps": 10, "lr": 0.5, "widths": [4, 8]}
    assert tl.sweep.load(path).metadata["args"]["steps"] == 10
    tl.sweep.run(_fn, grid, seeds=_seeds(), cache=path, args=dict(args))  # same args: loads
    with raises(ValueError, match="different script arguments"):
        tl.sweep.run(_fn, grid, seeds=_seeds(), cache=path, args={**args, "steps": 11})
    with raises(ValueError, match="different script arguments"):
        tl.sweep.run(_fn, grid, seeds=_seeds(), cache=path)
    with raises(TypeError, match="args must be a dict"):
        tl.sweep.run(_fn, grid, seeds=_seeds(), args=[1, 2])
    with raises(TypeError, match="JSON-serializable"):
        tl.sweep.run(_fn, grid, seeds=_seeds(), args={"f": object()})


# --- grids of any static value, array outputs, extending caches, function identity ------------------


def _curve(key, lr, act, steps):
    """A 'learning curve' per key: steps of gradient descent on a random quadratic."""
    f = {"tanh": jnp.tanh, "sin": jnp.sin}[act]
    x0 = jax.random.normal(key)
    xs = [x0]
    for _ in range(steps - 1):
        xs.append(xs[-1] - lr * f(xs[-1]))
    return {"curve": jnp.stack(xs), "final": xs[-1]}


def test_float_and_string_grids_and_array_outputs_match_a_loop():
    grid = {"lr": [0.1, 0.5], "act": ["tanh", "sin"], "steps": [4]}
    seeds = _seeds(3)
    res = tl.sweep.run(_curve, grid, seeds=seeds)
    assert res.values["curve"].shape == (2, 2, 1, 3, 4)
    assert res.values["final"].shape == (2, 2, 1, 3)
    assert res.axes["lr"].dtype.kind == "f"
    assert res.axes["act"].tolist() == ["tanh", "sin"]
    for i, lr in enumerate(grid["lr"]):
        for j, act in enumerate(grid["act"]):
            for s, key in enumerate(seeds):
                want = _curve(key, lr, act, 4)
                np.testing.assert_allclose(res.values["curve"][i, j, 0, s], want["curve"], rtol=RTOL32)
                np.testing.assert_allclose(res.values["final"][i, j, 0, s], want["final"], rtol=RTOL32)


def test_float_string_grids_and_arrays_round_trip_through_the_cache(tmp_path):
    path = tmp_path / "curves.npz"
    grid = {"lr": [0.1, 0.5], "act": ["tanh"], "steps": [3]}
    first = tl.sweep.run(_curve, grid, seeds=_seeds(2), cache=path)
    back = tl.sweep.load(path)
    assert back.axes["act"].tolist() == ["tanh"]
    assert back.axes["lr"].tolist() == [0.1, 0.5]
    np.testing.assert_array_equal(back.values["curve"], first.values["curve"])


def test_extending_a_cache_computes_only_new_points_and_seeds(tmp_path):
    path = tmp_path / "extend.npz"
    calls = []

    def counted(key, n, d):  # a fresh function: traced (once per grid point) only when computed
        calls.append((n, d))
        return _fn(key, n, d)

    small, seeds3 = {"n": [5, 17], "d": [2]}, _seeds(3)
    tl.sweep.run(counted, small, seeds=seeds3, cache=path)
    big, seeds5 = {"n": [5, 9, 17], "d": [2, 3]}, jnp.concatenate([seeds3, _seeds(2, seed=4)])
    calls.clear()
    extended = tl.sweep.run(counted, big, seeds=seeds5, cache=path)
    # old points are traced once more (for their 2 new seeds); the 4 new points once each
    assert sorted(calls) == sorted([(5, 2), (17, 2), (5, 3), (9, 2), (9, 3), (17, 3)])
    fresh = tl.sweep.run(_fn, big, seeds=seeds5)
    for name in fresh.values:
        np.testing.assert_allclose(extended.values[name], fresh.values[name], rtol=RTOL32)
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["grid"] == {"n": [5, 9, 17], "d": [2, 3]}
    assert len(meta["seeds"]) == 5
    assert meta["complete"]
    # a sub-grid of a complete cache is a slice: nothing recomputed, the file is not rewritten
    stamp = path.stat().st_mtime_ns
    calls.clear()
    part = tl.sweep.run(counted, {"n": [17, 5], "d": [3]}, seeds=seeds5[1:3], cache=path)
    assert calls == []
    assert path.stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(part.values["top"], fresh.values["top"][[2, 0]][:, [1]][..., 1:3])


def _other(key, n, d):
    return _fn(key, n, d)


def test_cache_refuses_another_function_or_an_edited_one(tmp_path):
    path = tmp_path / "fn.npz"
    tl.sweep.run(_fn, GRID, seeds=_seeds(), cache=path)
    with raises(ValueError, match="different function"):
        tl.sweep.run(_other, GRID, seeds=_seeds(), cache=path)
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "fn_source": "0123456789abcdef"}))
    with raises(ValueError, match="different function source.*was edited"):
        tl.sweep.run(_fn, GRID, seeds=_seeds(), cache=path)
    # a sidecar written before source hashes existed is accepted on the function's name
    meta.pop("fn_source")
    meta_path.write_text(json.dumps(meta))
    tl.sweep.run(_fn, GRID, seeds=_seeds(), cache=path)


def test_format_1_caches_are_read(tmp_path):
    path = tmp_path / "old.npz"
    seeds = _seeds(2)
    new = tl.sweep.run(_fn, GRID, seeds=seeds, cache=path)
    with np.load(path) as data:
        arrays = {k: np.array(data[k]) for k in data.files}
    arrays["__done__"] = arrays["__done__"].all(-1)  # format 1: one mark per grid point
    np.savez(path, **arrays)
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "format": 1}))
    old = tl.sweep.load(path)
    np.testing.assert_array_equal(old.values["top"], new.values["top"])
    again = tl.sweep.run(_fn, GRID, seeds=seeds, cache=path)
    np.testing.assert_array_equal(again.values["top"], new.values["top"])
