"""Blocks change the speed of detection, never its result.

The engine hands runs of batch records to the detectors as column blocks
(lossmon/block.py); the detectors that read batch records judge long blocks
with numpy and single records (and short blocks) in plain Python. Whatever
the block boundaries, the incident list must be exactly the one that feeding
the same records one at a time gives: same detectors, steps, severities,
states, messages, evidence, occurrences, peaks, causes and symptoms, in
the same reading order and with the same verdict. So these tests hold the two implementations
of each detector to each other.
"""

from __future__ import annotations

import math
import random

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lossmon.detect import Engine, Severity, available_detectors
from lossmon.detectors._util import finite_row_medians, row_medians, windows
from lossmon.detectors.stalled import TICK
from lossmon.format import Record, decode, encode
from records import batch, end, epoch, header

SEGMENTS = ("decay", "flat", "spike", "nan", "nan_acc", "diverge", "zigzag", "gap", "resume", "odd_keys", "other_run")


def stream(seed: int, segments: list[str]) -> list:
    """A run (sometimes two) built from segments that trouble the detectors."""
    rng = random.Random(seed)
    per_epoch = rng.choice([20, 100, 400])  # long epochs: long blocks, the column path
    out = [header("a", lr=rng.choice([0.001, 0.1, 1.0]), steps=per_epoch), header("b", steps=per_epoch)]
    step, loss, t = 0, 0.7, 1000.0
    for kind in segments:
        for _ in range(rng.randint(3, 80)):
            step += 1
            t += 0.1
            values = {}
            if kind == "decay":
                loss = max(loss * 0.97, 1e-4)
            elif kind == "spike":
                loss_now = loss * (rng.choice([1, 1, 8, 30]))
                values["loss"] = loss_now
            elif kind == "nan":
                values["loss"] = rng.choice([math.nan, math.inf, loss])
            elif kind == "diverge":
                loss *= 1.3
            elif kind in ("zigzag", "nan_acc"):
                swing = rng.choice([1.6, 1.75, 1.9, 5.0])  # around oscillation's 3x (= 1.73 squared) and far above
                values["loss"] = loss * (swing if step % 2 else 1 / swing)
            elif kind == "gap":
                t += rng.choice([0.0, 30.0])
            elif kind == "resume" and rng.random() < 0.3:
                step = max(1, step - rng.randint(1, 10))
            accuracy = math.nan if kind == "nan_acc" else 0.5
            record = batch(step, values.get("loss", loss * (1 + rng.gauss(0, 0.05))), "a", per_epoch, accuracy=accuracy)
            record["time"] = t
            if kind == "odd_keys" and rng.random() < 0.5:
                record["logs"] = record["step_logs"] = {"loss": record["logs"]["loss"]}
            if kind == "gap" and rng.random() < 0.2:
                del record["time"]
            out.append(record)
            if kind == "other_run" and rng.random() < 0.5:
                out.append(batch(step, loss, "b", per_epoch))
            if step % per_epoch == 0:
                out.append(epoch(step // per_epoch - 1, loss, loss * 1.1, "a", per_epoch))
    if rng.random() < 0.5:
        out.append(end(step, "a"))
    records = [decode(encode(r)) for r in out]
    # A late look at a run that never ended: the stall detector's verdict
    # depends on every gap the blocks carried.
    return [*records, Record(TICK, "a", step, None, time=t + 60.0), Record(TICK, "b", step, None, time=t + 60.0)]


def engine_of(records: list, cuts: list[int]) -> Engine:
    """An engine fed `records` in chunks ending at `cuts`."""
    engine = Engine(available_detectors())
    start = 0
    for cut in [*sorted(set(cuts)), len(records)]:
        engine.feed_many(records[start:cut])
        start = max(start, cut)
    return engine


def alerts(records: list, cuts: list[int]) -> list[dict]:
    """The incident list (ids, occurrences, peaks, causes and symptoms
    included) from feeding `records` in chunks ending at `cuts`."""
    return [alert.to_json() for alert in engine_of(records, cuts).alerts]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    segments=st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=12),
    cuts=st.lists(st.integers(0, 600), max_size=6),
)
def test_any_blocks_give_the_alerts_of_one_record_at_a_time(seed, segments, cuts):
    records = stream(seed, segments)
    one_by_one = Engine(available_detectors())
    for record in records:
        one_by_one.feed(record)
    expected = [alert.to_json() for alert in one_by_one.alerts]
    assert alerts(records, cuts) == expected
    assert alerts(records, []) == expected  # the whole file as one read
    in_blocks = engine_of(records, cuts)
    assert [(depth, a.id) for depth, a in in_blocks.ordered()] == [(depth, a.id) for depth, a in one_by_one.ordered()]
    for fail_on in (Severity.WARNING, Severity.CRITICAL):
        assert [a.id for a in in_blocks.failing(fail_on)] == [a.id for a in one_by_one.failing(fail_on)]


def test_a_long_run_that_goes_wrong_is_seen_the_same_in_one_block():
    """Divergence, then the spikes and zig-zag it explains, NaN at the end."""
    records = stream(7, ["decay"] * 10 + ["spike", "zigzag"] * 3 + ["diverge"] * 4 + ["zigzag", "decay", "nan", "flat"])
    one_by_one = Engine(available_detectors())
    for record in records:
        one_by_one.feed(record)
    expected = [alert.to_json() for alert in one_by_one.alerts]
    assert {a["detector"] for a in expected} >= {"divergence", "nonfinite"}
    assert alerts(records, []) == expected


def test_a_symptom_of_an_open_cause_is_attached_to_it_in_blocks_too():
    """The loss zig-zags from the start while accuracy is NaN (nonfinite, a
    cause oscillation defers to): the zig-zag incident opens at step 19
    (8 zig-zagging windows of 12 steps),
    under the NaN incident, and stays under it when accuracy turns finite
    at step 40, in one block as one record at a time."""
    out = [header("a", steps=100)]
    for step in range(1, 80):
        record = batch(step, 5.0 if step % 2 else 0.2, "a", 100, accuracy=math.nan if step < 40 else 0.5)
        out.append(record)
    records = [decode(encode(r)) for r in out]
    one_by_one = Engine(available_detectors())
    for record in records:
        one_by_one.feed(record)
    expected = [alert.to_json() for alert in one_by_one.alerts]
    (nan,) = [a for a in expected if a["detector"] == "nonfinite"]
    (oscillation,) = [a for a in expected if a["detector"] == "oscillation"]
    assert oscillation["step"] == 19 and oscillation["caused_by"] == nan["id"] == "a:nonfinite"
    assert nan["symptoms"] == [oscillation["id"]] and not nan["active"] and nan["last_step"] == 40
    assert alerts(records, []) == expected
    assert alerts(records, [45]) == expected
    assert alerts(records, [13, 20, 40, 41]) == expected


def test_a_flapping_condition_is_one_incident_whatever_the_blocks():
    """A zig-zag that calms down and comes back three times within the
    window is one oscillation incident with three occurrences, its peak
    where the first one opened; cut anywhere, the same."""
    out = [header("a", steps=1000)]
    step = 0
    for _ in range(3):
        for i in range(40):
            step += 1
            out.append(batch(step, (5.0 if step % 2 else 0.2) if i < 20 else 0.5 + 0.001 * (step % 3), "a", 1000))
    records = [decode(encode(r)) for r in out]
    one_by_one = Engine(available_detectors())
    for record in records:
        one_by_one.feed(record)
    (incident,) = [a for a in one_by_one.alerts if a.detector == "oscillation"]
    assert incident.occurrences == 3 and incident.peak["step"] == incident.step
    expected = [alert.to_json() for alert in one_by_one.alerts]
    for cuts in ([], [30], [15, 50, 90], list(range(5, 120, 7))):
        assert alerts(records, cuts) == expected


def test_a_block_with_few_usable_values_carries_the_right_window_on():
    """A long block whose losses are mostly NaN or zero leaves fewer fresh
    values than a detector's window; the values it keeps for the next rows
    must still be exactly the last ones seen."""
    out = [header("a", steps=1000)]
    for step in range(1, 121):
        if 41 <= step <= 60 and step % 5:
            loss = math.nan if step % 2 else 0.0  # 16 of these 20 rows give nothing to judge
        else:
            loss = 5.0 if step % 2 else 0.2 + step / 1000
        out.append(batch(step, loss, "a", 1000))
    records = [decode(encode(r)) for r in out]
    one_by_one = Engine(available_detectors())
    for record in records:
        one_by_one.feed(record)
    expected = [alert.to_json() for alert in one_by_one.alerts]
    assert any(a["detector"] == "oscillation" for a in expected)
    for cuts in ([41, 61], [41, 61, 75], [30, 41, 61, 62, 63]):  # the sparse rows as one block, then row by row
        assert alerts(records, cuts) == expected


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([0.0, -1.5, 0.25, 0.25, 1.0, 3.0, 1e300, -1e-300, 7.5]) | st.floats(-1e6, 1e6), min_size=5, max_size=60))
def test_medians_of_five_by_minimums_and_maximums_are_the_sorted_ones(values):
    """Divergence's rolling median takes a min/max network for its usual
    window of five: the same value as the sort, ties and extremes included."""
    rows = windows(np.array(values), 5)
    assert np.array_equal(finite_row_medians(rows), row_medians(rows))
    assert np.array_equal(finite_row_medians(windows(np.array(values), 4)), row_medians(windows(np.array(values), 4)))


def test_a_run_that_flaps_for_its_whole_length_reads_as_one_problem():
    """Diverge, recover, zig-zag, spike, again and again (a learning rate too
    high for its momentum): dozens of alerts before incidents, now the
    learning rate's incident (the header's lr is 1.0) with the rest under
    it, or at most a couple of roots; the same in blocks."""
    segments = ["decay"] + ["diverge", "decay", "zigzag", "spike", "decay"] * 8
    records = stream(3, segments)
    one_by_one = Engine(available_detectors())
    for record in records:
        one_by_one.feed(record)
    warned = [a for a in one_by_one.alerts if a.run == "a" and a.worst.rank >= Severity.WARNING.rank]
    roots = [a for depth, a in one_by_one.ordered() if depth == 0 and a in warned]
    assert len(warned) >= 3 and len(roots) <= 2
    assert sum(a.occurrences for a in warned) > len(warned)  # flaps merged into incidents
    assert alerts(records, []) == [a.to_json() for a in one_by_one.alerts]


def test_the_peak_is_the_worst_moment_even_in_the_middle_of_a_block():
    """The loss runs away, peaks at step 120 and falls back part of the way
    (still diverging); the zig-zag swings hardest in its middle. The peak
    is that moment, read one record at a time or as one long block."""
    out = [header("a", steps=1000)]
    for step in range(1, 301):
        if step <= 20:
            loss = 0.7 * 0.98**step
        elif step <= 120:
            loss = 0.47 * 1.04 ** (step - 20)
        else:
            loss = 0.47 * 1.04**100 * 0.995 ** (step - 120)
        swing = 1.0 if step < 150 else (8.0 if 190 <= step < 200 else 4.0)
        out.append(batch(step, loss * (swing if step % 2 else 1.0), "a", 1000))
    records = [decode(encode(r)) for r in out]
    one_by_one = Engine(available_detectors())
    for record in records:
        one_by_one.feed(record)
    divergence = next(a for a in one_by_one.alerts if a.detector == "divergence")
    assert divergence.active and divergence.step < 100 < divergence.peak["step"] < divergence.last_step
    assert divergence.peak["evidence"]["smoothed_loss"] > divergence.evidence["smoothed_loss"]
    oscillation = next(a for a in one_by_one.alerts if a.detector == "oscillation")
    assert oscillation.step < 190 <= oscillation.peak["step"] < 215
    expected = [alert.to_json() for alert in one_by_one.alerts]
    for cuts in ([], [150], [100, 125, 200], list(range(17, 300, 33))):
        assert alerts(records, cuts) == expected
