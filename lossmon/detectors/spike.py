"""A single batch whose loss jumps far above its neighbours.

One batch far worse than the ones around it, and worse than where the run
started, is rarely noise: it is usually one bad row (an outlier feature, a
wrong label) in that batch. Recurring at the same batch index each epoch
points straight at a fixed batch of an unshuffled data set.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from lossmon.block import BatchBlock
from lossmon.detect.base import Clear, Detector, Finding, Severity, Verdict
from lossmon.detectors._util import (
    CAUSES,
    Order,
    epoch_label,
    finite,
    fmt,
    fmt_times,
    fresh_finite,
    median,
    row_medians,
    beyond_noise,
    windows,
)
from lossmon.format import BATCH, Record, json_safe


class Spike(Detector):
    """A per-step loss `ratio`x the median of the previous `window` steps,
    `mads` robust deviations above it, and above the run's starting loss.

    Reads the per-step `loss` of batch records (recovered from Keras'
    running means by the writer: the running mean itself would average a
    spike away). The reference is the median of the previous `window` steps
    and their MAD, so ordinary batch noise never counts; the spike must
    also exceed the starting loss (median of the first `window` steps): a
    batch of 0.5 among batches of 0.02 in a converged classifier is one
    misclassified example, not a problem. WARNING; the alert stays active
    while spikes recur within `hold` steps and then clears.
    """

    id = "spike"
    title = "Loss spike"
    kinds = frozenset({BATCH})
    defers_to = CAUSES["spike"]

    def __init__(
        self,
        monitor: str = "loss",
        ratio: float = 4.0,
        mads: float = 10.0,
        window: int = 10,
        hold: int = 60,
        noise: float = 12.0,
        history: int = 100,
    ) -> None:
        self.monitor = monitor
        self.noise = max(float(noise), 0.0)
        self.history = max(int(history), 3)
        self._history: deque[float] = deque(maxlen=self.history)  # the latest per-step losses, spikes too
        self.ratio = max(float(ratio), 1.0)
        self.mads = max(float(mads), 0.0)
        self.window = max(int(window), 5)
        self.hold = max(int(hold), 1)
        self.order = Order()
        self._recent: deque[float] = deque(maxlen=self.window)
        self._start: float | None = None
        self._spikes: list[dict] = []
        self._last_spike_step: int | None = None

    def observe(self, record: Record) -> list[Verdict]:
        if record.kind != BATCH or not self.order.is_new(record):
            return []
        loss = finite(record.values.get(self.monitor))
        if loss is None:
            return []
        if len(self._recent) == self.window:
            if self._start is None:
                self._start = median(self._recent)
            ref, mad = self._reference(np.asarray(self._recent))
            past = np.asarray(self._history)
            self._history.append(loss)
            if (
                ref > 0 and loss >= self.ratio * ref and loss - ref >= self.mads * mad and loss > self._start
                and beyond_noise(past, loss / ref, self.noise)
            ):
                # The spike stays out of the reference: one bad batch must
                # not make the next one look normal.
                return [self._spike(record, loss, ref)]
        else:
            self._history.append(loss)
        self._recent.append(loss)
        if self._last_spike_step is not None and record.step - self._last_spike_step > self.hold:
            self._last_spike_step = None
            return [Clear()]
        return []

    def observe_block(self, block: BatchBlock) -> list[tuple[int, Verdict]]:
        """Judges the rows in slices against the window before each; a spike
        stays out of the window, so after one the next slice starts behind it."""
        found = fresh_finite(block, self.order, self.monitor)
        if found is None:
            return []
        rows, values = found
        verdicts: list[tuple[int, Verdict]] = []
        seen = np.asarray(self._history)
        everything = np.concatenate((seen, values))  # what each row's noise is judged on
        self._history.extend(values[-self.history :].tolist())
        pos, size = 0, 4096
        while pos < len(rows):
            if len(self._recent) < self.window:  # filling the window: no judging yet
                take = min(self.window - len(self._recent), len(rows) - pos)
                self._recent.extend(values[pos : pos + take].tolist())
                pos += take
                continue
            if self._start is None:
                self._start = median(self._recent)
            stop = min(pos + size, len(rows))
            spike = self._spikes_in(values[pos:stop], everything, len(seen) + pos)
            calm = stop - pos if spike < 0 else spike
            self._hold(block, rows[pos : pos + calm], verdicts)
            self._recent.extend(values[max(pos, pos + calm - self.window) : pos + calm].tolist())  # the deque keeps `window`
            if spike < 0:
                pos, size = stop, min(size * 2, 4096)
                continue
            at = int(rows[pos + spike])
            ref = self._reference(np.asarray(self._recent))[0]
            verdicts.append((at, self._spike(block.record(at), float(values[pos + spike]), ref)))
            pos, size = pos + spike + 1, 64  # spikes come in clusters: look ahead a little first
        return verdicts

    def _spike(self, record: Record, loss: float, ref: float) -> Finding:
        batch = record.data.get("batch") if isinstance(record.data, dict) else None
        self._spikes.append(
            {"step": record.step, "epoch": record.epoch, "batch": batch if isinstance(batch, int) else None,
             "loss": loss, "median": ref}
        )
        del self._spikes[:-20]
        self._last_spike_step = record.step
        return self._finding(record)

    def _reference(self, recent: np.ndarray) -> tuple[float, float]:
        """The median of the window (never under 1% of the start: per-step
        values recovered from running means are noisy near zero) and its MAD."""
        ref = max(median(recent.tolist()), 0.01 * self._start)
        return ref, median(np.abs(recent - ref).tolist()) * 1.4826

    def _spikes_in(self, candidates: np.ndarray, everything: np.ndarray, at: int) -> int:
        """Index of the first spike among `candidates`, each judged against
        the window of the values before it and the step noise of the
        `history` values before it in `everything` (where the first
        candidate is at `at`), or -1."""
        above = np.flatnonzero(candidates > self._start)  # a spike is above the starting loss: most rows are not
        if not len(above):
            return -1
        history = np.concatenate((np.asarray(self._recent), candidates))
        past = windows(history, self.window)[above]
        loss = candidates[above]
        with np.errstate(all="ignore"):
            ref = np.maximum(row_medians(past), 0.01 * self._start)
            mad = row_medians(np.abs(past - ref[:, None])) * 1.4826
            hits = (ref > 0) & (loss >= self.ratio * ref) & (loss - ref >= self.mads * mad)
        for k in np.flatnonzero(hits).tolist():
            row = at + int(above[k])
            if beyond_noise(everything[max(row - self.history, 0) : row], float(loss[k]) / float(ref[k]), self.noise):
                return int(above[k])
        return -1

    def _hold(self, block: BatchBlock, rows: np.ndarray, verdicts: list[tuple[int, Verdict]]) -> None:
        """Clear at the first calm row more than `hold` steps after the last spike."""
        if self._last_spike_step is None or not len(rows):
            return
        late = np.flatnonzero(block.steps[rows] - self._last_spike_step > self.hold)
        if len(late):
            self._last_spike_step = None
            verdicts.append((int(rows[late[0]]), Clear()))

    def _finding(self, record: Record) -> Finding:
        last = self._spikes[-1]
        count = len(self._spikes)
        batches = sorted({s["batch"] for s in self._spikes if s["batch"] is not None})
        message = (
            f"{self.monitor} spiked to {fmt(last['loss'])} at step {last['step']} (epoch {epoch_label(last['epoch'])}), "
            f"{fmt_times(last['loss'] / last['median'])}x the median {fmt(last['median'])} of the previous "
            f"{self.window} steps and above the starting {fmt(self._start)}"
        )
        if count > 1:
            message += f"; {count} spikes so far"
        evidence = {
            "loss": last["loss"],
            "median": last["median"],
            "ratio": last["loss"] / last["median"],
            "start_loss": self._start,
            "step": last["step"],
            "epoch": last["epoch"],
            "spikes": count,
            "spike_steps": [s["step"] for s in self._spikes],
            "batch_indices": batches,
        }
        hint = (
            "One batch is far worse than its neighbours: look for an outlier or a bad label in it "
            "(np.abs(x).max(axis=0) per feature shows a value like 100 among values of 0..1); "
            "standardise the inputs (StandardScaler) or clip/remove outliers, and add clipnorm=1.0 "
            "so one batch cannot throw the weights far."
        )
        if count > 1 and len(batches) == 1:
            hint += (
                f" Every spike is at batch {batches[0]} of its epoch: the batches come in the same "
                "order every epoch (no reshuffling, or a shuffle with a fixed seed) and that batch "
                f"holds the culprit (unshuffled: rows {batches[0]}*batch_size to {batches[0] + 1}*batch_size - 1)."
            )
        return Finding(Severity.WARNING, message, hint, json_safe(evidence))
