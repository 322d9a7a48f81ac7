"""NaN or infinite values anywhere: inputs, labels, weights, gradients, metrics.

Once the loss is NaN every later step is wasted: the weights are NaN too and
training cannot recover on its own. So there is no threshold and no
smoothing here: one non-finite value is enough. The loss is not the only
place it shows: NaN inputs can make NaN weights whose outputs a ReLU turns
into zeros, so the loss stays finite while the model is corrupt. The
header's data summary and the probes see that, and it is the same problem:
one alert, which says where the non-finite values first appeared.
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np

from lossmon.block import BatchBlock
from lossmon.detect.base import Clear, Detector, Finding, Severity, Verdict
from lossmon.detectors._util import (
    CAUSES,
    LOWER,
    RunInfo,
    epoch_label,
    finite,
    fmt,
    lr_advice,
    sentence,
)
from lossmon.detectors._probe import header_data
from lossmon.format import BATCH, EPOCH, HEADER, PROBE, Record, json_number, json_safe

# Where non-finite values can first appear, by a probe value's name.
_PROBE_PLACES = (("weight_norm/", "weights"), ("update_ratio/", "weights"), ("grad", "gradients"), ("kernel_grad", "gradients"),
                 ("act_", "activations"), ("probe_loss", "probe loss"), ("accuracy", "predictions"),
                 ("min_recall", "predictions"), ("majority_pred_fraction", "predictions"))


class NonFinite(Detector):
    """Any value is NaN or +/-inf: CRITICAL. Read in the header's summary of
    the probe sample (inputs, labels), in probe records (weights, gradients,
    activations, probe loss) and in every metric of batch and epoch records.

    The usual causes are a learning rate far too high (weights overflow),
    bad inputs (a NaN or inf in the data), or a custom loss taking log(0) or
    dividing by zero. The finding clears at the next record whose values are
    all finite again (rare, but it happens when only a validation metric or
    a single batch was hit).

    Options:
        monitor: the training-loss key whose last finite value is reported.
        ignore: metric names never checked (a custom metric that is
            legitimately infinite, say).
    """

    id = "nonfinite"
    title = "NaN / inf values"
    kinds = frozenset({HEADER, BATCH, EPOCH, PROBE})
    defers_to = CAUSES["nonfinite"]

    def __init__(self, monitor: str = "loss", ignore: Iterable[str] = ()) -> None:
        self.monitor = monitor
        self.ignore = frozenset(ignore) if not isinstance(ignore, str) else frozenset([ignore])
        self.info = RunInfo()
        self._last_finite: float | None = None
        self._last_finite_step: int | None = None
        self._since: int | None = None  # step of the first bad record of this episode
        self._data: dict[str, int] = {}  # "inputs"/"labels" -> NaN/inf count in the header's sample
        self._probe: dict[str, float] = {}  # the latest probe's non-finite values
        self._first: dict[str, object] | None = None  # where this episode's values first went bad

    def observe(self, record: Record) -> list[Verdict]:
        self.info.update(record)
        if record.kind == HEADER:
            return self._observe_header(record)
        if record.kind == PROBE:
            return self._observe_probe(record)
        if record.kind not in (BATCH, EPOCH):
            return []
        bad = {
            name: value
            for name, value in record.values.items()
            if name not in self.ignore and isinstance(value, float) and not math.isfinite(value)
        }
        loss = finite(record.values.get(self.monitor))
        if loss is not None:
            self._last_finite, self._last_finite_step = loss, record.step
        if bad:
            return [self._finding(record, bad)]
        return self._clear() if record.values else []

    def observe_block(self, block: BatchBlock) -> list[tuple[int, Verdict]]:
        """Bad rows come in episodes: a Finding where each starts and where it
        ends (or the block ends), a Clear at the first good row after it."""
        if not block.names:
            return []
        names = sorted(block.names - self.ignore)
        columns = {name: block.column(name) for name in names}
        bad = np.zeros(len(block), dtype=bool)
        for column in columns.values():
            bad |= ~np.isfinite(column)
        monitor = block.column(self.monitor)
        verdicts: list[tuple[int, Verdict]] = []
        row = 0
        for start, stop in _episodes(bad):
            if start > row:  # good rows before this episode
                verdicts += [(row, v) for v in self._clear()]
            for at in sorted({start, stop - 1}):
                self._note_last_finite(block, monitor, at)
                record = block.record(at)
                verdicts.append((at, self._finding(record, {n: float(columns[n][at]) for n in names if not math.isfinite(columns[n][at])})))
            row = stop
        if row < len(block):
            verdicts += [(row, v) for v in self._clear()]
        self._note_last_finite(block, monitor, len(block) - 1)
        return verdicts

    def _note_last_finite(self, block: BatchBlock, monitor: np.ndarray | None, row: int) -> None:
        """Remembers the last finite `monitor` value at or before `row`, if any."""
        if monitor is None:
            return
        if math.isfinite(monitor[row]):
            at = row  # the usual case: no search
        else:
            good = np.flatnonzero(np.isfinite(monitor[: row + 1]))
            if not len(good):
                return
            at = int(good[-1])
        self._last_finite, self._last_finite_step = float(monitor[at]), int(block.steps[at])

    def _observe_header(self, record: Record) -> list[Verdict]:
        """A new run: NaN/inf in the sample of its inputs or labels holds for
        the whole run (the data does not change)."""
        self._data = {}
        for part in ("inputs", "labels"):
            count = header_data(record, part).get("nonfinite")
            if isinstance(count, int) and not isinstance(count, bool) and count > 0:
                self._data[part] = count
        if not self._data:
            return []
        return [self._finding(record, {})]

    def _observe_probe(self, record: Record) -> list[Verdict]:
        self._probe = {
            name: value
            for name, value in record.values.items()
            if name not in self.ignore and isinstance(value, float) and not math.isfinite(value)
        }
        if self._probe:
            return [self._finding(record, {})]
        return self._clear()

    def _clear(self) -> list[Verdict]:
        """Clear once no source is bad: a finite batch does not undo NaN
        inputs or NaN weights."""
        if self._data or self._probe:
            return []
        if self._since is None:
            return []
        self._since = self._first = None
        return [Clear()]

    def _where(self, record: Record, bad: dict[str, float]) -> tuple[str, str]:
        """(place, sentence) for the non-finite values this record shows."""
        if self._data and record.kind == HEADER:
            shown = " and ".join(f"{n} NaN/inf value{'s' if n != 1 else ''} in the {part}" for part, n in self._data.items())
            return "inputs" if "inputs" in self._data else "labels", f"{shown} of the probe sample at train begin"
        if record.kind == PROBE and self._probe:
            places: dict[str, list[str]] = {}
            for name in sorted(self._probe):
                place = next((p for prefix, p in _PROBE_PLACES if name.startswith(prefix)), "probe values")
                layer = name.split("/", 1)[1] if "/" in name else None
                places.setdefault(place, [])
                if layer and layer not in places[place]:
                    places[place].append(layer)
            order = ["weights", "gradients", "activations", "probe loss", "predictions", "probe values"]
            first = min(places, key=order.index)
            parts = [f"{p} ({', '.join(layers[:3])}{', ...' if len(layers) > 3 else ''})" if layers else p
                     for p, layers in sorted(places.items(), key=lambda kv: order.index(kv[0]))]
            return first, f"NaN/inf {', '.join(parts)} on the probe batch at step {record.step}"
        shown = ", ".join(f"{name}={json_number(bad[name])}" for name in sorted(bad))
        where = f"step {record.step}"
        if record.kind == EPOCH:
            where += f" (end of epoch {epoch_label(record.epoch)})"
        elif record.epoch is not None:
            where += f" (epoch {epoch_label(record.epoch)})"
        return "metrics", f"non-finite {shown} at {where}"

    def _finding(self, record: Record, bad: dict[str, float]) -> Finding:
        if self._since is None:
            self._since = record.step
        place, sentence = self._where(record, bad)
        if self._first is None:
            self._first = {"where": place, "step": record.step, "what": sentence}
        names = sorted(bad) if bad else sorted(self._probe) if record.kind == PROBE else sorted(self._data)
        if self._first["what"] != sentence:
            sentence = f"first {self._first['what']}; now {sentence}"
        message = f"{sentence}; last finite {self.monitor} {fmt(self._last_finite)}"
        evidence = {
            "metrics": names,
            "values": {name: json_number(bad[name]) for name in sorted(bad)},
            "step": record.step,
            "epoch": record.epoch,
            "record": record.kind,
            "since_step": self._since,
            "first_seen": dict(self._first),
            "last_finite_loss": self._last_finite,
            "last_finite_step": self._last_finite_step,
        }
        if self._data:
            evidence["data"] = dict(self._data)
        if self._probe:
            evidence["probe"] = {name: json_number(v) for name, v in sorted(self._probe.items())[:20]}
        evidence.update(self.info.optimizer_evidence())
        return Finding(Severity.CRITICAL, message, self._hint(names, str(self._first["where"])), json_safe(evidence))

    def _hint(self, names: list[str], first: str) -> str:
        if first in ("inputs", "labels"):
            return (
                f"The {first} hold NaN/inf values: clean the data before fit "
                f"(np.isfinite(x).all() and np.isfinite(y).all() must hold): impute missing values "
                "(sklearn's SimpleImputer) or drop those rows. One NaN input makes NaN weights at its "
                "first step, and every prediction after that is garbage even where the loss looks finite."
            )
        if names and all(name.startswith("val_") for name in names):
            return (
                "Only validation metrics are non-finite: check the validation data "
                "for NaN/inf (np.isfinite(x_val).all()) and that it is not empty; "
                "if the weights blew up the training loss will follow, so lower the "
                "learning rate and add clipnorm=1.0."
            )
        steps = [lr_advice(self.info, LOWER)]
        steps.append("add gradient clipping (clipnorm=1.0 in the optimizer)")
        steps.append("check the inputs and labels for NaN/inf (np.isfinite(x).all())")
        steps.append("guard log() and division in a custom loss with a small epsilon")
        return (
            sentence(*steps)
            + " keras.callbacks.TerminateOnNaN() stops a run at the first NaN loss "
            "instead of training on NaN weights."
        )


def _episodes(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of each run of True in `mask`."""
    if not mask.any():
        return []  # the usual block
    edges = np.flatnonzero(np.diff(np.concatenate(([0], mask.view(np.int8), [0]))))
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist()))
