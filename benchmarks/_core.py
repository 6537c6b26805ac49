"""Benchmark machinery: records, the case registry, timing, peak memory and the runner (see the package
docstring)."""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import os
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

#: Modules holding the cases, in the order they run (each registers its cases on import).
CASE_MODULES = (
    "benchmarks.bench_ntk",
    "benchmarks.bench_scaling",
    "benchmarks.bench_taylor",
    "benchmarks.bench_taylorized",
    "benchmarks.bench_kernels",
    "benchmarks.bench_randomize",
    "benchmarks.bench_landscape",
    "benchmarks.bench_train",
    "benchmarks.bench_anynet",
    "benchmarks.bench_overhead",
)
RESULTS_DIR = Path(__file__).resolve().parent / "results"
SKIP_REASON = "module not available"


class Config(NamedTuple):
    """How hard to measure.

    Attributes:
        quick: tiny sizes (CI smoke run: proves the suite works, measures nothing meaningful).
        repeats: timed rounds per function (the median is reported); at least 5 in full runs.
        min_time: seconds that one round of one function should last (fast calls are repeated).
        memory: run the subprocess peak-memory measurements.
    """

    quick: bool = False
    repeats: int = 5
    min_time: float = 0.05
    memory: bool = True


class Measurement(NamedTuple):
    """Timing of one function: seconds per call."""

    label: str
    median_s: float
    min_s: float
    max_s: float
    times_s: tuple[float, ...]  # per-round seconds per call
    number: int  # calls per round
    first_call_s: float  # trace + compile + one run
    compile_s: float  # first_call_s - median_s (>= 0): trace + compile, reported separately


class Ratio(NamedTuple):
    """``value = metric[num] / metric[den]`` (times in s, or memory in bytes), with an optional target.

    ``op`` is ``">="`` or ``"<="`` (``None`` for an informative ratio without a target); ``passed`` is
    ``value op target``.
    """

    name: str
    num: str
    den: str
    kind: str  # "time" or "memory"
    value: float
    target: float | None
    op: str | None
    passed: bool | None
    note: str = ""


class CaseResult(NamedTuple):
    """Everything one case measured."""

    name: str
    family: str
    description: str
    status: str  # "ok", "skipped" or "error"
    reason: str
    sizes: dict
    timings: tuple[Measurement, ...]
    memory: dict  # label -> {"peak_bytes", "delta_bytes", "seconds", "source"}
    ratios: tuple[Ratio, ...]
    extra: dict  # case-specific numbers: slopes, agreement errors, ...
    wall_s: float
    derived: dict | None = None  # seconds computed from the medians (e.g. an extrapolation), label -> s

    def medians(self) -> dict[str, float]:
        """Median seconds per call, plus the ``derived`` times; time ratios are quotients of these."""
        return {**{m.label: m.median_s for m in self.timings}, **(self.derived or {})}


@dataclasses.dataclass(frozen=True)
class Case:
    """A registered benchmark case: ``fn(cfg) -> CaseOutput`` plus metadata."""

    name: str
    family: str
    description: str
    fn: Callable[[Config], dict]
    requires: tuple[tuple[str, str], ...] = ()

    def missing(self) -> str | None:
        """``None`` if every required library name exists, else the skip reason."""
        for module, attr in self.requires:
            try:
                mod = importlib.import_module(module)
            except ImportError:
                return SKIP_REASON
            if attr not in getattr(mod, "__all__", ()) or not hasattr(mod, attr):
                return SKIP_REASON
        return None


#: name -> Case, in registration order.
REGISTRY: dict[str, Case] = {}


def register(
    name: str, *, family: str, description: str, requires: Iterable[tuple[str, str]] = ()
) -> Callable[[Callable[[Config], dict]], Callable[[Config], dict]]:
    """Decorator adding ``fn(cfg) -> dict`` to :data:`REGISTRY` under ``name``.

    ``fn`` returns a dict with keys ``sizes``, ``timings`` (list of :class:`Measurement`), and optionally
    ``memory``, ``ratios`` (list of :class:`Ratio`), ``derived`` (seconds computed from the medians) and
    ``extra``.
    """

    def deco(fn: Callable[[Config], dict]) -> Callable[[Config], dict]:
        if name in REGISTRY:
            raise ValueError(f"benchmark case {name!r} registered twice")
        REGISTRY[name] = Case(name, family, description, fn, tuple(requires))
        return fn

    return deco


def _load_cases() -> None:
    for module in CASE_MODULES:
        importlib.import_module(module)


def select(only: Sequence[str] | None = None) -> list[Case]:
    """Cases whose name or family is in ``only`` (all when ``None``); unknown names raise ValueError."""
    _load_cases()
    cases = list(REGISTRY.values())
    if not only:
        return cases
    wanted = [w for item in only for w in item.split(",") if w]
    known = {c.name for c in cases} | {c.family for c in cases}
    unknown = [w for w in wanted if w not in known]
    if unknown:
        raise ValueError(f"unknown benchmark case(s) {unknown}; known cases and families: {sorted(known)}")
    return [c for c in cases if c.name in wanted or c.family in wanted]


# --------------------------------------------------------------------------------------- timing


def _block(x: Any) -> Any:
    import jax

    return jax.block_until_ready(x)


def aot_compile(fn: Callable, *args: Any) -> tuple[Callable[[], Any], float]:
    """Compile ``jax.jit(fn)`` ahead of time for ``args``: ``(zero-argument call, compile seconds)``.

    For very slow functions this replaces the warm-up call of :func:`time_group` (pass the seconds in
    its ``precompiled`` argument), so that no full run is spent on compilation.
    """
    import jax

    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    return (lambda: compiled(*args)), time.perf_counter() - t0


def time_group(
    fns: dict[str, Callable[[], Any]], cfg: Config, precompiled: dict[str, float] | None = None
) -> list[Measurement]:
    """Time zero-argument functions side by side (see the module docstring for the protocol).

    ``precompiled`` maps labels of functions compiled ahead of time (:func:`aot_compile`) to their compile
    seconds; those skip the warm-up call.
    """
    precompiled = precompiled or {}
    first, number, rounds = {}, {}, {}
    for label, fn in fns.items():
        t0 = time.perf_counter()
        _block(fn())
        once = time.perf_counter() - t0
        if label in precompiled:
            first[label] = precompiled[label] + once
        else:
            first[label] = once
            t0 = time.perf_counter()
            _block(fn())
            once = time.perf_counter() - t0
        number[label] = max(1, min(10_000, math.ceil(cfg.min_time / max(once, 1e-7))))
        # A slow function's calibration call already is a full round: keep it (saves one slow call).
        rounds[label] = [once] if number[label] == 1 else []
    labels = list(fns)
    for r in range(cfg.repeats):
        # Every other round runs the functions in reverse order: a function timed right after a heavy
        # one (cold caches, an idle thread pool waking up) is not always the same function.
        for label in labels if r % 2 == 0 else labels[::-1]:
            fn = fns[label]
            if len(rounds[label]) >= cfg.repeats:
                continue
            k = number[label]
            t0 = time.perf_counter()
            for _ in range(k):
                out = fn()
            _block(out)
            rounds[label].append((time.perf_counter() - t0) / k)
    out = []
    for label in fns:
        ts = rounds[label]
        med = statistics.median(ts)
        compile_s = precompiled.get(label, max(first[label] - med, 0.0))
        out.append(
            Measurement(label, med, min(ts), max(ts), tuple(ts), number[label], first[label], compile_s)
        )
    return out


def ratio(
    name: str,
    num: str,
    den: str,
    metrics: dict[str, float],
    *,
    target: float | None = None,
    op: str | None = None,
    kind: str = "time",
    note: str = "",
) -> Ratio:
    """A :class:`Ratio` ``metrics[num] / metrics[den]`` checked against ``op target``."""
    value = metrics[num] / metrics[den]
    if (target is None) != (op is None) or op not in (None, ">=", "<="):
        raise ValueError(f"ratio {name!r}: target and op ('>=' or '<=') go together, got {target!r}, {op!r}")
    passed = None if op is None else (value >= target if op == ">=" else value <= target)
    return Ratio(name, num, den, kind, float(value), target, op, passed, note)


def loglog_slope(x: Sequence[float], y: Sequence[float]) -> float:
    """Least-squares slope of ``log y`` against ``log x``."""
    lx = [math.log(v) for v in x]
    ly = [math.log(v) for v in y]
    mx, my = statistics.fmean(lx), statistics.fmean(ly)
    sxx = sum((a - mx) ** 2 for a in lx)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly, strict=True)) / sxx


# --------------------------------------------------------------------------------------- memory


def peak_memory(target: str, kwargs: dict, timeout: float = 600.0) -> dict:
    """Peak memory of one call of ``target`` (``"module:function"``) in a fresh Python process.

    ``function(**kwargs)`` must return a zero-argument callable (the setup runs before the baseline is
    read). Returns ``{"peak_bytes", "delta_bytes", "seconds", "source"}`` where ``delta_bytes`` is how
    much the call raised the process's high-water mark.
    """
    env = dict(os.environ)
    env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks._worker", target, json.dumps(kwargs)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=root,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(
            f"memory worker for {target} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}"
        )
    return json.loads(lines[-1])


# --------------------------------------------------------------------------------------- running


def _result_from(case: Case, out: dict, wall: float) -> CaseResult:
    derived = dict(out.get("derived", {}))
    return CaseResult(
        case.name,
        case.family,
        case.description,
        "ok",
        "",
        dict(out.get("sizes", {})),
        tuple(out.get("timings", ())),
        dict(out.get("memory", {})),
        tuple(_unjudged_if_derived(q, derived) for q in out.get("ratios", ())),
        dict(out.get("extra", {})),
        wall,
        derived,
    )


def _unjudged_if_derived(q: Ratio, derived: dict) -> Ratio:
    """A ratio of a number that was computed, not measured (an extrapolation) is never a PASS or MISS."""
    if q.num not in derived and q.den not in derived:
        return q
    note = q.note if q.note.startswith("extrapolated") else f"extrapolated; {q.note}".rstrip("; ")
    return q._replace(passed=None, note=note)


def misses(results: Sequence[CaseResult]) -> list[str]:
    """Names of every judged ratio or slope that missed its target, as ``case: ratio``."""
    out = []
    for r in results:
        out += [f"{r.name}: {q.name}" for q in r.ratios if q.passed is False]
        out += [f"{r.name}: {sl['name']}" for sl in r.extra.get("slopes", ()) if sl.get("passed") is False]
    return out


def run_case(case: Case, cfg: Config) -> CaseResult:
    """Run one case (skipped if its library names are missing, ``error`` if it raises)."""
    reason = case.missing()
    if reason is not None:
        return CaseResult(
            case.name, case.family, case.description, "skipped", reason, {}, (), {}, (), {}, 0.0
        )
    import jax

    jax.clear_caches()  # so compile times are measured afresh in every case
    t0 = time.perf_counter()
    try:
        out = case.fn(cfg)
    except Exception as e:  # a broken case must not hide the others; it is reported as an error
        tb = traceback.format_exc(limit=6)
        return CaseResult(
            case.name,
            case.family,
            case.description,
            "error",
            f"{type(e).__name__}: {e}\n{tb}",
            {},
            (),
            {},
            (),
            {},
            time.perf_counter() - t0,
        )
    return _result_from(case, out, time.perf_counter() - t0)


def run(
    cfg: Config, only: Sequence[str] | None = None, log: Callable[[str], None] | None = None
) -> list[CaseResult]:
    """Run the selected cases in registration order."""
    results = []
    for case in select(only):
        if log:
            log(f"== {case.name} ...")
        res = run_case(case, cfg)
        if log:
            extra = f" ({res.reason.splitlines()[0]})" if res.reason else ""
            log(f"   {res.status} in {res.wall_s:.1f} s{extra}")
        results.append(res)
    return results
