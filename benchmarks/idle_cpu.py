"""Idle cost: CPU used by a running `lossmon watch` with no new data, and with
a run appending 100 records/s.

The watcher is the real WatchApp, run headless in a child process (Textual's
headless mode draws to no terminal but does all the work of a frame); its CPU
time is read from /proc. The baseline, in the same run, is an empty Textual
app run the same way: the framework's own idle floor. Targets: < 0.5% of a
core idle, < 5% at 100 records/s. Usage: python benchmarks/idle_cpu.py [--seconds S]
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import batch_record, bench_dir, cpu_seconds, emit, machine, records  # noqa: E402
from lossmon.record import RunFileWriter  # noqa: E402

WATCH = """
import sys
from lossmon.show.app import WatchApp
WatchApp([sys.argv[1]]).run(headless=True, size=(160, 48))
"""
EMPTY = """
from textual.app import App
App().run(headless=True, size=(160, 48))
"""


def cpu_share(code: str, args: list[str], seconds: float, settle: float, during=None) -> float:
    """Fraction of one core the child used over `seconds`, after `settle`."""
    child = subprocess.Popen([sys.executable, "-c", code, *args], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(settle)
        if child.poll() is not None:
            raise RuntimeError(f"the child exited early with code {child.returncode}")
        c0, t0 = cpu_seconds(child.pid), time.monotonic()
        if during is None:
            time.sleep(seconds)
        else:
            during(seconds)
        c1, t1 = cpu_seconds(child.pid), time.monotonic()
        return (c1 - c0) / (t1 - t0)
    finally:
        child.terminate()
        try:
            child.wait(5)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=100.0, help="records per second in the busy phase")
    args = parser.parse_args()
    directory = bench_dir() / "idle"
    directory.mkdir(exist_ok=True)
    path = directory / "run.jsonl"
    path.unlink(missing_ok=True)
    writer = RunFileWriter(path)
    for record in records(2000):
        writer.write(record)
    step = 2000
    rng = random.Random(1)

    def append(seconds: float) -> None:
        nonlocal step
        start = time.monotonic()
        sent = 0
        while (now := time.monotonic()) - start < seconds:
            due = int((now - start) * args.rate)
            while sent < due:
                step += 1
                sent += 1
                writer.write({**batch_record(step, rng=rng), "time": time.time()})  # the run going on
            time.sleep(0.005)

    empty = cpu_share(EMPTY, [], args.seconds, settle=3)
    idle = cpu_share(WATCH, [str(path)], args.seconds, settle=8)
    busy = cpu_share(WATCH, [str(path)], args.seconds, settle=8, during=append)
    writer.close()
    emit({
        "benchmark": "idle_cpu",
        "seconds": args.seconds,
        "idle_percent_of_core": round(idle * 100, 2),
        "appending_percent_of_core": round(busy * 100, 2),
        "append_rate_per_s": args.rate,
        "baseline_empty_textual_app_percent": round(empty * 100, 2),
        "target_idle_percent": 0.5,
        "target_appending_percent": 5.0,
        **machine(),
    })


if __name__ == "__main__":
    main()
