"""Is a run alive? live / stalled / finished / crashed, and how long to go.

The run file cannot say that its writer died, so health is inferred: a run
without an end record whose header names this host and a process id that no
longer exists has crashed; one that has been silent for far longer than its
usual gap between records has stalled.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import numpy as np

from lossmon.block import BatchBlock
from lossmon.format import Record
from lossmon.model.run import Run, RunStore
from lossmon.model.series import DEFAULT_CAPACITY, Series

LIVE = "live"
STALLED = "stalled"
FINISHED = "finished"
CRASHED = "crashed"

MIN_STALL_SECONDS = 30.0
STALL_FACTOR = 10.0


class TimedStore(RunStore):
    """A RunStore that also keeps, per run, when each step was recorded:
    the x axis by wall time and the usual gap between records need it."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY, max_runs: int = 64) -> None:
        super().__init__(capacity, max_runs)
        self.clocks: dict[str, Series] = {}

    def add(self, record: Record) -> Run:
        run = super().add(record)
        if record.time is not None and record.time == record.time and record.kind != "header":
            clock = self._clock(record.run)
            last = clock.last()
            if last is None or record.step >= last[0]:
                clock.append(record.step, record.time)
        self._forget_evicted()
        return run

    def add_block(self, block: BatchBlock) -> Run:
        run = super().add_block(block)
        timed = np.flatnonzero(np.isfinite(block.times))
        if len(timed):
            clock = self._clock(block.run)
            last = clock.last()
            steps = block.steps[timed]
            keep = timed if last is None else timed[steps >= last[0]]  # block steps increase
            clock.extend(block.steps[keep], block.times[keep])
        self._forget_evicted()
        return run

    def _clock(self, run: str) -> Series:
        clock = self.clocks.get(run)
        if clock is None:
            clock = self.clocks[run] = Series(self.capacity)
        return clock

    def _forget_evicted(self) -> None:
        if len(self.clocks) > len(self.runs):  # the store evicted a run
            for gone in [name for name in self.clocks if name not in self.runs]:
                del self.clocks[gone]


@dataclass(frozen=True)
class Health:
    state: str  # live, stalled, finished, crashed
    detail: str = ""  # e.g. the end status, or how long it has been silent
    eta: float | None = None  # seconds to the last step, when known


def usual_gap(clock: Series | None, recent: int = 64) -> float | None:
    """Median seconds between the latest records."""
    if clock is None or len(clock) < 3:
        return None
    times = clock.values[-recent:]
    with np.errstate(over="ignore", invalid="ignore"):  # times near ±1.8e308 from a hostile file
        gaps = np.diff(times)
    gaps = gaps[gaps > 0]
    if not len(gaps):
        return None
    return float(np.median(gaps))


def process_gone(header: dict | None) -> bool:
    """True only when the header names this host and its pid is not running."""
    if not header:
        return False
    host, pid = header.get("host"), header.get("pid")
    if type(pid) is not int or pid <= 0 or not isinstance(host, str) or host != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (OSError, OverflowError):  # not ours to signal; a pid beyond the C int range
        return False
    return False


def total_steps(run: Run) -> int | None:
    if run.epochs and run.steps_per_epoch:
        return run.epochs * run.steps_per_epoch
    return None


def run_health(run: Run, clock: Series | None, now: float, stalled: bool | None = None) -> Health:
    """The run's state. `stalled`, when known, is the stalled detector's
    verdict (an active alert): the status line then says what the alert
    list says; without it (the detector switched off) silence is judged
    here, against the usual gap between the clock's records."""
    if run.end is not None:
        return Health(FINISHED, run.status)
    if process_gone(run.header):
        return Health(CRASHED, "writer process gone, no end record")
    eta = None
    total = total_steps(run)
    rate = run.steps_per_second()
    if total and rate:
        eta = max(0.0, (total - run.step) / rate)
    if stalled is not None:
        if stalled and run.last_time is not None:
            return Health(STALLED, f"silent {now - run.last_time:.0f}s", None)
        return Health(STALLED, "", None) if stalled else Health(LIVE, "", eta)
    if run.last_time is not None:
        silent = now - run.last_time
        gap = usual_gap(clock)
        limit = max(MIN_STALL_SECONDS, STALL_FACTOR * gap) if gap else MIN_STALL_SECONDS * 4
        if silent > limit:
            return Health(STALLED, f"silent {silent:.0f}s", None)
    return Health(LIVE, "", eta)
