"""The run stopped writing: stalled, or died without its end record.

Detectors only see records, and a stall is the absence of records. So the
reader feeds each unfinished run a synthetic `tick` record now and then
(kind "tick", no values, `time` = the reader's clock; see `ticks`): `watch`
about once a second, `check` once after reading the files to their end.
The detector compares the silence with the run's own record rate, so a job
writing every 50 ms and one writing every 2 minutes are both judged fairly.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, Iterable

import numpy as np

from lossmon.block import BatchBlock
from lossmon.detect.base import Clear, Detector, Finding, Severity, Verdict
from lossmon.detectors._util import epoch_label, finite, median
from lossmon.format import BATCH, END, EPOCH, HEADER, Record, json_safe

TICK = "tick"


def ticks(runs: Iterable[Any], now: float) -> list[Record]:
    """One tick record per run that has no end record yet.

    `runs` are lossmon.model.Run objects (anything with `id`, `end`, `step`
    and `epoch_index`). Feed the result to the engine:
    `for tick in ticks(store.runs.values(), time.time()): engine.feed(tick)`.
    """
    return [
        Record(TICK, run.id, run.step, run.epoch_index, time=now)
        for run in runs
        if getattr(run, "end", None) is None
    ]


def _duration(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"


class Stalled(Detector):
    """No record for `factor`x the run's usual gap (and at least
    `min_silence` seconds) and no end record.

    The usual gap is the larger of the median interval between the last
    `window` records and half the longest interval seen (an epoch end with
    validation, a checkpoint), so ordinary pauses never count. Before the
    first training record the allowance is `startup` seconds after the
    header (graph building, data loading). Judged on tick records only;
    any new record clears it. WARNING. In `lossmon check` the tick comes
    after the whole file was read, so a file whose last record is old and
    that has no end record is reported as a run that ended without one
    (killed, out of memory, machine lost) or hangs.
    """

    id = "stalled"
    title = "Run stalled"

    def __init__(self, factor: float = 10.0, min_silence: float = 10.0, startup: float = 300.0, window: int = 32) -> None:
        self.factor = max(float(factor), 1.0)
        self.min_silence = max(float(min_silence), 0.0)
        self.startup = max(float(startup), 0.0)
        self.window = max(int(window), 2)
        self._gaps: deque[float] = deque(maxlen=self.window)
        self._longest = 0.0
        self._last_time: float | None = None
        self._last_kind: str | None = None
        self._last_step = 0
        self._last_epoch: int | None = None
        self._records = 0
        self._ended = False
        self._active = False

    def observe(self, record: Record) -> list[Verdict]:
        if record.kind == TICK:
            return self._judge(record)
        if record.kind == END:
            self._ended = True
            return self._clear()
        if record.kind not in (HEADER, BATCH, EPOCH) and record.time is None:
            return []
        t = finite(record.time)
        if t is None and record.kind == HEADER and isinstance(record.data, dict):
            t = finite(record.data.get("start_time"))
        if t is None:
            return []
        if self._last_time is not None and t > self._last_time:
            gap = t - self._last_time
            if self._last_kind != HEADER:  # start-up is not part of the rhythm
                self._gaps.append(gap)
                self._longest = max(self._longest, gap)
        if self._last_time is None or t >= self._last_time:
            self._last_time = t
            self._last_kind = record.kind
            self._last_step = max(self._last_step, record.step)
            if record.epoch is not None:
                self._last_epoch = record.epoch
        if record.kind in (BATCH, EPOCH):
            self._records += 1
        return self._clear()

    def observe_block(self, block: BatchBlock) -> list[tuple[int, Verdict]]:
        """The rhythm of many batch records at once: their time gaps."""
        times = block.times
        rows = np.flatnonzero(np.isfinite(times))
        if not len(rows):
            return []
        t = times[rows]
        before = -math.inf if self._last_time is None else self._last_time
        latest = np.maximum.accumulate(np.concatenate(([before], t)))
        previous = latest[:-1]  # the last time each row is compared with
        accepted = np.flatnonzero(t >= previous)
        is_gap = (t > previous) & (previous > -math.inf)
        if self._last_kind == HEADER and len(accepted):
            is_gap[accepted[0]] = False  # start-up is not part of the rhythm
        gaps = (t - previous)[is_gap]
        if len(gaps):
            self._gaps.extend(gaps[-self.window :].tolist())
            self._longest = max(self._longest, float(gaps.max()))
        if len(accepted):
            self._last_time, self._last_kind = float(latest[-1]), BATCH
            last = rows[accepted[-1]]
            self._last_step = max(self._last_step, int(block.steps[last]))  # steps increase within a block
            epoch = int(block.epochs[last])
            if epoch < 0:  # the last row has none: the latest one that has
                epochs = block.epochs[rows[accepted]]
                epochs = epochs[epochs >= 0]
                epoch = int(epochs[-1]) if len(epochs) else -1
            if epoch >= 0:
                self._last_epoch = epoch
        self._records += len(rows)
        return [(int(rows[0]), verdict) for verdict in self._clear()]

    def _clear(self) -> list[Verdict]:
        if self._active:
            self._active = False
            return [Clear()]
        return []

    def allowance(self) -> float:
        """Seconds of silence that still count as normal for this run."""
        if not self._gaps:
            return max(self.startup, self.min_silence)
        usual = max(median(self._gaps), self._longest / 2)
        return max(self.factor * usual, self.min_silence)

    def _judge(self, tick: Record) -> list[Verdict]:
        now = finite(tick.time)
        if self._ended or self._last_time is None or now is None:
            return []
        silence = now - self._last_time
        allowed = self.allowance()
        if silence <= allowed:
            return self._clear()
        self._active = True
        where = f"step {self._last_step}"
        if self._last_epoch is not None:
            where += f", epoch {epoch_label(self._last_epoch)}"
        if self._gaps:
            rhythm = f"it wrote a record every {median(self._gaps):.3g} s (longest pause {self._longest:.3g} s)"
        else:
            rhythm = "it has written no training record since its header"
        message = f"no record for {_duration(silence)} and no end record (last at {where}); {rhythm}"
        evidence = {
            "silence_s": silence,
            "allowed_s": allowed,
            "median_gap_s": median(self._gaps) if self._gaps else None,
            "longest_gap_s": self._longest,
            "last_time": self._last_time,
            "last_step": self._last_step,
            "last_epoch": self._last_epoch,
            "records": self._records,
        }
        hint = (
            "Is the job still alive? Check the process (ps -p PID, the header's host and pid) and its log: "
            "a run killed by the OOM killer, a scheduler time limit or a lost machine never writes its "
            "end record; a live but silent job may be stuck in data loading, a deadlock or a very "
            "slow validation pass. Wrap fit in `with LossmonCallback(path) as cb:` so exceptions "
            "still record why the run ended."
        )
        return [Finding(Severity.WARNING, message, hint, json_safe(evidence))]
