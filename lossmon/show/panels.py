"""Which curves each panel shows, picked from the runs' series tables.

Training metrics come per step (batch records) and validation metrics per
epoch; a run without batch records (a CSV log) shows its epoch values.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

from lossmon.model import Run, Series


@dataclass(frozen=True)
class Line:
    """One curve to draw."""

    run: str
    name: str  # metric name, e.g. "val_loss" or "update_ratio/dense"
    series: Series
    per_step: bool  # batch-level (gets epoch boundaries) or epoch-level

    @property
    def label(self) -> str:
        return self.name

    @property
    def is_val(self) -> bool:
        return self.name.startswith("val_")


Picker = Callable[[Run], list[Line]]


def _pick(run: Run, wanted: Callable[[str], bool]) -> list[Line]:
    chosen: list[Line] = []
    for name, series in run.batch.items():
        if wanted(name) and not name.startswith("val_"):
            chosen.append(Line(run.id, name, series, True))
    for name, series in run.epoch.items():
        if wanted(name) and (name.startswith("val_") or name not in run.batch):
            chosen.append(Line(run.id, name, series, False))
    return chosen


def loss_lines(run: Run) -> list[Line]:
    return _pick(run, lambda name: name in ("loss", "val_loss"))


def accuracy_lines(run: Run) -> list[Line]:
    return _pick(run, lambda name: "acc" in name.lower() or name.endswith("auc"))


def other_metric_lines(run: Run) -> list[Line]:
    """Compiled metrics that are neither the loss nor accuracy-like (mae, ...)."""
    def wanted(name: str) -> bool:
        bare = name[4:] if name.startswith("val_") else name
        return bare not in ("loss", "lr", "learning_rate") and "acc" not in bare.lower() and not bare.endswith("auc")

    return _pick(run, wanted)


def lr_lines(run: Run) -> list[Line]:
    return _pick(run, lambda name: name in ("lr", "learning_rate"))


def grad_norm_lines(run: Run) -> list[Line]:
    return [Line(run.id, name, s, True) for name, s in run.probe.items() if name == "grad_norm" or name.startswith("grad_norm/")]


def update_ratio_lines(run: Run) -> list[Line]:
    return [Line(run.id, name, s, True) for name, s in run.probe.items() if name.startswith("update_ratio")]


@dataclass(frozen=True)
class Panel:
    key: str
    title: str
    picker: Picker
    log_by_default: bool = False


PANELS: tuple[Panel, ...] = (
    Panel("loss", "loss", loss_lines),
    Panel("accuracy", "accuracy", accuracy_lines),
    Panel("lr", "learning rate", lr_lines),
    Panel("grad", "gradient norm", grad_norm_lines, log_by_default=True),
    Panel("update", "update ratio", update_ratio_lines, log_by_default=True),
    Panel("metrics", "other metrics", other_metric_lines),
)


def short_labels(run_ids: list[str], width: int = 12) -> dict[str, str]:
    """Short names that still tell runs apart. Short ids stay whole; long
    ones (mostly a timestamp) lose the prefix they share and keep their end."""
    if len(run_ids) < 2 or max(len(run) for run in run_ids) <= width:
        return {run: run for run in run_ids}
    shared = os.path.commonprefix(run_ids)
    rests = [run[len(shared):] or run for run in run_ids]
    short = [rest if len(rest) <= width else "…" + rest[-(width - 1):] for rest in rests]
    if len(set(short)) < len(short):
        return {run: run for run in run_ids}
    return dict(zip(run_ids, short))
