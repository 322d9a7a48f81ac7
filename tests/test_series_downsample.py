"""Series internals that were made faster: same answers as the plain way."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from lossmon.model import Series, downsample


def reference(steps: np.ndarray, values: np.ndarray, buckets: int) -> tuple[list[int], list[float]]:
    """downsample() written plainly, one bucket at a time."""
    n = len(steps)
    if n <= 2 * buckets or buckets < 1:
        return steps.tolist(), values.tolist()
    edges = np.linspace(0, n, buckets + 1).astype(np.int64)
    out = []
    for start, stop in zip(edges[:-1], edges[1:]):
        if stop <= start:
            continue
        chunk = values[start:stop]
        good = [i for i in range(len(chunk)) if math.isfinite(chunk[i])]
        if not good:
            out.append(start)
            continue
        lo = min(good, key=lambda i: (chunk[i], i))
        hi = min(good, key=lambda i: (-chunk[i], i))
        out += sorted({start + lo, start + hi})
    return steps[out].tolist(), values[out].tolist()


value_strategy = st.one_of(st.floats(-1e6, 1e6), st.sampled_from([math.nan, math.inf, -math.inf, 0.0, 1.0]))
values_strategy = st.lists(value_strategy, min_size=0, max_size=400)


@settings(max_examples=200, deadline=None)
@given(values=values_strategy, buckets=st.integers(0, 60))
def test_downsample_matches_the_plain_version(values: list[float], buckets: int) -> None:
    ys = np.asarray(values, dtype=np.float64)
    xs = np.arange(len(ys), dtype=np.int64) * 7
    got_x, got_y = downsample(xs, ys, buckets)
    want_x, want_y = reference(xs, ys, buckets)
    assert got_x.tolist() == want_x
    np.testing.assert_array_equal(got_y, np.asarray(want_y, dtype=np.float64))
    if buckets >= 1:
        assert len(got_x) <= max(len(xs), 2 * buckets)


@settings(max_examples=50, deadline=None)
@given(count=st.integers(0, 3000), capacity=st.integers(16, 200))
def test_buffered_appends_read_like_direct_ones(count: int, capacity: int) -> None:
    series = Series(capacity)
    for i in range(count):
        series.append(i, math.sin(i))
        if i % 97 == 0:  # reads in between flush the pending points
            assert series.last() == (i, math.sin(i))
            assert len(series) <= capacity
    assert series.total == count and len(series) <= capacity
    if count:
        assert series.last() == (count - 1, math.sin(count - 1))
        assert series.steps[-1] == count - 1 and np.all(np.diff(series.steps) > 0)
        exact = min(count, capacity // 4)  # the recent window is never thinned
        assert series.values[-exact:].tolist() == [math.sin(i) for i in range(count - exact, count)]


def thin_reference(values: list[float]) -> list[int]:
    """Series._thin's choice for each group of 4, written plainly: the first
    min and first max; where a group has a non-finite value, its first max
    and its first non-finite point; a group with one choice keeps its first
    two points."""
    picked = []
    for start in range(0, len(values), 4):
        group = values[start : start + 4]
        good = [i for i in range(4) if math.isfinite(group[i])]
        bad = [i for i in range(4) if i not in good]
        hi = min(good, key=lambda i: (-group[i], i)) if good else 0
        lo = bad[0] if bad else min(good, key=lambda i: (group[i], i))
        if lo == hi:
            lo = 1 if hi == 0 else 0
        picked += sorted({start + lo, start + hi})
    return picked


@settings(max_examples=200, deadline=None)
@given(
    values=st.one_of(  # all finite (the usual case, a path of its own) or with NaNs and infinities
        st.lists(st.one_of(st.sampled_from([0.0, -0.0, 1.0, 2.0]), st.floats(-1e6, 1e6)), min_size=48, max_size=48),
        st.lists(st.one_of(st.sampled_from([0.0, -0.0, 1.0, 2.0]), value_strategy), min_size=48, max_size=48),
    )
)
def test_thinning_keeps_what_the_plain_version_keeps(values: list[float]) -> None:
    capacity = 16  # the oldest 12 points (3 groups) are thinned each time it fills
    series = Series(capacity)
    series.extend(np.arange(capacity, dtype=np.int64), np.asarray(values[:capacity]))
    expected = list(range(capacity))
    for step in range(capacity, len(values)):
        if len(expected) == capacity:
            expected = [expected[i] for i in thin_reference([values[j] for j in expected[:12]])] + expected[12:]
        series.append(step, values[step])
        expected.append(step)
        assert series.steps.tolist() == expected
