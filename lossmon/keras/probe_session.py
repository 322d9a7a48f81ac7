"""When and on what to probe, for one `fit` call.

Takes the user's `probe_data`, keeps a fixed sample of it, summarises the
inputs and labels for the header, decides at which steps to probe and turns
a failing probe into one warning and a run without probes, never a failed
training.
"""

from __future__ import annotations

import warnings
from typing import Any

import keras
import numpy as np

from lossmon.keras.data_stats import input_stats, label_stats
from lossmon.record.writer import LossmonWarning

DEFAULT_EVERY = 100  # steps between probes; one more at each epoch end
PROBE_ROWS = 256  # rows of the probe batch: the gradient of a few hundred rows is stable enough
STATS_ROWS = 10_000  # rows the input and label summaries look at
SEED = 0

# What is measured, for the header; each can be missing from a run.
MEASURES = {
    "gradients": ["probe_loss", "grad_norm", "grad_first", "grad_last", "grad_ratio", "grad_norm/<layer>"],
    "weights": ["weight_norm/<layer>", "update_ratio/<layer>"],
    "activations": ["dead_fraction/<layer>", "saturated_fraction/<layer>", "act_mean/<layer>", "act_std/<layer>"],
    "predictions": ["accuracy", "min_recall", "majority_pred_fraction"],
}


def split_probe_data(probe_data: Any) -> tuple[Any, Any, Any]:
    """(x, y, sample_weight) from a tuple, or from the first batches of a
    tf.data.Dataset / iterable of such tuples."""
    if isinstance(probe_data, (tuple, list)) and len(probe_data) in (2, 3):
        x, y, *rest = probe_data
        return x, y, (rest[0] if rest else None)
    if hasattr(probe_data, "__iter__") and not isinstance(probe_data, (np.ndarray, dict, str)):
        batches = []
        rows = 0
        for batch in probe_data:
            batches.append(split_probe_data(batch))
            rows += len(np.asarray(keras.tree.flatten(batches[-1][0])[0]))
            if rows >= PROBE_ROWS:
                break
        if not batches:
            raise ValueError("probe_data is empty")
        return tuple(_concat([b[i] for b in batches]) for i in range(3))  # type: ignore[return-value]
    raise ValueError("probe_data must be (x, y), (x, y, sample_weight) or a dataset of such batches")


def _concat(parts: list[Any]) -> Any:
    if parts[0] is None:
        return None
    return keras.tree.map_structure(lambda *a: np.concatenate([np.asarray(p) for p in a]), *parts)


def _take(value: Any, rows: np.ndarray) -> Any:
    if value is None:
        return None
    return keras.tree.map_structure(lambda a: np.asarray(a)[rows], value)


def _sample(n: int, k: int) -> np.ndarray:
    """A fixed, seeded choice of `k` of `n` rows, in order (all when n <= k)."""
    if n <= k:
        return np.arange(n)
    return np.sort(np.random.default_rng(SEED).choice(n, size=k, replace=False))


class ProbeSession:
    """Probe data, schedule and prober of one `fit` call."""

    def __init__(self, probe_data: Any, every: int | None) -> None:
        self.every = int(every) if every else DEFAULT_EVERY
        if self.every < 1:
            raise ValueError("probe_every must be a positive number of steps")
        x, y, sample_weight = split_probe_data(probe_data)
        n = len(np.asarray(keras.tree.flatten(x)[0]))
        stats_rows = _sample(n, STATS_ROWS)
        self.stats_x, self.stats_y = _take(x, stats_rows), _take(y, stats_rows)
        rows = _sample(n, PROBE_ROWS)
        self.x, self.y, self.sample_weight = _take(x, rows), _take(y, rows), _take(sample_weight, rows)
        self.rows = len(rows)
        self.prober: Any = None
        self.enabled = False
        self.reason: str | None = None
        self.last_step: int | None = None
        self.labels: dict[str, Any] = {}

    def header(self, loss: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
        """The header's `data` and `probes` entries."""
        self.labels = label_stats(self.stats_y, loss)
        data = {"inputs": input_stats(self.stats_x), "labels": self.labels}
        backend = keras.backend.backend()
        probes: dict[str, Any] = {"enabled": False, "every": self.every, "rows": self.rows}
        if backend != "tensorflow":
            self.reason = f"gradient, weight and activation probes need the TensorFlow backend; this run uses {backend}"
            probes.update(reason=self.reason, available=[], unavailable=sorted(MEASURES))
        else:
            self.enabled = True
            probes.update(enabled=True, available=sorted(MEASURES), unavailable=[], measures=MEASURES)
            probes["epoch_end"] = True
        return data, probes

    def due(self, step: int) -> bool:
        """Probe at the first step, then every `every` steps."""
        if not self.enabled:
            return False
        if self.last_step is None:
            return True
        return step - self.last_step >= self.every

    def before_next(self, step: int, epoch_last_step: int | None, next_step: int, next_ends_epoch: bool) -> None:
        """After the batch record at `step`: copy the weights when the next
        batch record (at `next_step`: one step on, or one group of
        `steps_per_execution` steps) will be probed, so that probe can
        measure the last optimizer steps (the update ratio)."""
        if not self.enabled or self.prober is None:
            return
        if step == epoch_last_step and self.last_step != step:
            return  # the epoch-end probe of this step still needs the copy
        if self.due(next_step) or next_ends_epoch:
            try:
                self.prober.snapshot(step)
            except Exception:
                pass  # the next probe simply has no update ratio

    def probe(self, model: Any, step: int, previous_step: int) -> dict[str, Any] | None:
        """The probe record's measures at `step` (`previous_step`: that of
        the batch record before it), or None when probing is off or this
        step was already probed."""
        if not self.enabled or step == self.last_step:
            return None
        coverage = None
        try:
            if self.prober is None:
                from lossmon.keras.probes import Prober

                classes = self.labels.get("classes") if self.labels.get("task") == "classification" else None
                self.prober = Prober(model, self.x, self.y, self.sample_weight, classes=classes)
                coverage = self.prober.setup(step)
            fields = self.prober.record_fields(step, previous_step)
        except Exception as exc:
            self.enabled = False
            self.reason = f"probes failed and were switched off ({_short_error(exc)})"[:500]
            warnings.warn(f"LossmonCallback: {self.reason}; training continues.", LossmonWarning, stacklevel=3)
            return {"error": self.reason}
        self.last_step = step
        if coverage is not None:
            fields["coverage"] = coverage
        return fields


def _short_error(exc: Exception) -> str:
    """The error's type and message, without the user-code traceback that
    a traced function's error puts before the message."""
    text = str(exc).strip()
    if "in user code" in text:
        text = text.split("\n\n")[-1]
    text = " ".join(text.split())
    name = type(exc).__name__
    if not text:
        return name
    return text if text.startswith(f"{name}:") else f"{name}: {text}"
