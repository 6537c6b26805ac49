"""Command line: ``python -m benchmarks [--quick] [--strict] [--only NAME[,NAME]] [--repeats N] [--output PATH]``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from . import RESULTS_DIR, Config, from_json, markdown_tables, misses, run, select, write_json


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: proves the suite works (CI)")
    parser.add_argument(
        "--strict",
        action="store_true",
        help="exit non-zero when any judged target is missed (with --quick: only errors count, "
        "since tiny sizes judge nothing)",
    )
    parser.add_argument(
        "--only", action="append", metavar="NAME", help="case or family name (repeatable, or a,b)"
    )
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds per function (default 5)")
    parser.add_argument("--min-time", type=float, default=None, help="seconds per timed round (default 0.05)")
    parser.add_argument(
        "--no-memory", action="store_true", help="skip the subprocess peak-memory measurements"
    )
    parser.add_argument("--output", type=Path, default=None, help="JSON results path")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument(
        "--table", type=Path, metavar="JSON", help="print the tables of a stored run and exit"
    )
    args = parser.parse_args(argv)

    if args.table is not None:
        data = json.loads(args.table.read_text())
        m = data["machine"]
        print(
            f"{m['date']}: {m['cpu_count']} × {m['cpu']}, {m['platform']}, JAX {m['jax']} ({m['backend']})\n"
        )
        print(markdown_tables(from_json(data)))
        return 0
    if args.list:
        for case in select(None):
            missing = case.missing()
            print(
                f"{case.name:24s} [{case.family}] {case.description}"
                + (f"  (skipped: {missing})" if missing else "")
            )
        return 0
    repeats = args.repeats if args.repeats is not None else 5
    if repeats < 1:
        parser.error("--repeats must be >= 1")
    min_time = args.min_time if args.min_time is not None else (0.002 if args.quick else 0.05)
    cfg = Config(quick=args.quick, repeats=repeats, min_time=min_time, memory=not args.no_memory)
    if args.output is not None:
        output = args.output
    elif args.quick:
        output = RESULTS_DIR / "quick.json"
    elif args.only:
        output = RESULTS_DIR / "partial.json"
    else:
        output = RESULTS_DIR / "latest.json"

    t0 = time.perf_counter()
    results = run(cfg, args.only, log=lambda s: print(s, file=sys.stderr, flush=True))
    wall = time.perf_counter() - t0
    if cfg.quick:
        print("Quick mode: tiny sizes that only prove the suite runs; its ratios mean nothing.\n")
    print(markdown_tables(results))
    path = write_json(results, cfg, output)
    print(f"\n{len(results)} cases in {wall:.1f} s; results written to {path}", file=sys.stderr)
    if any(r.status == "error" for r in results):
        return 1
    missed = [] if cfg.quick else misses(results)
    if args.strict and missed:
        print(f"--strict: {len(missed)} target(s) missed: " + "; ".join(missed), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
