"""Peak-memory worker: ``python -m benchmarks._worker module:function '{"kw": ...}'``.

``function(**kwargs)`` does the setup (inputs, params) and returns a zero-argument callable. The worker
reads the current resident set size after the setup, calls the function once (trace, compile and run,
then ``block_until_ready``) and prints one JSON line with the process's peak RSS (``VmHWM`` on Linux) and
its growth above the pre-call RSS (``delta_bytes``: the memory this call needed).
On accelerators (where host RSS says nothing about device memory) it reports the device's
``peak_bytes_in_use`` instead.
"""

from __future__ import annotations

import importlib
import json
import resource
import sys
import time


def _rss_peak_bytes() -> int:
    """Peak RSS of this process image.

    On Linux this is ``VmHWM`` from ``/proc/self/status`` (the high-water mark of the current address
    space), not ``ru_maxrss``: the latter is inherited across ``fork``/``exec``, so a worker started by a
    big parent would report the parent's peak.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB elsewhere
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def _rss_now_bytes() -> int:
    """Current resident set size (Linux ``/proc/self/statm``); falls back to the peak elsewhere."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize()
    except OSError:
        return _rss_peak_bytes()


def main(argv: list[str]) -> None:
    target, kwargs = argv[0], json.loads(argv[1]) if len(argv) > 1 else {}
    module, name = target.split(":")
    import jax

    thunk = getattr(importlib.import_module(module), name)(**kwargs)
    device = jax.devices()[0]
    stats = device.memory_stats() if device.platform != "cpu" else None
    before = stats["bytes_in_use"] if stats else _rss_now_bytes()
    t0 = time.perf_counter()
    jax.block_until_ready(thunk())
    seconds = time.perf_counter() - t0
    if stats:
        peak, source = device.memory_stats()["peak_bytes_in_use"], f"{device.platform} peak_bytes_in_use"
    else:
        peak, source = _rss_peak_bytes(), "host peak RSS"
    print(
        json.dumps({"peak_bytes": peak, "delta_bytes": peak - before, "seconds": seconds, "source": source})
    )


if __name__ == "__main__":
    main(sys.argv[1:])
