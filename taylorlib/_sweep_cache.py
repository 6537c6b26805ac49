r"""The cache files of :mod:`taylorlib.sweep` (private): the ``.npz`` of values and done marks, the ``.json``
sidecar (grid, seeds, ``args``, versions, the function's name and source hash), and merging a cache into a
new request (extend the grid or the seeds, slice a complete cache, refuse a mismatched one)."""

from __future__ import annotations

import datetime
import functools
import hashlib
import inspect
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

#: Version of the cache layout. Format 2 marks every (grid point, seed) as done; format-1 caches (one
#: mark per grid point) are read and rewritten as format 2.
CACHE_FORMAT = 2
_READABLE_FORMATS = (1, 2)
_DONE = "__done__"


def _fn_source_hash(fn: Callable) -> str:
    """A short hash of ``fn``'s source (of its code object when the source is not available)."""
    target = fn.func if isinstance(fn, functools.partial) else fn
    try:
        text = inspect.getsource(target)
    except (OSError, TypeError):
        code = getattr(target, "__code__", None)
        text = repr(target) if code is None else repr((code.co_code, code.co_consts, code.co_names))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _library_version() -> str:
    from . import __version__

    return __version__


def _metadata(fn: Callable, grid: dict, seeds: jax.Array, args: dict) -> dict:
    return {
        "format": CACHE_FORMAT,
        "fn": _fn_name(fn),
        "fn_source": _fn_source_hash(fn),
        "grid": {k: list(v) for k, v in grid.items()},
        "seeds": np.asarray(jax.random.key_data(seeds)).tolist(),
        "args": args,
        "taylorlib_version": _library_version(),
        "jax_version": jax.__version__,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "complete": False,
    }


def _fn_name(fn: Callable) -> str:
    target = fn.func if isinstance(fn, functools.partial) else fn
    return f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', repr(target))}"


def _paths(cache: str | os.PathLike) -> tuple[Path, Path]:
    path = Path(cache)
    if path.suffix != ".npz":
        raise ValueError(f"cache must be a path ending in .npz, got {str(cache)!r}")
    return path, path.with_suffix(".json")


def _read(path: Path, meta_path: Path) -> tuple[dict, np.ndarray, dict]:
    """The arrays, the per-(point, seed) done mask and the sidecar of a cache (format 1 or 2)."""
    meta = json.loads(meta_path.read_text())
    if meta.get("format") not in _READABLE_FORMATS:
        raise ValueError(
            f"cache {str(path)!r} has format {meta.get('format')!r}; this taylorlib reads formats "
            f"{list(_READABLE_FORMATS)}. Delete {path.name} and {meta_path.name} to recompute."
        )
    with np.load(path) as data:
        arrays = {k: np.array(data[k]) for k in data.files}
    done = arrays.pop(_DONE)
    shape = tuple(len(v) for v in meta["grid"].values()) + (len(meta["seeds"]),)
    if done.shape != shape:  # format 1: one mark per grid point
        done = np.broadcast_to(done[..., None], shape).copy()
    return arrays, done, meta


def _refuse(path: Path, meta_path: Path, what: str, field: str, old: Any, new: Any, hint: str = "") -> None:
    raise ValueError(
        f"cache {str(path)!r} was written by a different {what}: cached {field} = {old!r}, requested "
        f"{new!r}. {hint}Delete {path.name} and {meta_path.name} (or pass another cache path) to recompute."
    )


def _index_map(new: Sequence, old: Sequence) -> np.ndarray:
    """For every entry of ``new``, its index in ``old`` (``-1`` where absent)."""
    where = {_hashable(v): i for i, v in enumerate(old)}
    return np.array([where.get(_hashable(v), -1) for v in new], dtype=int)


def _hashable(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


def _load(path: Path, meta_path: Path, meta: dict) -> tuple[dict, np.ndarray, dict, bool] | None:
    """Load a cache and lay it out on ``meta``'s grid and seeds.

    Returns ``(arrays, done, old_meta, same)`` where ``same`` says the cache has exactly the requested
    grid and seeds; ``None`` when no cache exists. Raises ValueError for a cache written by another
    function or with other arguments, and for a grid or seed list that neither contains nor is
    contained in the cached one.
    """
    if not path.exists() or not meta_path.exists():
        return None
    arrays, done, old = _read(path, meta_path)
    if old.get("args", {}) != meta["args"]:
        _refuse(path, meta_path, "script arguments", "args", old.get("args"), meta["args"])
    if old.get("fn", meta["fn"]) != meta["fn"]:
        _refuse(path, meta_path, "function", "fn", old.get("fn"), meta["fn"])
    if old.get("fn_source", meta["fn_source"]) != meta["fn_source"]:
        _refuse(
            path,
            meta_path,
            "function source",
            "fn_source",
            old.get("fn_source"),
            meta["fn_source"],
            f"{meta['fn']} was edited since the cache was written. ",
        )
    if list(old["grid"]) != list(meta["grid"]):
        _refuse(path, meta_path, "grid", "grid axes", list(old["grid"]), list(meta["grid"]))
    if old["grid"] == meta["grid"] and old["seeds"] == meta["seeds"]:
        return arrays, done, old, True
    maps = [_index_map(meta["grid"][k], old["grid"][k]) for k in meta["grid"]]
    seed_map = _index_map(meta["seeds"], old["seeds"])
    contains = all(
        set(map(_hashable, old["grid"][k])) <= set(map(_hashable, meta["grid"][k])) for k in meta["grid"]
    ) and set(map(_hashable, old["seeds"])) <= set(map(_hashable, meta["seeds"]))
    inside = all((m >= 0).all() for m in maps) and (seed_map >= 0).all()
    if not (inside or contains):
        hint = "A grid and seed list that contain the cached ones extend the cache. "
        if old["grid"] != meta["grid"]:
            _refuse(path, meta_path, "grid", "grid", old["grid"], meta["grid"], hint)
        _refuse(
            path,
            meta_path,
            "seeds",
            "seeds",
            f"<{len(old['seeds'])} keys>",
            f"<{len(meta['seeds'])} other keys>",
            hint,
        )
    # lay the cached values out on the requested grid and seeds (absent entries: not done)
    shape = tuple(len(v) for v in meta["grid"].values()) + (len(meta["seeds"]),)
    sel = np.ix_(*[np.maximum(m, 0) for m in maps], np.maximum(seed_map, 0))
    present = np.ones(shape, dtype=bool)
    for axis, m in enumerate([*maps, seed_map]):
        present &= (m >= 0).reshape((-1,) + (1,) * (len(shape) - axis - 1))
    new_done = np.where(present, done[sel], False)
    new_arrays = {}
    for name, v in arrays.items():
        picked = v[sel]
        fill = np.nan if np.issubdtype(v.dtype, np.floating) else 0
        mask = present.reshape(present.shape + (1,) * (v.ndim - len(shape)))
        new_arrays[name] = np.where(mask, picked, fill).astype(v.dtype)
    return new_arrays, new_done, old, False


def _save(path: Path, arrays: dict, done: np.ndarray) -> None:
    tmp = path.with_name(path.stem + ".partial.npz")
    np.savez_compressed(tmp, **{**arrays, _DONE: done})
    os.replace(tmp, path)


def _save_meta(meta_path: Path, meta: dict) -> None:
    tmp = meta_path.with_name(meta_path.name + ".tmp")
    tmp.write_text(json.dumps(meta, indent=1) + "\n")
    os.replace(tmp, meta_path)
