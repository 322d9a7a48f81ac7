"""Shared helpers for the benchmarks: synthetic run files and measurements.

The run files look like what LossmonCallback writes for a long, healthy
run (a header, a batch record per step, an epoch record every
`steps_per_epoch` steps), so every stage of the pipeline does its real work.
"""

from __future__ import annotations

import json
import math
import os
import platform
import random
import time
from pathlib import Path
from typing import Any, Iterator

from lossmon.format import encode

RUN = "20261122-170512-3fa9"


def header(steps_per_epoch: int, epochs: int) -> dict[str, Any]:
    return {
        "kind": "header", "run": RUN, "step": 0, "format": 1, "start_time": 1.8e9, "host": "bench", "pid": 1,
        "optimizer": {"class": "Adam", "learning_rate": 0.001}, "loss": "binary_crossentropy",
        "metrics": ["accuracy"], "epochs": epochs, "steps_per_epoch": steps_per_epoch, "batch_size": 32,
    }


def records(n: int, steps_per_epoch: int = 1000, seed: int = 0, diverge_at: int | None = None) -> Iterator[dict[str, Any]]:
    """A header and `n` batch records (epoch records in between, not counted
    in n); the loss decays with noise, and climbs from `diverge_at` on."""
    rng = random.Random(seed)
    yield header(steps_per_epoch, math.ceil(n / steps_per_epoch))
    for step in range(1, n + 1):
        record = batch_record(step, steps_per_epoch, rng, diverge_at)
        yield record
        loss, acc, t, epoch = record["logs"]["loss"], record["logs"]["accuracy"], record["time"], record["epoch"]
        if record["batch"] == steps_per_epoch - 1:
            yield {"kind": "epoch", "run": RUN, "step": step, "epoch": epoch, "time": round(t, 3),
                   "logs": {"loss": round(loss, 6), "accuracy": round(acc, 6),
                            "val_loss": round(loss * 1.1, 6), "val_accuracy": round(acc * 0.98, 6)},
                   "lr": 0.001}


def batch_record(step: int, steps_per_epoch: int = 1000, rng: random.Random | None = None,
                 diverge_at: int | None = None) -> dict[str, Any]:
    """The batch record of `step` in a synthetic run: a loss that decays with
    noise (and climbs from `diverge_at` on), 0.01 s per step."""
    epoch, batch = divmod(step - 1, steps_per_epoch)
    loss = 0.7 * math.exp(-step / 50000) + 0.05 + (rng or random).gauss(0, 0.01)
    if diverge_at is not None and step >= diverge_at:
        loss *= 1.05 ** min(step - diverge_at, 400)
    acc = 1 - loss / 1.4
    logs = {"loss": round(loss, 6), "accuracy": round(acc, 6)}
    return {"kind": "batch", "run": RUN, "step": step, "epoch": epoch, "batch": batch,
            "time": round(1.8e9 + 0.01 * step, 3), "logs": logs, "step_logs": dict(logs)}


def write_run(path: Path, n: int, **kwargs: Any) -> Path:
    """Write a run of n batch records to `path` (reused when already there)."""
    marker = path.with_suffix(path.suffix + ".done")
    if marker.exists() and path.exists():
        return path
    with open(path, "wb", buffering=8 * 1024 * 1024) as handle:
        chunk = []
        for record in records(n, **kwargs):
            chunk.append(encode(record))
            if len(chunk) >= 10000:
                handle.write(b"".join(chunk))
                chunk.clear()
        handle.write(b"".join(chunk))
    marker.write_text("ok")
    return path


def rss_mb(pid: int | str = "self") -> float:
    """Resident set size in MB, from /proc."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return math.nan


def cpu_seconds(pid: int | str = "self") -> float:
    """User + system CPU time of a process (all threads), from /proc."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def machine() -> dict[str, Any]:
    return {"python": platform.python_version(), "cpus": os.cpu_count(), "machine": platform.machine()}


def median(values: list[float]) -> float:
    values = sorted(values)
    n = len(values)
    if not n:
        return math.nan
    return values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2


def timed(fn, *args: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


def emit(result: dict[str, Any]) -> None:
    """The benchmark's figures, as one JSON object on the last line."""
    print(json.dumps(result, sort_keys=False))


def bench_dir() -> Path:
    """Where benchmark data goes (BENCH_DIR, default /tmp/lossmon-bench)."""
    path = Path(os.environ.get("BENCH_DIR", "/tmp/lossmon-bench"))
    path.mkdir(parents=True, exist_ok=True)
    return path
