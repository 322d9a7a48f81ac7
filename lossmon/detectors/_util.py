"""Small pieces the built-in detectors share.

Kept here so that every detector formats numbers, reads the header and gives
learning-rate advice the same way. Nothing in this module raises on odd
input: headers written by other Keras versions may lack any key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from lossmon.format import BATCH, EPOCH, Record

# Keras 3 default learning rates, by lower-cased optimizer class name.
# SGD is the odd one out; everything adaptive starts at 1e-3.
DEFAULT_LR: dict[str, float] = {
    "sgd": 0.01,
    "adam": 0.001,
    "adamw": 0.001,
    "adamax": 0.001,
    "nadam": 0.001,
    "rmsprop": 0.001,
    "adagrad": 0.001,
    "adadelta": 0.001,
    "adafactor": 0.001,
    "ftrl": 0.001,
    "lamb": 0.001,
    "lion": 0.001,
    "muon": 0.001,
}

LN2 = math.log(2.0)


def fmt(value: float | None) -> str:
    """A number for a message: 4 significant digits, 'n/a' when unknown."""
    if value is None:
        return "n/a"
    if not math.isfinite(value):
        return str(value)
    return f"{value:.4g}"


def fmt_lr(value: float) -> str:
    """A learning rate as people write it: 0.001, 1e-05, 1.0."""
    text = f"{value:g}"
    return text + ".0" if text.lstrip("-").isdigit() else text


def fmt_times(ratio: float) -> str:
    """A ratio for 'Nx' phrases: 12.3, 250, 1000."""
    return f"{ratio:.0f}" if 100 <= ratio < 1e6 else f"{ratio:.3g}"  # 1e+300, never 300 digits


def finite(value: Any) -> float | None:
    """`value` as a float when it is a finite real number, else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def median(values: Sequence[float]) -> float:
    """Median that cannot overflow when averaging the two middle values."""
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return ordered[mid - 1] / 2 + ordered[mid] / 2


def windows(values: np.ndarray, size: int) -> np.ndarray:
    """Every run of `size` consecutive values, one per row (a read-only view,
    no copy). Built directly: sliding_window_view checks its arguments in
    Python, which costs more than the work on a block of a thousand rows."""
    values = np.ascontiguousarray(values)
    step = values.itemsize
    view = np.ndarray((len(values) - size + 1, size), values.dtype, values, 0, (step, step))
    view.flags.writeable = False
    return view


def window_counts(flags: np.ndarray, size: int) -> np.ndarray:
    """How many of each `size` consecutive `flags` are set (exact counts)."""
    total = np.concatenate(([0], np.cumsum(flags)))
    return total[size:] - total[:-size]


def log_each(values: np.ndarray) -> np.ndarray:
    """The natural log of each value. Both a detector's record and block paths
    take logs here, one record as a 1-element array: numpy's vectorised log
    can differ from math.log in the last bit (AVX-512), and one loop for both
    keeps their results bit-identical."""
    return np.log(np.ascontiguousarray(values, dtype=np.float64))


def row_medians(rows: np.ndarray) -> np.ndarray:
    """The median of each row; the two middle values are halved before they
    are added, as `median` does, so huge values cannot overflow."""
    ordered = np.sort(rows, axis=1)
    mid = ordered.shape[1] // 2
    if ordered.shape[1] % 2:
        return ordered[:, mid]
    return ordered[:, mid - 1] / 2 + ordered[:, mid] / 2


def finite_row_medians(rows: np.ndarray) -> np.ndarray:
    """`row_medians` of finite values. Five to a row (the usual median
    window) takes six minimums and maximums per row instead of a sort,
    several times faster on a block; the median is one of the values
    either way, so the result is the same."""
    if rows.shape[1] != 5:
        return row_medians(rows)
    a, b, c, d, e = rows.T
    low = np.maximum(np.minimum(a, b), np.minimum(c, d))  # neither of the two smallest of a..d
    high = np.minimum(np.maximum(a, b), np.maximum(c, d))  # neither of the two largest
    return np.maximum(np.minimum(e, low), np.minimum(np.maximum(e, low), high))  # the middle of e, low, high


def step_noise(losses: np.ndarray) -> float | None:
    """How much a run's per-step loss moves from one step to the next as a
    rule: the median absolute change of its log over `losses` (positive
    values only), or None with fewer than three. The noise floor that
    spikes and rebounds are judged against: batches of 4 rows make it about
    1 (a factor of e between steps), batches of 32 about 0.1."""
    positive = losses[losses > 0]
    if len(positive) < 3:
        return None
    logs = np.log(positive)
    return float(np.median(np.abs(logs[1:] - logs[:-1])))


def beyond_noise(past: np.ndarray, ratio: float, times: float) -> bool:
    """Whether a jump by `ratio` (a spike over its reference, a rebound over
    its best) stands out of the run's step noise over the steps `past`: its
    log at least `times` the noise (any ratio counts while the noise is
    unknown). The one rule spike and divergence both judge by."""
    typical = step_noise(past)
    return typical is None or math.log(ratio) >= times * typical


OPEN, ON, CLEAR = "open", "on", "clear"

def fresh_finite(block: Any, order: Order, name: str, positive: bool = False) -> tuple[np.ndarray, np.ndarray] | None:
    """The rows of a block that `order` has not seen, whose `name` is finite
    (and above zero when `positive`), and those values; None when the block
    has no `name`. What every batch-reading detector starts a block with."""
    first = order.fresh_rows(block.steps)
    column = block.column(name)
    if column is None:
        return None
    part = column[first:]
    keep = np.isfinite(part)
    if positive:
        keep &= part > 0
    if keep.all():  # the usual block: no copy, no search
        return np.arange(first, len(column)), part
    rows = np.flatnonzero(keep)
    rows += first
    return rows, column[rows]


def hysteresis(
    fire: np.ndarray,
    hold: np.ndarray,
    window: int,
    active: bool,
    calm: int,
    stop: np.ndarray | None = None,
    peak: Callable[[int, int], np.ndarray] | None = None,
) -> tuple[list[tuple[int, str]], bool, int]:
    """An alert's course over a block's rows, so it neither misses a start
    nor flaps: on at a `fire` row; then each row that does not `hold` is
    calm, and `window` calm rows in a row (or a `stop` row) turn it off.

    Takes and returns the state (`active`, `calm` rows so far). The events
    are what a block detector must say (see Detector.observe_block): OPEN
    where it turns on, ON on the first row when it was on already and on
    the last row before each CLEAR or the block's end; with `peak` (the
    scores of rows a..b, rising with the detector's `peak_key` evidence),
    ON also on the rows of each stretch where it is on whose score is the
    stretch's highest (or within a rounding error of it), so the engine
    sees the incident's worst moment however the rows were split.
    """
    fire_rows = np.flatnonzero(fire)
    if not active and not len(fire_rows):
        return [], False, calm  # the usual block: nothing to say
    events: list[tuple[int, str]] = []
    holds = (hold | fire).tolist()
    stops = stop.tolist() if stop is not None else None
    k, n, said = 0, len(fire), -1  # said: the last row with an OPEN or ON
    while k < n:
        if not active:
            nxt = int(np.searchsorted(fire_rows, k))
            if nxt == len(fire_rows):
                break
            k = int(fire_rows[nxt])
            active, calm, said = True, 0, k
            events.append((k, OPEN))
        elif holds[k] and not (stops and stops[k]):
            calm = 0
        else:
            calm += 1
            if calm >= window or (stops and stops[k]):
                if k - 1 > said:
                    events.append((k - 1, ON))
                events.append((k, CLEAR))
                active, calm = False, 0
        if k == 0 and active and said < 0:
            events.append((0, ON))
            said = 0
        k += 1
    if active and n - 1 > said:
        events.append((n - 1, ON))
    if peak is not None and events:
        events = _with_peaks(events, peak)
    return events, active, calm


def _with_peaks(events: list[tuple[int, str]], peak: Callable[[int, int], np.ndarray]) -> list[tuple[int, str]]:
    """`events` with an ON on each stretch's highest-scoring rows (see hysteresis)."""
    stretches, start = [], None
    for row, what in events:
        if what == CLEAR:
            if start is not None:
                stretches.append((start, row - 1))
            start = None
        elif start is None:
            start = row  # an OPEN, or the ON on row 0 of a block that began on
    if start is not None:
        stretches.append((start, events[-1][0]))  # on to the block's last row
    said = {row for row, what in events if what != CLEAR}
    extra = []
    for first, last in stretches:
        scores = np.asarray(peak(first, last), dtype=np.float64)
        scores = np.where(np.isfinite(scores), scores, -np.inf)
        top = float(scores.max())
        if math.isfinite(top):
            near = np.flatnonzero(scores >= top - 1e-12 * max(abs(top), 1.0)) + first
            extra += [(int(row), ON) for row in near if int(row) not in said]
    return sorted(events + extra, key=lambda event: event[0]) if extra else events


LOWER, RAISE = "lower", "raise"


def lr_advice(info: RunInfo, direction: str, *, seen: bool = True, times: float = 10.0) -> str | None:
    """The learning-rate clause of a hint, worded once for every detector,
    or None when no advice in that `direction` (LOWER or RAISE) applies.

    A run is never told both ways, whatever is open at once; the rate
    against the optimizer's default decides: RAISE only when it is at most
    a tenth of the default; LOWER when the loss itself shows overshooting
    (`seen=True`: divergence, zig-zags, NaN) above that tenth, and from a
    measure that does not show it (`seen=False`: dead or saturated units,
    large updates, growing gradients) only from 3x the default.
    """
    lr, ratio = info.lr, info.lr_ratio()
    low = ratio is not None and ratio <= 0.1
    if direction == LOWER:
        if low or (not seen and (ratio is None or ratio < 3.0)):
            return None
        if ratio is not None and ratio >= 10.0:
            return info.lr_too_high()
        if lr is not None:
            return f"lower the learning rate {fmt_times(times)}x ({fmt_lr(lr)} -> {fmt_lr(lr / times)})"
        return f"lower the learning rate {fmt_times(times)}x"
    return info.lr_too_low(10.0) if low else None


def sentence(*parts: str | None) -> str:
    """Hint clauses joined with '; ', the first capitalised, a full stop at the end."""
    text = "; ".join(p for p in parts if p)
    text = text[:1].upper() + text[1:]
    return text if text.endswith(".") else text + "."


def epoch_label(epoch: int | None) -> str:
    """Epoch numbers in messages are 1-based, as Keras prints them."""
    return "?" if epoch is None else str(epoch + 1)


class EMA:
    """Exponential moving average, seeded with the first value it sees."""

    def __init__(self, alpha: float) -> None:
        self.alpha = min(max(float(alpha), 1e-6), 1.0)
        self.value: float | None = None

    def update(self, x: float) -> float:
        if self.value is None:
            self.value = x
        else:
            # Weighted sum, not value + alpha * (x - value): cannot overflow.
            self.value = (1.0 - self.alpha) * self.value + self.alpha * x
        return self.value

    def run(self, xs: np.ndarray) -> np.ndarray:
        """`update` for each of `xs` in turn, the value after each: the same
        arithmetic, so the same floats (numpy's alpha * x is Python's), with
        the products taken as a column and only the sum left to the loop."""
        xs = np.asarray(xs, dtype=np.float64)
        if not len(xs):
            return np.empty(0)
        value, seeded = self.value, []
        if value is None:
            value = float(xs[0])
            seeded, xs = [value], xs[1:]
        keep = 1.0 - self.alpha
        out = seeded + [value := keep * value + term for term in (self.alpha * xs).tolist()]
        self.value = value
        return np.array(out, dtype=np.float64)


# Root causes that other detectors' conditions are symptoms of (see
# Detector.defers_to): one place that says which problem explains which.
# The engine attaches a symptom's incident to its cause's, so a run with one
# problem reads as one (lossmon/detect/engine.py).
SETUP_CAUSES = ("lr_config", "unscaled_inputs")  # the header shows them: a rate far off its default, raw inputs
LOSS_CAUSES = ("nonfinite", "divergence")  # a loss out of control also spikes, zig-zags, stalls
STEP_CAUSES = LOSS_CAUSES + SETUP_CAUSES  # steps too big: spikes, zig-zags, dead ReLUs, big updates
CORRUPT = ("nonfinite",)  # NaN weights also look dead, unchanged, exploding
TRAINING_CAUSES = LOSS_CAUSES + (
    "vanishing_gradients", "dead_relu", "saturation", "unscaled_inputs", "unscaled_targets",
)  # nothing learns
CAUSES: dict[str, tuple[str, ...]] = {  # by detector id, what its `defers_to` is
    "divergence": SETUP_CAUSES,
    "nonfinite": ("divergence",),  # a loss that ran away overflows (NaN in the data is nonfinite's own)
    "oscillation": STEP_CAUSES,
    "spike": STEP_CAUSES + ("oscillation",),  # a loss swinging 3x a step has outlier steps
    "overfitting": LOSS_CAUSES,
    "dead_relu": STEP_CAUSES,  # NaN weights, huge steps or raw inputs kill units
    "saturation": STEP_CAUSES,  # likewise they saturate them
    "update_ratio": STEP_CAUSES + ("dead_relu", "vanishing_gradients", "saturation"),  # a dead or saturated layer does not move
    "exploding_gradients": CORRUPT + SETUP_CAUSES + ("unscaled_targets",),  # raw data makes huge gradients
    "vanishing_gradients": CORRUPT,
    "chance_level": TRAINING_CAUSES + ("overfitting", "update_ratio"),  # validation at chance while training memorises
    "plateau": TRAINING_CAUSES + ("lr_config", "chance_level", "update_ratio"),  # weights that barely move
    "slow_convergence": TRAINING_CAUSES + ("lr_config", "chance_level", "update_ratio", "plateau"),  # a crawl after a stall
}

@dataclass
class RunInfo:
    """What the header says that detectors use for hints, all optional.

    `lr` starts as the header's learning rate and follows the `lr` that epoch
    records carry, so schedules and ReduceLROnPlateau are reflected.
    """

    optimizer: str | None = None
    lr: float | None = None
    loss: str | None = None
    output_units: int | None = None

    def optimizer_evidence(self) -> dict[str, Any]:
        """The learning rate and optimizer, where known, for a Finding's evidence."""
        out: dict[str, Any] = {}
        if self.lr is not None:
            out["learning_rate"] = self.lr
        if self.optimizer:
            out["optimizer"] = self.optimizer
        return out

    def update(self, record: Record) -> None:
        if record.kind == "header":
            self._read_header(record.data)
        elif record.kind == EPOCH:
            lr = finite(record.values.get("lr"))
            if lr is not None and lr > 0:
                self.lr = lr

    def _read_header(self, data: Any) -> None:
        if not isinstance(data, dict):
            return
        opt = data.get("optimizer")
        if isinstance(opt, dict):
            name = opt.get("class")
            self.optimizer = name if isinstance(name, str) and name else None
            lr = finite(opt.get("learning_rate"))
            config = opt.get("config")
            if lr is None and isinstance(config, dict):
                lr = finite(config.get("learning_rate"))
            if not lr or lr <= 0:
                lr = schedule_peak(opt)
            self.lr = lr if lr is not None and lr > 0 else None
        elif isinstance(opt, str) and opt:
            self.optimizer = opt
        loss = data.get("loss")
        self.loss = loss if isinstance(loss, str) and loss else None
        self.output_units = _output_units(data.get("model"))

    @property
    def default_lr(self) -> float | None:
        if self.optimizer is None:
            return None
        return DEFAULT_LR.get(self.optimizer.lower())

    def lr_ratio(self) -> float | None:
        """How many times the optimizer's default the current lr is."""
        default = self.default_lr
        if self.lr is None or default is None:
            return None
        return self.lr / default

    def lr_too_high(self, times: float = 10.0) -> str | None:
        """A concrete sentence when the lr is `times`x its default or more."""
        ratio, lr, default = self.lr_ratio(), self.lr, self.default_lr
        if ratio is None or lr is None or default is None or ratio < times:
            return None
        return (
            f"learning rate {fmt_lr(lr)} is {fmt_times(ratio)}x {self.optimizer}'s "
            f"default {fmt_lr(default)}: try {fmt_lr(default)}"
        )

    def lr_too_low(self, times: float = 100.0) -> str | None:
        """A concrete sentence when the lr is 1/`times` of its default or less."""
        ratio, lr, default = self.lr_ratio(), self.lr, self.default_lr
        if ratio is None or lr is None or default is None or ratio > 1.0 / times:
            return None
        return (
            f"learning rate {fmt_lr(lr)} is {fmt_times(1.0 / ratio)}x below "
            f"{self.optimizer}'s default {fmt_lr(default)}: try {fmt_lr(default)}"
        )

    def chance_loss(self) -> float | None:
        """The loss of a model that only predicts the class prior, if known.

        ln 2 for binary cross-entropy on balanced labels, ln K for K-class
        categorical cross-entropy: a loss stuck there means nothing was
        learned beyond the label frequencies.
        """
        name = (self.loss or "").lower().replace("_", "").replace(" ", "")
        if name in ("binarycrossentropy", "bce"):
            return LN2
        if name in ("categoricalcrossentropy", "sparsecategoricalcrossentropy"):
            if self.output_units is not None and self.output_units >= 2:
                return math.log(self.output_units)
        return None


def schedule_peak(optimizer: Any) -> float | None:
    """The rate a warm-up schedule climbs to (Keras' `warmup_target`), when
    the header's optimizer config has one: a warm-up starts at 0 on purpose."""
    config = optimizer.get("config") if isinstance(optimizer, dict) else None
    schedule = config.get("learning_rate") if isinstance(config, dict) else None
    params = schedule.get("config") if isinstance(schedule, dict) else None
    if not isinstance(params, dict):
        return None
    return finite(params.get("warmup_target"))


def _output_units(model: Any) -> int | None:
    if not isinstance(model, dict):
        return None
    layers = model.get("layers")
    if not isinstance(layers, list):
        return None
    for layer in reversed(layers):
        if not isinstance(layer, dict):
            continue
        units = layer.get("units")
        if units is None and isinstance(layer.get("config"), dict):
            units = layer["config"].get("units")
        if isinstance(units, int) and not isinstance(units, bool) and units > 0:
            return units
    return None


class Order:
    """Drops records that arrive out of order or twice.

    Batch records must have a larger step than the last batch record; epoch
    records a larger epoch (or step, when the epoch is missing) than the last
    epoch record. Anything else passes.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._batch_step = -1
        self._epoch: tuple[int, int] = (-1, -1)

    @property
    def seen_batches(self) -> bool:
        """Whether a batch record (of any step) has come."""
        return self._batch_step >= 0

    def fresh_rows(self, steps: np.ndarray) -> int:
        """For a block's increasing steps: the first row that is new; the
        rows before it were seen already (a resumed run repeating steps)."""
        if len(steps) and steps[0] > self._batch_step:
            first = 0  # the usual block: all new, no search
        else:
            first = int(np.searchsorted(steps, self._batch_step, side="right"))
        if first < len(steps):
            self._batch_step = int(steps[-1])
        return first

    def is_new(self, record: Record) -> bool:
        if record.kind == BATCH:
            if record.step <= self._batch_step:
                return False
            self._batch_step = record.step
            return True
        if record.kind == EPOCH:
            key = (record.epoch if record.epoch is not None else self._epoch[0], record.step)
            if record.epoch is not None:
                fresh = record.epoch > self._epoch[0]
            else:
                fresh = record.step > self._epoch[1]
            if not fresh:
                return False
            self._epoch = key
            return True
        return True
