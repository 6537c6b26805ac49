r"""Reproducible sweeps: a grid of static sizes × seeds, vmapped, sharded, cached; threshold exponents.

:func:`run` evaluates ``fn(key, **point)`` for every point of a Cartesian grid of static values
(sizes such as ``n``, ``d``, ``m``, learning rates, activation names) and every key of ``seeds``,
vmapping over the keys (one compiled call per grid point); ``fn`` may return scalars or arrays (a
learning curve per key). When several JAX devices exist the seed axis is sharded across them with
:mod:`jax.sharding` (a one-axis :class:`~jax.sharding.Mesh` and a
:class:`~jax.sharding.NamedSharding`), so the same script scales from a laptop to a multi-device host.
With ``cache="path.npz"`` the values are saved to ``path.npz`` after *every* grid point, with a JSON
sidecar ``path.json`` (taylorlib and JAX versions, grid, seeds, the generating script's arguments
``args``, date, the function's name and a hash of its source): a re-run loads the file instead of
recomputing, an interrupted sweep resumes where it stopped, a grid or seed list that contains the
cached one extends the cache (only the new points and seeds are computed), and a cache written by
another function or with other arguments is refused.

The threshold sample sizes and exponents that turn a sweep's learning curves into sample
complexities live in :mod:`taylorlib.scaling` (``tl.sweep.crossing_point``, ``fit_exponent`` and
``bootstrap_exponent`` remain as aliases of the functions there).

Example:
    >>> import jax, jax.numpy as jnp
    >>> import taylorlib as tl
    >>> fn = lambda key, n: jnp.mean(jax.random.normal(key, (n,)) ** 2)
    >>> res = tl.sweep.run(fn, {"n": [10, 1000]}, seeds=jax.random.split(jax.random.key(0), 4))
    >>> res.values["value"].shape, res.axes["n"].tolist()
    ((2, 4), [10, 1000])
"""

from __future__ import annotations

import datetime
import functools
import json
import numbers
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Key

from ._sweep_cache import CACHE_FORMAT, _load, _metadata, _paths, _read, _save, _save_meta  # noqa: F401
from .typing import Array

__all__ = ["Sweep", "run", "load"]

# Aliases kept so that code written against taylorlib 0.1 keeps working (not part of this module's API).
from .scaling import Exponent, ExponentInterval, bootstrap_exponent, crossing_point, fit_exponent  # noqa: E402,F401


class Sweep(NamedTuple):
    """The result of :func:`run`.

    Attributes:
        values: dict ``name -> array`` of shape ``(len(axis_1), ..., len(axis_k), n_seeds, *out)``,
            where ``out`` is the shape ``fn`` returns for one key (``()`` for scalars); a function
            returning a bare value gives the single name ``"value"``.
        axes: dict ``axis name -> (len,)`` array of the grid values, in grid order (int, float or str).
        n_seeds: number of seeds (the axis after the grid axes).
        metadata: the JSON metadata (``taylorlib_version``, ``jax_version``, ``grid``, ``seeds`` (key
            data), ``args`` (the generating script's arguments, or ``{}``), ``date`` (UTC, when the sweep
            completed), ``fn`` (module and qualified name), ``fn_source`` (hash of its source),
            ``complete``, ``format``).
    """

    values: dict
    axes: dict
    n_seeds: int
    metadata: dict


def _check_grid(grid: Any) -> dict[str, tuple]:
    if not isinstance(grid, Mapping):
        raise TypeError(
            f"grid must be a dict mapping axis names to lists of values, got {type(grid).__name__}"
        )
    out = {}
    for name, values in grid.items():
        if not isinstance(name, str) or not name.isidentifier() or name == "key":
            raise ValueError(f"grid axis names must be identifiers other than 'key', got {name!r}")
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence | np.ndarray):
            raise TypeError(
                f"grid[{name!r}] must be a list of ints, floats or strings, got {type(values).__name__}"
            )
        if len(values) == 0:
            raise ValueError(f"grid[{name!r}] must be non-empty")
        vals = tuple(_static_value(v, name) for v in values)
        if len({isinstance(v, str) for v in vals}) > 1:
            raise TypeError(f"grid[{name!r}] mixes strings and numbers: {list(vals)!r}")
        if len(set(vals)) != len(vals):
            raise ValueError(f"grid[{name!r}] has repeated values: {list(vals)!r}")
        out[name] = vals
    return out


def _static_value(v: Any, name: str) -> int | float | str:
    """A grid value as a plain Python int, float or str (static under jit, exact in JSON)."""
    if isinstance(v, str):
        return v
    if isinstance(v, numbers.Integral) and not isinstance(v, bool):
        return int(v)
    if isinstance(v, numbers.Real) and not isinstance(v, bool) and np.isfinite(float(v)):
        return float(v)
    raise TypeError(
        f"grid[{name!r}] must contain static Python values (int, finite float or str), got {v!r} of type "
        f"{type(v).__name__}; traced or array values cannot set array shapes or be stored in the sidecar"
    )


def _check_seeds(seeds: Any) -> jax.Array:
    if not (isinstance(seeds, jax.Array) and jnp.issubdtype(seeds.dtype, jax.dtypes.prng_key)):
        raise TypeError(
            "seeds must be a 1-D array of typed PRNG keys, e.g. jax.random.split(jax.random.key(0), 5); "
            f"got {type(seeds).__name__}"
        )
    if seeds.ndim != 1 or seeds.shape[0] < 1:
        raise ValueError(f"seeds must be a non-empty 1-D key array, got shape {tuple(seeds.shape)}")
    return seeds


def _as_dict(out: Any) -> dict[str, jax.Array]:
    if hasattr(out, "_asdict"):
        out = out._asdict()
    if isinstance(out, Mapping):
        return {str(k): jnp.asarray(v) for k, v in out.items()}
    return {"value": jnp.asarray(out)}


def _check_args(args: Any) -> dict:
    """A JSON round-trip copy of ``args`` (so it compares equal to what a cache sidecar holds)."""
    if args is None:
        return {}
    if not isinstance(args, Mapping):
        raise TypeError(f"args must be a dict of the script's settings, got {type(args).__name__}")
    try:
        return json.loads(json.dumps(dict(args)))
    except TypeError as err:
        raise TypeError(f"args must be JSON-serializable (numbers, strings, lists, dicts): {err}") from err


@functools.lru_cache(maxsize=64)
def _batched(fn: Callable, items: tuple) -> Callable:
    """``jit(vmap(fn(key, **point)))``, memoized so a repeated sweep reuses the compiled code."""
    return jax.jit(jax.vmap(lambda key: _as_dict(fn(key, **dict(items)))))


def _evaluator(fn: Callable, point: dict, seeds: jax.Array, vectorize: bool, shard: bool) -> Callable:
    if not vectorize:
        outs = [_as_dict(fn(k, **point)) for k in seeds]
        return lambda: jax.tree_util.tree_map(lambda *v: jnp.stack(v), *outs)
    batched = _batched(fn, tuple(point.items()))
    if not shard:
        return lambda: batched(seeds)
    devices = np.array(jax.devices())
    mesh = jax.sharding.Mesh(devices, ("seeds",))
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("seeds"))
    pad = (-seeds.shape[0]) % devices.size
    padded = jnp.concatenate([seeds, jnp.repeat(seeds[-1:], pad)]) if pad else seeds
    placed = jax.device_put(padded, sharding)
    n = seeds.shape[0]
    return lambda: jax.tree_util.tree_map(lambda v: v[:n], batched(placed))


def run(
    fn: Callable[..., Any],
    grid: Mapping[str, Sequence[Any]],
    *,
    seeds: Key[Array, " s"],
    cache: str | os.PathLike | None = None,
    progress: bool | None = None,
    vectorize: bool = True,
    shard: bool | None = None,
    args: Mapping[str, Any] | None = None,
) -> Sweep:
    r"""Evaluate ``fn(key, **point)`` over a grid of static values × seeds, with caching and resume.

    For each grid point (row-major order over ``grid``'s axes) the keys are vmapped through ``fn``
    in one compiled call. ``fn`` returns an array (a scalar, or e.g. a learning curve), or a dict /
    NamedTuple of arrays; each output keeps its shape at every grid point.

    With ``cache``, a re-run with the same grid and seeds loads the file; a grid or seed list that
    *contains* the cached one extends it (only the new grid points, and the new seeds at old points,
    are computed, and the file is rewritten on the new grid); a grid and seed list *inside* a complete
    cache return that slice without writing. A cache written by a function of another name, by an
    edited function (the sidecar keeps a hash of ``fn``'s source; functions it calls are not hashed),
    or with other ``args`` is refused.

    Args:
        fn: ``fn(key, **point) -> array | dict | NamedTuple`` of arrays; with ``vectorize=True`` it
            must be traceable (``jax.vmap``). Grid values reach it as Python ints, floats or strings
            (static: they may set shapes or pick branches).
        grid: ``{axis name: list of values}``, each list all numbers (int or finite float) or all
            strings, without repeats, e.g. ``{"d": [10, 20], "lr": [0.1, 0.3], "act": ["relu", "tanh"]}``.
        seeds: ``(n_seeds,)`` typed key array, e.g. ``jax.random.split(jax.random.key(0), 5)``.
        cache: path ending in ``.npz``; results (and a ``.json`` sidecar) are written after every grid
            point and re-loaded by later calls.
        progress: tqdm progress bar over grid points (default: only when stderr is a terminal).
        vectorize: ``False`` loops over keys in Python (for functions that are not traceable).
        shard: shard the seed axis over all devices (default: when more than one device exists).
            Seeds are padded (repeating the last key) to a multiple of the device count.
        args: JSON-serializable settings of the generating script (sizes, steps, learning rates),
            recorded in the sidecar; a cache written with other ``args`` is refused, so changing a
            script's constants cannot silently reuse stale values.

    Returns:
        A :class:`Sweep` whose values have shape ``(len(axis_1), ..., len(axis_k), n_seeds, *out)``.

    Raises:
        TypeError: grid values that are not static ints, floats or strings; seeds that are not typed keys.
        ValueError: a cache written by another function, an edited function or with other args, or
            with a grid / seeds that neither contain nor lie inside the requested ones (delete it to
            recompute); a cache path without ``.npz``; an ``fn`` returning different names or shapes at
            different points.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import taylorlib as tl
        >>> def fn(key, n, d):
        ...     x = jax.random.normal(key, (n, d))
        ...     return {"mean_sq": jnp.mean(x**2), "max": jnp.max(x)}
        >>> res = tl.sweep.run(fn, {"n": [100, 400], "d": [2, 3, 5]}, seeds=jax.random.split(jax.random.key(1), 3))
        >>> res.values["mean_sq"].shape, sorted(res.values)
        ((2, 3, 3), ['max', 'mean_sq'])
        >>> bool(abs(res.values["mean_sq"].mean() - 1.0) < 0.1)
        True
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    grid = _check_grid(grid)
    seeds = _check_seeds(seeds)
    shape = tuple(len(v) for v in grid.values())
    n_seeds = seeds.shape[0]
    shard = (jax.device_count() > 1) if shard is None else bool(shard)
    meta = _metadata(fn, grid, seeds, _check_args(args))
    arrays: dict[str, np.ndarray] = {}
    done = np.zeros(shape + (n_seeds,), dtype=bool)
    if cache is not None:
        path, meta_path = _paths(cache)
        loaded = _load(path, meta_path, meta)
        if loaded is not None:
            arrays, done, old, same = loaded
            if done.all():
                if same:
                    return _result(arrays, grid, n_seeds, old)
                return _result(arrays, grid, n_seeds, {**old, "grid": meta["grid"], "seeds": meta["seeds"]})
            if not same:  # an extension: the cache is rewritten on the requested grid and seeds
                _save(path, arrays, done)
                _save_meta(meta_path, meta)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            _save_meta(meta_path, meta)
    points = list(np.ndindex(*shape))
    todo = [idx for idx in points if not done[idx].all()]
    if progress is None:
        progress = sys.stderr.isatty()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(points), initial=len(points) - len(todo), desc="sweep", unit="point")
    try:
        for idx in todo:
            point = {name: grid[name][i] for name, i in zip(grid, idx, strict=True)}
            missing = np.flatnonzero(~done[idx])
            keys = seeds if missing.size == n_seeds else seeds[missing]
            out = jax.device_get(_evaluator(fn, point, keys, vectorize, shard)())
            _store(arrays, out, idx, missing, shape, n_seeds, point)
            done[idx + (missing,)] = True
            if cache is not None:
                _save(path, arrays, done)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    if cache is not None:
        meta["complete"] = True
        meta["date"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        _save_meta(meta_path, meta)
    return _result(arrays, grid, n_seeds, meta)


def load(cache: str | os.PathLike) -> Sweep:
    """Load a complete sweep written by :func:`run` (e.g. a chapter reading ``book/data/*.npz``).

    Args:
        cache: the ``.npz`` path given to :func:`run` (its ``.json`` sidecar must sit next to it).

    Returns:
        The :class:`Sweep`, with the sidecar's metadata.

    Raises:
        FileNotFoundError: the file or its sidecar is missing.
        ValueError: the sweep is incomplete (re-run the script that writes it to finish it).

    Example:
        >>> import tempfile, pathlib, jax, jax.numpy as jnp
        >>> import taylorlib as tl
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "demo.npz"
        >>> fn = lambda key, n: jnp.mean(jax.random.uniform(key, (n,)))
        >>> res = tl.sweep.run(fn, {"n": [4, 8]}, seeds=jax.random.split(jax.random.key(0), 2), cache=path)
        >>> back = tl.sweep.load(path)
        >>> back.axes["n"].tolist(), bool((back.values["value"] == res.values["value"]).all())
        ([4, 8], True)
    """
    path, meta_path = _paths(cache)
    for p in (path, meta_path):
        if not p.exists():
            raise FileNotFoundError(f"sweep cache {str(p)!r} does not exist; run the script that writes it")
    arrays, done, meta = _read(path, meta_path)
    if not meta.get("complete") or not done.all():
        raise ValueError(
            f"sweep cache {str(path)!r} is incomplete ({int(done.sum())} of {done.size} (grid point, seed) "
            "pairs); "
            "re-run the script that writes it to resume"
        )
    grid = {k: tuple(v) for k, v in meta["grid"].items()}
    return _result(arrays, grid, len(meta["seeds"]), meta)


def _store(
    arrays: dict, out: dict, idx: tuple, seeds: np.ndarray, shape: tuple, n_seeds: int, point: dict
) -> None:
    """Write ``fn``'s outputs for the keys ``seeds`` (indices into the seed axis) at grid point ``idx``."""
    if arrays and set(out) != set(arrays):
        raise ValueError(f"fn returned names {sorted(out)} at {point} but {sorted(arrays)} elsewhere")
    for name, v in out.items():
        v = np.asarray(v)
        if v.ndim == 0 or v.shape[0] != seeds.size:
            raise ValueError(
                f"fn must return one value per key; output {name!r} at {point} has shape {v.shape}"
            )
        if name not in arrays:
            dtype = v.dtype if np.issubdtype(v.dtype, np.floating) else np.float64
            arrays[name] = np.full(shape + (n_seeds,) + v.shape[1:], np.nan, dtype=dtype)
        elif arrays[name].shape[len(shape) + 1 :] != v.shape[1:]:
            raise ValueError(
                f"fn output {name!r} has shape {v.shape[1:]} at {point} but "
                f"{arrays[name].shape[len(shape) + 1 :]} elsewhere (every point must return the same shape)"
            )
        arrays[name][idx + (seeds,)] = v


def _result(arrays: dict, grid: dict, n_seeds: int, meta: dict) -> Sweep:
    axes = {k: np.asarray(v) for k, v in grid.items()}
    return Sweep(dict(arrays), axes, n_seeds, meta)
