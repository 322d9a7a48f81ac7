"""Builders for run-file records, so tests speak in runs, not in JSON."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable

from lossmon.format import encode, json_number


def header(run: str = "r1", lr: float = 0.001, optimizer: str = "Adam", epochs: int = 10, steps: int = 10) -> dict:
    return {
        "kind": "header",
        "run": run,
        "step": 0,
        "format": 1,
        "start_time": 1000.0,
        "optimizer": {"class": optimizer, "learning_rate": lr},
        "loss": "binary_crossentropy",
        "metrics": ["accuracy"],
        "epochs": epochs,
        "steps_per_epoch": steps,
    }


def batch(step: int, loss: float, run: str = "r1", steps_per_epoch: int = 10, **more: float) -> dict:
    values = {"loss": json_number(loss), **{k: json_number(v) for k, v in more.items()}}
    return {
        "kind": "batch",
        "run": run,
        "step": step,
        "epoch": (step - 1) // steps_per_epoch,
        "batch": (step - 1) % steps_per_epoch,
        "time": 1000.0 + step * 0.1,
        "logs": values,
        "step_logs": values,
    }


def epoch(index: int, loss: float, val_loss: float | None = None, run: str = "r1", steps_per_epoch: int = 10, **more: float) -> dict:
    logs = {"loss": json_number(loss), **{k: json_number(v) for k, v in more.items()}}
    if val_loss is not None:
        logs["val_loss"] = json_number(val_loss)
    step = (index + 1) * steps_per_epoch
    return {"kind": "epoch", "run": run, "step": step, "epoch": index, "time": 1000.0 + step * 0.1, "logs": logs, "lr": 0.001}


def end(step: int, run: str = "r1", status: str = "completed") -> dict:
    return {"kind": "end", "run": run, "step": step, "epoch": 0, "time": 2000.0, "status": status}


def training(losses: Iterable[float], run: str = "r1", steps_per_epoch: int = 10, val: Iterable[float] | None = None, lr: float = 0.001, finished: bool = True) -> list[dict]:
    """A whole run: header, a batch record per loss, epoch records, end."""
    losses = list(losses)
    vals = list(val) if val is not None else None
    out = [header(run, lr=lr, steps=steps_per_epoch, epochs=math.ceil(len(losses) / steps_per_epoch))]
    for i, loss in enumerate(losses, start=1):
        out.append(batch(i, loss, run, steps_per_epoch, accuracy=0.5))
        if i % steps_per_epoch == 0:
            e = i // steps_per_epoch - 1
            chunk = [v for v in losses[i - steps_per_epoch : i] if math.isfinite(v)]
            mean = sum(chunk) / len(chunk) if len(chunk) == steps_per_epoch else math.nan
            out.append(epoch(e, mean, vals[e] if vals and e < len(vals) else None, run, steps_per_epoch, accuracy=0.5, val_accuracy=0.5))
    if finished:
        out.append(end(len(losses), run))
    return out


def write(path: Path, records: Iterable[dict], mode: str = "ab") -> Path:
    with open(path, mode) as handle:
        for record in records:
            handle.write(encode(record))
    return path
