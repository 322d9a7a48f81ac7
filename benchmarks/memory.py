"""Memory: resident size after opening a very long run.

Each measure runs in a fresh child process that opens a run file through
the full read → model → detect pipeline and reports its RSS (and the peak
of the helper process that shares a long backlog's decoding). The baseline,
in the same run, is the same child opening a 100-step run: what Python,
numpy and lossmon cost before any data. Target: under 150 MB for 10,000,000
steps. Usage: python benchmarks/memory.py [--steps N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import bench_dir, emit, machine, write_run  # noqa: E402

CHILD = """
import json, resource, sys, time
sys.path.insert(0, {here!r})
from _common import rss_mb
from lossmon.monitor import Monitor
start = time.perf_counter()
monitor = Monitor([{path!r}])
monitor.read_to_end()
elapsed = time.perf_counter() - start
peak = 0.0
with open("/proc/self/status") as status:
    for line in status:
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1]) / 1024
helper = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the backlog helper, if one ran
points = sum(len(s) for run in monitor.store.runs.values() for s in list(run.batch.values()) + list(run.epoch.values()))
print(json.dumps({{"rss_mb": rss_mb(), "peak_rss_mb": peak, "helper_peak_rss_mb": helper, "records": monitor.records, "seconds": elapsed,
                  "alerts": len(monitor.engine.alerts), "points_kept": points}}))
"""


def measure(path: Path) -> dict:
    code = CHILD.format(here=str(HERE), path=str(path))
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=10_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the generated run file")
    args = parser.parse_args()
    out = bench_dir()
    small = write_run(out / "memory-100.jsonl", 100)
    t0 = time.perf_counter()
    big = write_run(out / f"memory-{args.steps}.jsonl", args.steps)
    generated = time.perf_counter() - t0
    size_mb = os.path.getsize(big) / 1e6
    baseline = measure(small)
    result = measure(big)
    if not args.keep and args.steps >= 5_000_000:
        big.unlink()
        big.with_suffix(big.suffix + ".done").unlink()
    emit({
        "benchmark": "memory",
        "steps": args.steps,
        "file_mb": round(size_mb, 1),
        "rss_mb": round(result["rss_mb"], 1),
        "peak_rss_mb": round(result["peak_rss_mb"], 1),
        "helper_peak_rss_mb": round(result["helper_peak_rss_mb"], 1),  # a second process while the backlog is read
        "baseline_rss_mb_100_steps": round(baseline["rss_mb"], 1),
        "growth_mb": round(result["rss_mb"] - baseline["rss_mb"], 1),
        "points_kept": result["points_kept"],
        "records": result["records"],
        "alerts": result["alerts"],
        "open_seconds": round(result["seconds"], 1),
        "generate_seconds": round(generated, 1),
        "target_rss_mb": 150,
        **machine(),
    })


if __name__ == "__main__":
    main()
