"""A bounded (step, value) series: exact recent points, thinned history.

A run can last millions of steps; the watcher must not grow with it. When a
series fills up, its older part is thinned by keeping the min and the max of
each group of points, so spikes and NaNs survive in the history while the
recent window stays exact.
"""

from __future__ import annotations

import numpy as np

DEFAULT_CAPACITY = 8192


class Series:
    """Append-only numeric series with bounded memory."""

    __slots__ = ("_steps", "_values", "_size", "capacity", "total")

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 16:
            raise ValueError("capacity must be at least 16")
        self.capacity = capacity
        self._steps = np.empty(capacity, dtype=np.int64)
        self._values = np.empty(capacity, dtype=np.float64)
        self._size = 0
        self.total = 0  # points ever appended

    def __len__(self) -> int:
        return self._size

    def append(self, step: int, value: float) -> None:
        if self._size == self.capacity:
            self._thin()
        self._steps[self._size] = step
        self._values[self._size] = value
        self._size += 1
        self.total += 1

    @property
    def steps(self) -> np.ndarray:
        return self._steps[: self._size]

    @property
    def values(self) -> np.ndarray:
        return self._values[: self._size]

    def last(self) -> tuple[int, float] | None:
        if not self._size:
            return None
        return int(self._steps[self._size - 1]), float(self._values[self._size - 1])

    def _thin(self) -> None:
        """Halve the older three quarters: keep each group of 4's min and max."""
        old = (self.capacity * 3 // 4) // 4 * 4
        steps, values = self._steps[:old], self._values[:old]
        keep = _extremes(values.reshape(-1, 4))
        rows = np.arange(old // 4)[:, None] * 4
        picked = np.sort((rows + keep).ravel())
        kept = len(picked)
        self._steps[:kept] = steps[picked]
        self._values[:kept] = values[picked]
        rest = self._size - old
        self._steps[kept : kept + rest] = self._steps[old : self._size]
        self._values[kept : kept + rest] = self._values[old : self._size]
        self._size = kept + rest


def _extremes(groups: np.ndarray) -> np.ndarray:
    """Column indices of two points to keep per row: the min and the max,
    or the max and the first non-finite point, which the user must still see."""
    bad = ~np.isfinite(groups)
    lo = np.argmin(np.where(bad, np.inf, groups), axis=1)
    hi = np.argmax(np.where(bad, -np.inf, groups), axis=1)
    has_bad = bad.any(axis=1)
    lo = np.where(has_bad, hi, lo)
    hi = np.where(has_bad, np.argmax(bad, axis=1), hi)
    lo = np.where(lo == hi, np.where(hi == 0, 1, 0), lo)
    return np.stack([lo, hi], axis=1)


def downsample(steps: np.ndarray, values: np.ndarray, buckets: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ~2 points per bucket (min and max), so drawing cost follows the
    plot's width, not the run's length."""
    n = len(steps)
    if n <= 2 * buckets or buckets < 1:
        return steps, values
    edges = np.linspace(0, n, buckets + 1).astype(np.int64)
    out_steps: list[int] = []
    out_values: list[float] = []
    for start, stop in zip(edges[:-1], edges[1:]):
        if stop <= start:
            continue
        chunk = values[start:stop]
        finite = np.isfinite(chunk)
        if not finite.any():
            out_steps.append(int(steps[start]))
            out_values.append(float(chunk[0]))
            continue
        idx = np.flatnonzero(finite)
        lo = idx[np.argmin(chunk[idx])]
        hi = idx[np.argmax(chunk[idx])]
        for i in sorted({int(lo), int(hi)}):
            out_steps.append(int(steps[start + i]))
            out_values.append(float(chunk[i]))
    return np.asarray(out_steps), np.asarray(out_values)
