"""A bounded (step, value) series: exact recent points, thinned history.

A run can last millions of steps; the watcher must not grow with it. When a
series fills up, its older part is thinned by keeping the min and the max of
each group of points, so spikes and NaNs survive in the history while the
recent window stays exact.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DEFAULT_CAPACITY = 8192
_BLOCK = 512  # pending appends before they are moved into the arrays
_FIRST_ROOM = 16  # points a new series has room for before its arrays grow


class Series:
    """Append-only numeric series with bounded memory.

    Appends go to two small Python lists first and reach the numpy arrays in
    blocks (on reading, or every `_BLOCK` points): a numpy item assignment
    costs several times a list append, and a cold open appends millions.
    """

    __slots__ = ("_steps", "_values", "_size", "_new_steps", "_new_values", "_flushed", "capacity")

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 16:
            raise ValueError("capacity must be at least 16")
        self.capacity = capacity
        # The arrays grow as points come, up to `capacity`: a file naming
        # thousands of metrics with a point or two each costs bytes per name,
        # not the full 128 KiB of a long series.
        room = min(_FIRST_ROOM, capacity)
        self._steps = np.empty(room, dtype=np.int64)
        self._values = np.empty(room, dtype=np.float64)
        self._size = 0
        self._new_steps: list[int] = []
        self._new_values: list[float] = []
        self._flushed = 0  # points moved into the arrays so far

    def __len__(self) -> int:
        self._flush()
        return self._size

    @property
    def total(self) -> int:
        """Points ever appended."""
        return self._flushed + len(self._new_steps)

    def append(self, step: int, value: float) -> None:
        self._new_steps.append(step)
        self._new_values.append(value)
        if len(self._new_steps) >= _BLOCK:
            self._flush()

    @property
    def steps(self) -> np.ndarray:
        self._flush()
        return self._steps[: self._size]

    @property
    def values(self) -> np.ndarray:
        self._flush()
        return self._values[: self._size]

    def last(self) -> tuple[int, float] | None:
        if self._new_steps:
            return int(self._new_steps[-1]), float(self._new_values[-1])
        if not self._size:
            return None
        return int(self._steps[self._size - 1]), float(self._values[self._size - 1])

    def extend(self, steps: np.ndarray, values: np.ndarray) -> None:
        """Append many points at once (a block of batch records)."""
        self._flush()
        self._put(steps, values)

    def _flush(self) -> None:
        """Move pending points into the arrays."""
        if self._new_steps:
            self._put(self._new_steps, self._new_values)
            self._new_steps.clear()
            self._new_values.clear()

    def _put(self, steps: Sequence[int] | np.ndarray, values: Sequence[float] | np.ndarray) -> None:
        """Copy points into the arrays, thinning whenever they fill."""
        count = len(steps)
        done = 0
        while done < count:
            room = len(self._steps)
            if self._size == room:
                if room < self.capacity:
                    self._grow(self._size + count - done)
                else:
                    self._thin()
                room = len(self._steps)
            take = min(room - self._size, count - done)
            self._steps[self._size : self._size + take] = steps[done : done + take]
            self._values[self._size : self._size + take] = values[done : done + take]
            self._size += take
            done += take
        self._flushed += count

    def _grow(self, need: int) -> None:
        """Larger arrays (at least twice the room, at most `capacity`)."""
        room = min(self.capacity, max(len(self._steps) * 2, need))
        steps, values = np.empty(room, dtype=np.int64), np.empty(room, dtype=np.float64)
        steps[: self._size] = self._steps[: self._size]
        values[: self._size] = self._values[: self._size]
        self._steps, self._values = steps, values

    def _thin(self) -> None:
        """Halve the older three quarters: keep each group of 4's min and max."""
        old = (self.capacity * 3 // 4) // 4 * 4
        steps, values = self._steps[:old], self._values[:old]
        lo, hi = _extremes(values.reshape(-1, 4))
        starts = np.arange(0, old, 4)
        keep = np.zeros(old, dtype=bool)  # marks, so the kept points come out in order without a sort
        keep[starts + lo] = True
        keep[starts + hi] = True
        picked = np.flatnonzero(keep)
        kept = len(picked)
        self._steps[:kept] = steps[picked]
        self._values[:kept] = values[picked]
        rest = self._size - old
        self._steps[kept : kept + rest] = self._steps[old : self._size]
        self._values[kept : kept + rest] = self._values[old : self._size]
        self._size = kept + rest


def _extremes(groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column indices of two points to keep per row: the min and the max,
    or the max and the first non-finite point, which the user must still see.
    Nearly every thinning sees only finite values, which need no masks."""
    bad = ~np.isfinite(groups)
    if not bad.any():
        lo, hi = _first_min(groups), _first_min(-groups)
        lo[lo == hi] = 1  # a constant row: both are 0
    else:
        lo = np.argmin(np.where(bad, np.inf, groups), axis=1)
        hi = np.argmax(np.where(bad, -np.inf, groups), axis=1)
        has_bad = bad.any(axis=1)
        lo = np.where(has_bad, hi, lo)
        hi = np.where(has_bad, np.argmax(bad, axis=1), hi)
        lo = np.where(lo == hi, np.where(hi == 0, 1, 0), lo)
    return lo, hi


def _first_min(groups: np.ndarray) -> np.ndarray:
    """Per row of 4 finite values, the column of the first minimum, as
    argmin(axis=1) gives it. Comparing whole columns has no branches;
    argmin's, one set per row, mispredict on noisy values and made it
    the larger part of a thinning's cost."""
    a, b, c, d = groups.T
    left, right = b < a, d < c
    return left + (np.minimum(c, d) < np.minimum(a, b)) * (2 + right - left)


def downsample(steps: np.ndarray, values: np.ndarray, buckets: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ~2 points per bucket (min and max), so drawing cost follows the
    plot's width, not the run's length. A bucket with no finite value keeps
    its first point, so a NaN stretch stays visible.

    Vectorised (it runs for every curve on every redraw): per-bucket minima
    and maxima by reduceat, then each bucket's first index that attains them.
    """
    n = len(steps)
    if n <= 2 * buckets or buckets < 1:
        return steps, values
    edges = np.unique(np.linspace(0, n, buckets + 1).astype(np.int64))
    starts = edges[:-1]
    ids = np.repeat(np.arange(len(starts)), np.diff(edges))
    finite = np.isfinite(values)
    low = np.where(finite, values, np.inf)
    high = np.where(finite, values, -np.inf)
    lo = _first_in_bucket(low == np.minimum.reduceat(low, starts)[ids], ids)
    hi = _first_in_bucket(high == np.maximum.reduceat(high, starts)[ids], ids)
    picked = np.union1d(lo, hi)
    return steps[picked], values[picked]


def _first_in_bucket(mask: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Per bucket, the first index where `mask` holds (ids are sorted)."""
    index = np.flatnonzero(mask)
    bucket = ids[index]
    first = np.ones(len(index), dtype=bool)
    first[1:] = bucket[1:] != bucket[:-1]
    return index[first]
