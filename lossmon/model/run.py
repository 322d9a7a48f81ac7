"""Runs as the views see them: bounded series per metric plus run state.

The model knows nothing about files or screens. It takes validated records
in file order and keeps, per run, what the plots and the status line need.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lossmon.block import BatchBlock
from lossmon.format import BATCH, END, EPOCH, HEADER, PROBE, Record
from lossmon.model.series import DEFAULT_CAPACITY, Series

_RATE_WINDOW = 64

# The memory budget of the model, whatever a file holds: at most `max_runs`
# runs (64), each with at most MAX_NAMES series per table (batch, epoch,
# probe), each series at most DEFAULT_CAPACITY points (8192: 128 KiB, less
# while it is short). Values of further names are counted, not kept.
MAX_NAMES = 4096


@dataclass(eq=False)
class Run:
    """One training run (one `fit` call)."""

    id: str
    capacity: int = DEFAULT_CAPACITY
    header: dict[str, Any] | None = None
    end: dict[str, Any] | None = None
    batch: dict[str, Series] = field(default_factory=dict)
    epoch: dict[str, Series] = field(default_factory=dict)
    probe: dict[str, Series] = field(default_factory=dict)  # "grad_norm", "update_ratio/dense", ...
    epoch_steps: list[int] = field(default_factory=list)
    step: int = 0
    epoch_index: int | None = None
    last_time: float | None = None
    records: int = 0
    version: int = 0  # bumps on every change, so views redraw only when needed
    names_dropped: int = 0  # values not kept: their name came after MAX_NAMES others in its table
    _recent: deque = field(default_factory=lambda: deque(maxlen=_RATE_WINDOW))

    @property
    def status(self) -> str:
        if self.end is None:
            return "running"
        status = self.end.get("status")
        return status if isinstance(status, str) else "ended"

    @property
    def epochs(self) -> int | None:
        value = (self.header or {}).get("epochs")
        return value if type(value) is int else None

    @property
    def steps_per_epoch(self) -> int | None:
        value = (self.header or {}).get("steps_per_epoch")
        return value if type(value) is int else None

    def steps_per_second(self) -> float | None:
        """Recent training speed from the records' own timestamps."""
        if len(self._recent) < 2:
            return None
        (t0, s0), (t1, s1) = self._recent[0], self._recent[-1]
        if t1 <= t0 or s1 <= s0:
            return None
        return (s1 - s0) / (t1 - t0)

    def add(self, record: Record) -> None:
        # Hot path on a cold open (once per record): locals, no repeated lookups.
        self.records += 1
        self.version += 1
        kind, step, when = record.kind, record.step, record.time
        if when is not None and when == when:
            self.last_time = when
        else:
            when = None
        if kind == HEADER:
            self.header = record.data
            return
        if step > self.step:
            self.step = step
        epoch = record.epoch
        if epoch is not None and (self.epoch_index is None or epoch > self.epoch_index):
            self.epoch_index = epoch
        if kind == BATCH:
            self._append(self.batch, step, record.values)
            if when is not None:
                self._recent.append((when, step))
        elif kind == EPOCH:
            self._append(self.epoch, step, record.values)
            self.epoch_steps.append(step)
            del self.epoch_steps[: -self.capacity]
        elif kind == PROBE:
            self._append(self.probe, step, record.values)
        elif kind == END:
            self.end = record.data

    def add_block(self, block: BatchBlock) -> None:
        """Many batch records at once: each column goes into its series in one copy."""
        steps = block.steps
        self.records += len(block)
        self.version += 1
        self.step = max(self.step, int(steps[-1]))
        epoch = int(block.epochs.max())
        if epoch >= 0 and (self.epoch_index is None or epoch > self.epoch_index):
            self.epoch_index = epoch
        for name in block.names:
            series = self._series(self.batch, name)
            if series is not None:
                series.extend(steps, block.column(name))
        timed = np.flatnonzero(np.isfinite(block.times))
        if len(timed):
            self.last_time = float(block.times[timed[-1]])
            tail = timed[-_RATE_WINDOW:]
            self._recent.extend(zip(block.times[tail].tolist(), steps[tail].tolist()))

    def _append(self, table: dict[str, Series], step: int, values: dict[str, float]) -> None:
        for name, value in values.items():
            series = self._series(table, name)
            if series is not None:
                series.append(step, value)

    def _series(self, table: dict[str, Series], name: str) -> Series | None:
        series = table.get(name)
        if series is None:
            if len(table) >= MAX_NAMES:  # a file naming endless metrics: the first ones are kept
                self.names_dropped += 1
                return None
            series = table[name] = Series(self.capacity)
        return series


class RunStore:
    """All runs seen in one or more files, in order of first appearance."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY, max_runs: int = 64) -> None:
        self.capacity = capacity
        self.max_runs = max_runs
        self.runs: dict[str, Run] = {}
        self.version = 0  # bumps on every record, so views redraw only when needed
        # Called with the id of each run dropped to stay within max_runs, so
        # that per-run state elsewhere (detectors) can be dropped too;
        # `before_evict` first, with the Run itself, while it can be judged.
        self.on_evict: Callable[[str], None] | None = None
        self.before_evict: Callable[[Run], None] | None = None
        self.evicted_runs = 0  # runs dropped so far, and the records they held
        self.evicted_records = 0

    def add(self, record: Record) -> Run:
        run = self._run(record.run)
        run.add(record)
        self.version += 1
        return run

    def add_block(self, block: BatchBlock) -> Run:
        run = self._run(block.run)
        run.add_block(block)
        self.version += len(block)
        return run

    def add_items(self, items: Iterable[Record | BatchBlock]) -> None:
        """Records and blocks in file order, as the engine splits them."""
        for item in items:
            if isinstance(item, BatchBlock):
                self.add_block(item)
            else:
                self.add(item)

    def _run(self, run_id: str) -> Run:
        run = self.runs.get(run_id)
        if run is None:
            run = self.runs[run_id] = Run(run_id, self.capacity)
            while len(self.runs) > self.max_runs:
                oldest = next(iter(self.runs))
                dropped = self.runs.pop(oldest)
                self.evicted_runs += 1
                self.evicted_records += dropped.records
                if self.before_evict is not None:
                    self.before_evict(dropped)
                if self.on_evict is not None:
                    self.on_evict(oldest)
        return run

    @property
    def latest(self) -> Run | None:
        if not self.runs:
            return None
        return next(reversed(self.runs.values()))
