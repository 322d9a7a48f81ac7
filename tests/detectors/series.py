"""Build Record streams from lists of numbers and run detectors over them.

The records look like what lossmon.format.to_record makes of a real run
file, without going through JSON, so tests state series as plain numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from lossmon.detect.base import Clear, Detector, Finding, Severity, Verdict
from lossmon.format import Record

RUN = "test-run"


def header(
    optimizer: str | None = "Adam",
    lr: float | None = 0.001,
    loss: str | None = "binary_crossentropy",
    units: Sequence[int] = (128, 1),
    **extra: Any,
) -> Record:
    data: dict[str, Any] = {"kind": "header", "run": RUN, "step": 0, "format": 1}
    if optimizer is not None:
        opt: dict[str, Any] = {"class": optimizer, "config": {}}
        if lr is not None:
            opt["learning_rate"] = lr
            opt["config"]["learning_rate"] = lr
        data["optimizer"] = opt
    if loss is not None:
        data["loss"] = loss
    data["model"] = {"layers": [{"class": "Dense", "units": u} for u in units]}
    data.update(extra)
    return Record("header", RUN, 0, data=data)


def batch(step: int, epoch: int = 0, **values: float) -> Record:
    return Record("batch", RUN, step, epoch, values=dict(values))


def epoch_record(epoch: int, step: int | None = None, **values: float) -> Record:
    return Record("epoch", RUN, step if step is not None else (epoch + 1) * 100, epoch, values=dict(values))


def end(step: int, status: str = "completed") -> Record:
    return Record("end", RUN, step, data={"status": status})


def batches(losses: Iterable[float], steps_per_epoch: int = 32, first_step: int = 1) -> list[Record]:
    """One batch record per loss value, steps counted from `first_step`."""
    out = []
    for i, loss in enumerate(losses):
        step = first_step + i
        out.append(batch(step, (step - 1) // steps_per_epoch, loss=float(loss)))
    return out


def epochs(
    loss: Sequence[float] | None = None,
    val_loss: Sequence[float] | None = None,
    lr: float | None = None,
    steps_per_epoch: int = 32,
) -> list[Record]:
    """One epoch record per index, with whichever series are given."""
    n = len(loss) if loss is not None else len(val_loss or [])
    out = []
    for i in range(n):
        values: dict[str, float] = {}
        if loss is not None:
            values["loss"] = float(loss[i])
        if val_loss is not None:
            values["val_loss"] = float(val_loss[i])
        if lr is not None:
            values["lr"] = lr
        out.append(epoch_record(i, (i + 1) * steps_per_epoch, **values))
    return out


def with_epochs(step_losses: Sequence[float], steps_per_epoch: int = 32) -> list[Record]:
    """Batch records plus an epoch record (mean loss) after every epoch."""
    out: list[Record] = []
    for i, rec in enumerate(batches(step_losses, steps_per_epoch)):
        out.append(rec)
        if (i + 1) % steps_per_epoch == 0:
            chunk = step_losses[i + 1 - steps_per_epoch : i + 1]
            out.append(epoch_record(i // steps_per_epoch, i + 1, loss=float(np.mean(chunk))))
    return out


# ---------------------------------------------------------------- series


def converging(
    n: int,
    seed: int,
    start: float = 0.69,
    floor: float = 0.05,
    tau: float = 150.0,
    noise: float = 0.25,
) -> np.ndarray:
    """A healthy per-step loss: exponential decay to `floor`, noisy.

    Noise is multiplicative (lognormal, sigma `noise`) as batch losses are:
    they scatter in proportion to their level and never go negative.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    level = floor + (start - floor) * np.exp(-t / tau)
    return level * rng.lognormal(-noise**2 / 2, noise, n)


def flat(n: int, seed: int, level: float = 0.693, noise: float = 0.05) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return level * rng.lognormal(-noise**2 / 2, noise, n)


# ---------------------------------------------------------------- running


@dataclass
class Trace:
    """What a detector said over a stream, record by record."""

    steps: list[tuple[Record, list[Verdict]]] = field(default_factory=list)

    @property
    def findings(self) -> list[tuple[Record, Finding]]:
        return [(r, v) for r, vs in self.steps for v in vs if isinstance(v, Finding)]

    @property
    def clears(self) -> list[tuple[Record, Clear]]:
        return [(r, v) for r, vs in self.steps for v in vs if isinstance(v, Clear)]

    @property
    def fired(self) -> bool:
        return bool(self.findings)

    def first_finding(self) -> tuple[Record, Finding]:
        assert self.findings, "the detector never fired"
        return self.findings[0]

    def severities(self) -> set[Severity]:
        return {f.severity for _, f in self.findings}

    def last(self) -> list[Verdict]:
        return self.steps[-1][1] if self.steps else []

    def state_at_end(self) -> str:
        """'active', 'clear' or 'never', from the last Finding/Clear seen."""
        state = "never"
        for _, vs in self.steps:
            for v in vs:
                state = "active" if isinstance(v, Finding) else "clear"
        return state

    def episodes(self) -> list[tuple[int, int | None]]:
        """(first finding step, clear step or None) per alert episode."""
        out: list[tuple[int, int | None]] = []
        on = False
        for rec, vs in self.steps:
            for v in vs:
                if isinstance(v, Finding) and not on:
                    out.append((rec.step, None))
                    on = True
                elif isinstance(v, Clear) and on:
                    out[-1] = (out[-1][0], rec.step)
                    on = False
        return out


def run(detector: Detector, records: Iterable[Record]) -> Trace:
    """Feed every record; check each answer is a well-formed verdict list."""
    trace = Trace()
    for rec in records:
        verdicts = list(detector.observe(rec))
        for v in verdicts:
            assert isinstance(v, (Finding, Clear)), v
            if isinstance(v, Finding):
                assert v.message and "\n" not in v.message
                assert v.hint
                assert isinstance(v.evidence, dict)
                _assert_json_safe(v.evidence)
        trace.steps.append((rec, verdicts))
    return trace


def _assert_json_safe(value: Any) -> None:
    """Evidence goes into JSON: no NaN/inf floats, only plain types."""
    if isinstance(value, float):
        assert math.isfinite(value), value
    elif isinstance(value, dict):
        for k, v in value.items():
            assert isinstance(k, str)
            _assert_json_safe(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _assert_json_safe(v)
    else:
        assert value is None or isinstance(value, (str, int, bool)), value
