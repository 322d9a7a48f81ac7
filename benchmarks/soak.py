"""Soak: a local writer appends 1,000 records/s for 10 minutes while the
watcher runs; memory must stay under its bound and no lag may build up.

The writer is a child process using RunFileWriter (as the callback does).
The watcher is the reader loop of `lossmon watch` — FileWatcher wakes it,
Monitor reads into the model and the detectors — in this process. Every few
seconds the lag (records in the file not yet in the model) and the RSS are
sampled. The loop is bounded in both count and time. The baseline, in the
same run, is the RSS right after start-up and the first sample's lag.
Usage: python benchmarks/soak.py [--seconds 600] [--rate 1000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import bench_dir, emit, machine, rss_mb  # noqa: E402
from lossmon.monitor import Monitor  # noqa: E402
from lossmon.read import FileWatcher  # noqa: E402

WRITER = """
import math, random, sys, time
from lossmon.record import RunFileWriter
path, rate, seconds = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
total = int(rate * seconds)
writer = RunFileWriter(path)
writer.write({"kind": "header", "run": "soak", "step": 0, "format": 1, "epochs": 1000, "steps_per_epoch": 1000})
rng = random.Random(0)
start = time.monotonic()
sent = 0
while sent < total and time.monotonic() - start < seconds + 60:
    due = min(total, int((time.monotonic() - start) * rate))
    while sent < due:
        sent += 1
        loss = 0.7 * math.exp(-sent / 200000) + 0.05 + rng.gauss(0, 0.01)
        writer.write({"kind": "batch", "run": "soak", "step": sent, "epoch": sent // 1000, "batch": sent % 1000,
                      "time": time.time(), "logs": {"loss": loss, "accuracy": 0.8}, "step_logs": {"loss": loss, "accuracy": 0.8}})
        if sent % 1000 == 0:
            writer.write({"kind": "epoch", "run": "soak", "step": sent, "epoch": sent // 1000 - 1, "time": time.time(),
                          "logs": {"loss": loss, "val_loss": loss * 1.1, "accuracy": 0.8, "val_accuracy": 0.78}, "lr": 0.001})
    time.sleep(0.002)
print(sent)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--sample-every", type=float, default=5.0)
    args = parser.parse_args()
    directory = bench_dir() / "soak"
    directory.mkdir(exist_ok=True)
    path = directory / "run.jsonl"
    path.unlink(missing_ok=True)
    path.touch()

    monitor = Monitor([path])
    stop = threading.Event()
    watcher = FileWatcher(path, poll_interval=2.0)

    modes = []

    def reader() -> None:  # the loop of WatchApp.read_files, without a screen
        with watcher:
            modes.append(watcher.mode)
            while not stop.is_set():
                if monitor.poll().more:
                    continue
                watcher.wait(2.0)

    rss_start = rss_mb()
    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(args.rate), str(args.seconds)],
                              stdout=subprocess.PIPE, text=True)
    samples = []
    started = time.monotonic()
    max_samples = int(args.seconds / args.sample_every) + 30
    while writer.poll() is None and len(samples) < max_samples:
        time.sleep(args.sample_every)
        with open(path, "rb") as handle:
            in_file = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
        samples.append((time.monotonic() - started, in_file - monitor.records, rss_mb()))
    sent = int((writer.communicate(timeout=120)[0] or "0").strip() or 0)
    deadline = time.monotonic() + 30
    lines = sum(1 for _ in open(path, "rb"))
    while monitor.records < lines and time.monotonic() < deadline:
        time.sleep(0.05)
    caught_up = time.monotonic() - (deadline - 30)
    stop.set()
    watcher.stop()
    thread.join(5)
    lags = [lag for _, lag, _ in samples]
    rss = [r for _, _, r in samples]
    half = len(samples) // 2
    emit({
        "benchmark": "soak",
        "seconds": args.seconds,
        "rate_per_s": args.rate,
        "records_written": sent,
        "lines_in_file": lines,
        "records_read": monitor.records,
        "malformed": monitor.malformed,
        "mode": modes[0] if modes else None,
        "samples": len(samples),
        "lag_max_records": max(lags) if lags else None,
        "lag_median_first_half": sorted(lags[:half])[half // 2] if half else None,
        "lag_median_second_half": sorted(lags[half:])[(len(lags) - half) // 2] if lags else None,
        "catch_up_after_writer_s": round(caught_up, 2),
        "rss_start_mb": round(rss_start, 1),
        "rss_max_mb": round(max(rss), 1) if rss else None,
        "rss_end_mb": round(rss[-1], 1) if rss else None,
        "rss_bound_mb": 150,
        "cpu_seconds_reader_process": round(os.times().user + os.times().system, 1),
        **machine(),
    })


if __name__ == "__main__":
    main()
