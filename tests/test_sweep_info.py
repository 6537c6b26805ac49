"""The sweep sidecar records the taylorlib version and an ``info`` dict (a script's arguments)."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import pytest

import taylorlib as tl


def _fn(key, n):
    return jnp.mean(jax.random.normal(key, (n,)))


def test_sidecar_records_version_and_info(tmp_path):
    path = tmp_path / "s.npz"
    info = {"script": "experiments/demo.py", "args": {"d": 3, "ridges": [0.1, 1.0]}}
    seeds = jax.random.split(jax.random.key(0), 2)
    tl.sweep.run(_fn, {"n": [4]}, seeds=seeds, cache=path, info=info)
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["taylorlib_version"] == tl.__version__ and meta["info"] == info
    assert tl.sweep.load(path).metadata["info"] == info
    # Without info the field is an empty dict; a re-run with other info reuses the cache.
    assert tl.sweep.run(_fn, {"n": [4]}, seeds=seeds).metadata["info"] == {}


@pytest.mark.parametrize("info", [["not", "a", "dict"], {1: "int key"}, {"x": object()}])
def test_bad_info(info):
    with pytest.raises(TypeError, match="info must"):
        tl.sweep.run(_fn, {"n": [4]}, seeds=jax.random.split(jax.random.key(0), 2), info=info)
