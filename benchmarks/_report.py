"""Reporting: machine information, JSON round trip and markdown tables."""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._core import CaseResult, Config, Measurement, Ratio


def machine_info(cfg: Config | None = None) -> dict:
    """CPU count, JAX/jaxlib/numpy versions, backend and devices, platform, date (UTC), load average."""
    import jax
    import jaxlib
    import numpy as np

    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "cpu": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "numpy": np.__version__,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "x64": bool(jax.config.jax_enable_x64),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    if cfg is not None:
        info["config"] = cfg._asdict()
    return info


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, tuple) and hasattr(obj, "_asdict"):
        return {k: _jsonable(v) for k, v in obj._asdict().items()}
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if hasattr(obj, "item") and callable(obj.item):  # numpy / jax scalars
        return obj.item()
    return obj


def to_json(results: Sequence[CaseResult], cfg: Config) -> dict:
    return {"machine": machine_info(cfg), "cases": [_jsonable(r) for r in results]}


def from_json(data: dict) -> list[CaseResult]:
    """The :class:`CaseResult` records of a :func:`to_json` dict (e.g. to re-print a stored run's tables)."""
    out = []
    for c in data["cases"]:
        c = dict(c)
        c["timings"] = tuple(Measurement(**{**m, "times_s": tuple(m["times_s"])}) for m in c["timings"])
        c["ratios"] = tuple(Ratio(**q) for q in c["ratios"])
        out.append(CaseResult(**c))
    return out


def write_json(results: Sequence[CaseResult], cfg: Config, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_json(results, cfg), indent=1) + "\n")
    return path


# --------------------------------------------------------------------------------------- tables


def _fmt_time(s: float) -> str:
    if s >= 1:
        return f"{s:.3g} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3g} ms"
    return f"{s * 1e6:.3g} µs"


def _fmt_bytes(b: float) -> str:
    return f"{b / 2**20:.4g} MiB"


def _fmt_metric(kind: str, v: float) -> str:
    return _fmt_bytes(v) if kind == "memory" else _fmt_time(v)


def markdown_tables(results: Sequence[CaseResult]) -> str:
    """Three markdown tables: ratios with targets (PASS/MISS), absolute medians, and case status."""
    lines = [
        "| case | ratio | value | target | status | numerator | denominator |",
        "|---|---|---:|---|---|---:|---:|",
    ]
    for r in results:
        med = r.medians()
        mem = {k: v["delta_bytes"] for k, v in r.memory.items()}
        for q in r.ratios:
            src = mem if q.kind == "memory" else med
            target = f"{q.op} {q.target:g}" if q.op else "—"
            if q.passed is None:
                status = "extrapolated (not judged)" if q.note.startswith("extrapolated") else "—"
            else:
                status = "PASS" if q.passed else "MISS"
            lines.append(
                f"| {r.name} | {q.name} | {q.value:.3g} | {target} | {status} | "
                f"{_fmt_metric(q.kind, src[q.num])} | {_fmt_metric(q.kind, src[q.den])} |"
            )
        for sl in r.extra.get("slopes", ()):
            if sl.get("expected") is None:
                target, status = "—", "—"
            else:
                target = f"≈ {sl['expected']:g} ± {sl['band']:g}"
                status = "PASS" if sl["passed"] else "MISS"
            lines.append(f"| {r.name} | {sl['name']} | {sl['value']:.3g} | {target} | {status} | | |")
        if r.status != "ok":
            lines.append(f"| {r.name} | — | — | — | {r.status.upper()}: {r.reason.splitlines()[0]} | | |")
    lines += [
        "",
        "| case | function | median | min | compile | calls/round |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in results:
        for m in r.timings:
            lines.append(
                f"| {r.name} | {m.label} | {_fmt_time(m.median_s)} | {_fmt_time(m.min_s)} | "
                f"{_fmt_time(m.compile_s)} | {m.number} |"
            )
    mem_rows = [(r, k, v) for r in results for k, v in r.memory.items()]
    if mem_rows:
        lines += [
            "",
            "| case | function | peak memory growth | process peak | source |",
            "|---|---|---:|---:|---|",
        ]
        for r, k, v in mem_rows:
            lines.append(
                f"| {r.name} | {k} | {_fmt_bytes(v['delta_bytes'])} | {_fmt_bytes(v['peak_bytes'])} | {v['source']} |"
            )
    return "\n".join(lines)
