"""Ratio-based performance suite for taylorlib: ``python -m benchmarks [--quick] [--only NAME]``.

Every case times a taylorlib function next to its plain-JAX (or numpy) baselines **in the same process**
and reports ratios, because absolute times on a shared 2-core machine are noise while ratios of
interleaved measurements are stable. The machinery here is small:

* :func:`register` adds a case to :data:`REGISTRY` (the extension point: a new case family is a new
  ``bench_<family>.py`` module whose functions are decorated with ``@register(...)``; the module is
  listed in :data:`CASE_MODULES`). A case may declare ``requires=[("taylorlib.mod", "name"), ...]``;
  when a name is missing from that module's ``__all__`` the case is reported as skipped with reason
  ``"module not available"`` instead of failing.
* :func:`time_group` warms up (trace + compile + first run, reported as ``compile_s`` = first call minus
  the steady-state median), then runs the functions round-robin for ``repeats`` rounds, each round
  calling every function ``number`` times (``number`` calibrated so a round lasts at least
  ``Config.min_time`` seconds) and ending with ``jax.block_until_ready``. Medians over rounds are reported.
* :func:`peak_memory` runs one function in a fresh subprocess (``python -m benchmarks._worker``) and
  reports how far that call raised the peak resident set size above the resident set size before it
  (on a GPU/TPU backend the device's ``peak_bytes_in_use`` instead).
* :class:`Ratio` records ``value = metric[num] / metric[den]`` with an optional target; a case's ratios
  are computed from the medians it reports (the tests check exactly that).

Results are :class:`CaseResult` records; :func:`run` returns them and :func:`write_json` stores them with
:func:`machine_info`.
"""

from __future__ import annotations

from ._core import (
    CASE_MODULES,
    REGISTRY,
    RESULTS_DIR,
    SKIP_REASON,
    Case,
    CaseResult,
    Config,
    Measurement,
    Ratio,
    aot_compile,
    loglog_slope,
    misses,
    peak_memory,
    ratio,
    register,
    run,
    run_case,
    select,
    time_group,
)
from ._report import from_json, machine_info, markdown_tables, to_json, write_json

__all__ = [
    "CASE_MODULES",
    "REGISTRY",
    "RESULTS_DIR",
    "SKIP_REASON",
    "Case",
    "CaseResult",
    "Config",
    "Measurement",
    "Ratio",
    "aot_compile",
    "from_json",
    "loglog_slope",
    "machine_info",
    "markdown_tables",
    "misses",
    "peak_memory",
    "ratio",
    "register",
    "run",
    "run_case",
    "select",
    "time_group",
    "to_json",
    "write_json",
]
